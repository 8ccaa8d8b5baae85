"""The rehearsal's model stand-ins load through the calls a researcher's code makes, offline, from the cache alone.

One module-scoped build of every stand-in into a temporary ``HF_HOME`` / ``TORCH_HOME``; each test then loads one
stand-in the way the study (or a reader of the papers' code) would and runs it once.
"""
import hashlib
import json
import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from synscale.orchestration.rehearsal import models as R
from synscale.orchestration.rehearsal import standins
from synscale.orchestration.rehearsal.hub import hub_dir, repo_folder, revision_of, torch_checkpoints, write_repo

pytestmark = pytest.mark.usefixtures("one_thread")

MB = 1 << 20


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """Every stand-in built once into a fresh HF_HOME / TORCH_HOME, which the libraries are pointed at."""
    import huggingface_hub.constants as hf_constants

    root = tmp_path_factory.mktemp("rehearsal")
    hf_home, torch_home = root / "hf", root / "torch"
    mp = pytest.MonkeyPatch()
    for k, v in {"HF_HOME": hf_home, "HF_HUB_CACHE": hub_dir(hf_home), "TORCH_HOME": torch_home,
                 "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}.items():
        mp.setenv(k, str(v))
    # huggingface_hub reads its cache folder and offline flag once, at import
    mp.setattr(hf_constants, "HF_HOME", str(hf_home))
    mp.setattr(hf_constants, "HF_HUB_CACHE", str(hub_dir(hf_home)))
    mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    t0 = time.perf_counter()
    built = standins.build_all(hf_home, torch_home)
    seconds = time.perf_counter() - t0
    yield SimpleNamespace(hf_home=hf_home, torch_home=torch_home, hub=hub_dir(hf_home), built=built, seconds=seconds)
    mp.undo()


def snapshot(repo: str) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo, local_files_only=True))


def rng_images(n: int, side: int = 224) -> np.ndarray:
    return np.random.RandomState(0).randint(0, 256, (n, side, side, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------------ cache layout
def test_write_repo_lays_out_the_hub_cache(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.json").write_text("{}")
    (src / "sub" / "b.bin").write_bytes(b"\x00\x01")
    (src / "sub" / "same.json").write_text("{}")  # same bytes as a.json: one blob
    hub = hub_dir(tmp_path / "hf")
    snap = write_repo(hub, "org/name", src)
    root = repo_folder(hub, "org/name")
    assert root == hub / "models--org--name" and snap.parent == root / "snapshots"
    ref = (root / "refs" / "main").read_bytes()
    assert re.fullmatch(rb"[0-9a-f]{40}", ref) and ref.decode() == snap.name  # no trailing newline
    assert len(list((root / "blobs").iterdir())) == 2
    for rel in ("a.json", "sub/b.bin", "sub/same.json"):
        link = snap / rel
        assert link.is_symlink() and not os.readlink(link).startswith("/")
        assert link.resolve().parent == (root / "blobs").resolve()
        assert link.resolve().name == hashlib.sha256((src / rel).read_bytes()).hexdigest()
    assert snap.name == revision_of({r: (snap / r).resolve().name for r in ("a.json", "sub/b.bin", "sub/same.json")})
    assert write_repo(hub, "org/name", src) == snap  # idempotent
    assert torch_checkpoints(tmp_path) == tmp_path / "hub" / "checkpoints"
    with pytest.raises(ValueError):
        write_repo(hub, "no-slash", src)


def test_every_repo_is_found_in_the_cache_offline(cache):
    from huggingface_hub import hf_hub_download

    repos = [v for k, v in cache.built.items() if k not in ("fid_inception", "lpips_alex")]
    assert len(repos) == 15  # the papers' 11 and 09's four of today
    for repo in repos:
        snap = snapshot(repo)
        assert snap.parent.parent == repo_folder(cache.hub, repo)
        assert (snap.parent.parent / "refs" / "main").read_text() == snap.name
        files = [p for p in snap.rglob("*") if p.is_symlink()]
        assert files and all(p.resolve().is_file() for p in files)
        weights = sum(p.stat().st_size for p in files if p.suffix in (".safetensors", ".bin"))
        assert weights < 10 * MB, (repo, weights)  # SD: every component in fp32 and fp16
    assert Path(hf_hub_download(R.SD, "unet/config.json", local_files_only=True)).is_file()
    for role in ("fid_inception", "lpips_alex"):
        path = Path(cache.built[role])
        assert path.parent == torch_checkpoints(cache.torch_home) and path.stat().st_size < 1 * MB
    assert cache.built["fid_inception"].endswith("pt_inception-2015-12-05-6726825d.pth")
    assert cache.built["lpips_alex"].endswith("alexnet-owt-7be5be79.pth")


def test_configs_keep_the_real_keys_and_classes(cache):
    """Every real config file is in the stand-in, verbatim or with the same keys and classes (sizes shrunk)."""
    identity = ("_class_name", "architectures", "model_type", "architecture", "tokenizer_class", "processor_class",
                "image_processor_type", "chat_template")
    for folder in sorted(R.REAL.iterdir()):
        repo = folder.name.replace("--", "/", 1)
        snap = snapshot(repo)
        for real in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = real.relative_to(folder).as_posix()
            mine = snap / rel
            assert mine.is_file(), (repo, rel)
            if mine.read_bytes() == real.read_bytes() or real.suffix != ".json":
                continue
            a, b = json.loads(real.read_text()), json.loads(mine.read_text())
            assert set(a) <= set(b) and set(b) - set(a) <= {"model_args"}, (repo, rel)
            for key in identity:
                assert a.get(key) == b.get(key), (repo, rel, key)
            for sub in ("text_config", "vision_config", "qformer_config"):
                if sub in a:
                    assert set(a[sub]) <= set(b[sub]) and a[sub].get("model_type") == b[sub].get("model_type")


def test_builds_are_deterministic(cache, tmp_path):
    again = standins.build_all(tmp_path / "hf", tmp_path / "torch", only=["oracle", "fid_inception"])
    for repo in (again["oracle"],):
        a, b = (repo_folder(hub_dir(h), repo) / "refs" / "main" for h in (cache.hf_home, tmp_path / "hf"))
        assert a.read_text() == b.read_text()
    assert Path(again["fid_inception"]).read_bytes() == Path(cache.built["fid_inception"]).read_bytes()
    with pytest.raises(ValueError, match="unknown stand-in"):
        standins.build_all(tmp_path / "hf", tmp_path / "torch", only=["dalle3"])


# ---------------------------------------------------------------------------------------------- diffusers pipelines
def test_sd_pipeline_real_layout_and_generation(cache):
    import diffusers
    import torch

    snap = snapshot(R.SD)
    for rel in ("model_index.json", "scheduler/scheduler_config.json", "feature_extractor/preprocessor_config.json",
                "tokenizer/tokenizer_config.json"):
        assert (snap / rel).read_bytes() == R._real_path(R.SD, rel).read_bytes(), rel  # verbatim
    assert json.loads((snap / "scheduler/scheduler_config.json").read_text())["_class_name"] == "PNDMScheduler"
    for comp in ("unet", "vae"):
        assert {p.name for p in (snap / comp).iterdir()} >= {"diffusion_pytorch_model.safetensors",
                                                            "diffusion_pytorch_model.fp16.safetensors"}
    for comp in ("text_encoder", "safety_checker"):
        assert {p.name for p in (snap / comp).iterdir()} >= {"model.safetensors", "model.fp16.safetensors"}

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(R.SD, local_files_only=True)
    assert type(pipe.scheduler).__name__ == "PNDMScheduler" and pipe.tokenizer.vocab_size == 49408
    assert type(pipe.safety_checker).__name__ == "StableDiffusionSafetyChecker"
    assert pipe.tokenizer("a photo of a tench").input_ids == [49406, 320, 1125, 539, 320, 1149, 634, 49407]
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a photo of a tench", num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert out.images[0].size == (64, 64) and out.nsfw_content_detected == [False]
    half = diffusers.StableDiffusionPipeline.from_pretrained(R.SD, local_files_only=True, variant="fp16",
                                                             safety_checker=None, dtype=torch.float32)
    assert half.unet.config.block_out_channels == pipe.unet.config.block_out_channels


@pytest.mark.parametrize("key, cls, scheduler", [
    ("sdxl", "StableDiffusionXLPipeline", "EulerDiscreteScheduler"),
    ("sd3", "StableDiffusion3Pipeline", "FlowMatchEulerDiscreteScheduler"),
    ("flux_schnell", "FluxPipeline", "FlowMatchEulerDiscreteScheduler"),
    ("pixart_sigma", "PixArtSigmaPipeline", "DPMSolverMultistepScheduler"),
])
def test_todays_generators_load_by_their_registry_entry_and_sample(cache, key, cls, scheduler):
    """09's paper generators: the stand-in under the entry's repo id, loaded as the study loads any generator
    (DiffusionPipeline picks the class from model_index.json), samples at the entry's guidance with its call."""
    from synscale.data import generators
    from synscale.methods import models
    from synscale.methods.generate import generate_images

    entry = generators.get(key)
    assert (snapshot(entry.repos[0]) / "model_index.json").is_file()
    pipe = models.t2i(key, f"paper:{key}")
    assert type(pipe).__name__ == cls and type(pipe.scheduler).__name__ == scheduler
    imgs, _ = generate_images(pipe, ["a photo of a tench", "a goldfish"], [0, 1], entry.guidance[-1], steps=2)
    assert imgs.shape[0] == 2 and imgs.shape[-1] == 3 and imgs.std() > 0


def _only_fp16_fails(cls, repo: str, **kwargs) -> None:
    """Without ``variant="fp16"`` diffusers looks for the plain weight files, which an fp16-only cache lacks."""
    with pytest.raises(OSError, match="no file named"):
        cls.from_pretrained(repo, local_files_only=True, **kwargs)


def test_if_pipeline_fp16_only(cache):
    import diffusers
    import torch
    from diffusers.pipelines.deepfloyd_if.safety_checker import IFSafetyChecker
    from safetensors.torch import load_file

    snap = snapshot(R.IF)
    for rel in ("model_index.json", "scheduler/scheduler_config.json", "watermarker/config.json"):
        assert (snap / rel).read_bytes() == R._real_path(R.IF, rel).read_bytes(), rel
    scheduler = json.loads((snap / "scheduler/scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "DDPMScheduler" and scheduler["variance_type"] == "learned_range"
    assert json.loads((snap / "model_index.json").read_text())["safety_checker"] == ["deepfloyd_if", "IFSafetyChecker"]
    weights = sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*.safetensors"))
    assert all(".fp16" in w for w in weights if not w.startswith("watermarker/")), weights
    assert "text_encoder/model.fp16-00002-of-00002.safetensors" in weights
    assert (snap / "text_encoder/model.safetensors.index.fp16.json").is_file()

    _only_fp16_fails(diffusers.IFPipeline, R.IF, safety_checker=None)
    pipe = diffusers.IFPipeline.from_pretrained(R.IF, local_files_only=True, variant="fp16", safety_checker=None,
                                                dtype=torch.float32)
    assert type(pipe.text_encoder).__name__ == "T5EncoderModel" and type(pipe.watermarker).__name__ == "IFWatermarker"
    assert pipe.unet.config.out_channels == 6 and pipe.unet.config.encoder_hid_dim == pipe.text_encoder.config.d_model
    assert len(pipe.tokenizer) == 32100
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a photo of a tench", num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert out.images[0].size == (64, 64)

    # diffusers 0.42's IFSafetyChecker skips post_init, which transformers 5 needs to load any checkpoint
    try:
        checker = IFSafetyChecker.from_pretrained(snap / "safety_checker", variant="fp16")
    except AttributeError as e:
        assert "all_tied_weights_keys" in str(e)
        from transformers import CLIPConfig

        checker = IFSafetyChecker(CLIPConfig.from_pretrained(snap / "safety_checker"))
        checker.load_state_dict(load_file(snap / "safety_checker/model.fp16.safetensors"), strict=True)
    assert checker.vision_model.config.image_size == 224


def test_if_cascade_makes_stage_two_images_each_from_its_own_seed(cache):
    """``paper:if+paper:if_stage2``: IF stage I, then stage II (IFSuperResolutionPipeline) at its own side,
    with stage I's prompt embeddings; an image depends on its prompt and seed alone (batch of two = one by one, up to
    a rounding step in a few pixels, as for stage I alone: batched kernels sum in another order), and
    stage I alone is another fingerprint, so its sets never mix with the cascade's."""
    from synscale.data import weights as W
    from synscale.methods import generate, models
    from synscale.orchestration.preflight import model_needs

    snap = snapshot(R.IF2)
    assert json.loads((snap / "model_index.json").read_text())["_class_name"] == "IFSuperResolutionPipeline"
    assert W.completeness(W.resolve("paper:if_stage2"), "diffusers") is None
    pipe = models.t2i("if", "paper:if+paper:if_stage2")
    assert isinstance(pipe, models.Cascade) and type(pipe.stage2).__name__ == "IFSuperResolutionPipeline"
    assert pipe.stage2.text_encoder is None and pipe.stage2.unet.config.in_channels == 6
    prompts, seeds = ["a photo of a tench", "a photo of a goldfish"], [11, 12]
    both, _ = generate.generate_images(pipe, prompts, seeds, guidance_scale=2.0, steps=2, batch_size=2)
    one, _ = generate.generate_images(pipe, prompts[1:], seeds[1:], guidance_scale=2.0, steps=2, batch_size=1)
    side = pipe.stage2.unet.config.sample_size
    assert both.shape == (2, side, side, 3) and both.dtype == np.uint8  # stage II's side (the stand-in's: 64)
    diff = np.abs(both[1].astype(int) - one[0].astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())  # batched kernels' last bit
    assert np.abs(both[0].astype(int) - both[1].astype(int)).mean() > 10
    assert models.fingerprint("if", "paper:if") != models.fingerprint("if", "paper:if+paper:if_stage2")
    assert model_needs("04_scaling", {"specs": ["if/in_captions/1.5"], "family_models": {
        "if": "paper:if+paper:if_stage2"}})[:2] == [("if", "paper:if"), ("if_stage2", "paper:if_stage2")]
    with pytest.raises(ValueError, match="no super-resolution stage"):
        models.t2i("sd", "paper:sd+paper:if_stage2")


def test_amused_pipeline_fp16_only(cache):
    import diffusers
    import torch

    snap = snapshot(R.MUSE)
    for rel in ("model_index.json", "scheduler/scheduler_config.json"):
        assert (snap / rel).read_bytes() == R._real_path(R.MUSE, rel).read_bytes(), rel
    assert all(".fp16." in p.name for p in snap.rglob("*.safetensors"))
    _only_fp16_fails(diffusers.AmusedPipeline, R.MUSE)
    pipe = diffusers.AmusedPipeline.from_pretrained(R.MUSE, local_files_only=True, variant="fp16", dtype=torch.float32)
    tr = pipe.transformer.config
    assert pipe.scheduler.config.mask_token_id == tr.vocab_size - 1 == 8255 and tr.codebook_size == 8192
    assert pipe.vqvae.config.num_vq_embeddings == tr.codebook_size
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a photo of a tench", num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert out.images[0].size == (64, 64)


# ------------------------------------------------------------------------------------------------ timm, open_clip
@pytest.mark.parametrize("repo", [R.ORACLE, R.ORACLE_LARGE])
def test_timm_oracle_hf_hub(cache, repo):
    import timm
    import torch

    cfg = json.loads((snapshot(repo) / "config.json").read_text())
    assert cfg["pretrained_cfg"]["mean"] == [0.5, 0.5, 0.5] and set(cfg["model_args"]) == {"embed_dim", "depth",
                                                                                           "num_heads"}
    model = timm.create_model(f"hf-hub:{repo}", pretrained=True).eval()
    local = timm.create_model(f"local-dir:{snapshot(repo)}", pretrained=True).eval()  # as train.load
    x = torch.from_numpy(rng_images(2)).permute(0, 3, 1, 2).float().div(255)
    with torch.no_grad():
        y = model(x)
        assert torch.equal(y, local(x))
    assert y.shape == (2, 1000) and torch.isfinite(y).all()
    assert timm.data.resolve_data_config({}, model=model)["crop_pct"] == 0.9


def test_open_clip_hf_hub(cache):
    import open_clip
    import torch
    from PIL import Image

    name = f"hf-hub:{R.CLIP}"
    model, _, preprocess = open_clip.create_model_and_transforms(name)
    local, _, _ = open_clip.create_model_and_transforms(f"local-dir:{snapshot(R.CLIP)}")
    tok = open_clip.get_tokenizer(name)
    x = torch.stack([preprocess(Image.fromarray(a)) for a in rng_images(2)])
    assert x.shape == (2, 3, 224, 224)
    with torch.no_grad():
        img, txt = model.encode_image(x), model.encode_text(tok(["a photo of a tench", "a photo of a dog"]))
        assert torch.equal(img, local.encode_image(x))
    assert img.shape == txt.shape == (2, json.loads((snapshot(R.CLIP) / "open_clip_config.json").read_text())[
        "model_cfg"]["embed_dim"])
    assert (snapshot(R.CLIP) / "open_clip_pytorch_model.bin").is_file()


# ---------------------------------------------------------------------------------------------- transformers LMs
def test_blip2_captions_a_224px_image(cache):
    import torch
    from PIL import Image
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    snap = snapshot(R.BLIP2)
    assert json.loads((snap / "processor_config.json").read_text())["num_query_tokens"] == 32
    proc = Blip2Processor.from_pretrained(snap, local_files_only=True)
    model = Blip2ForConditionalGeneration.from_pretrained(snap, local_files_only=True).eval()
    assert proc.tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_index == 50265
    assert proc.tokenizer.decode([model.config.text_config.eos_token_id]) == "\n"
    image = Image.fromarray(rng_images(1)[0])
    for text in (None, "Question: what is this? Answer:"):
        inputs = proc(images=image, text=text, return_tensors="pt")
        assert inputs["pixel_values"].shape == (1, 3, 224, 224)
        if text is not None:  # the processor prepends the 32 query-token placeholders
            assert int((inputs["input_ids"] == model.config.image_token_index).sum()) == 32
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4)
        new = out.shape[1] - (inputs["input_ids"].shape[1] if text is not None else 0)
        assert new >= 4 and isinstance(proc.batch_decode(out, skip_special_tokens=True)[0], str)


CHATS = {R.MISTRAL: ("<s> [INST] hi [/INST]", "<s> [INST] Be brief.\n\nhi [/INST]")}


def test_llama2_is_the_base_model_and_completes_in_context_prompts(cache):
    """Geng et al. prompt LLaMA-2 7B (after SynCLR) with in-context examples: the base repo, no chat template; the
    captioner continues the prompt up to its first newline."""
    from transformers import AutoTokenizer

    from synscale.methods.llm import LLMCaptioner

    snap = snapshot(R.LLAMA2)
    tok = AutoTokenizer.from_pretrained(R.LLAMA2, local_files_only=True)
    assert tok.chat_template is None and len(tok) == 32000 and "chat" not in R.LLAMA2
    cap = LLMCaptioner(snap, device="cpu", batch_size=2, seed=0, role="llama2", completion=True, max_new_tokens=8)
    prompts = ["object: tench => A tench in a pond.\nobject: goldfish =>", "object: lighthouse =>"]
    out = cap.complete(prompts)
    assert len(out) == 2 and all("\n" not in t for t in out) and out == cap.complete(prompts)  # seeded per pass
    chat = LLMCaptioner(snap, device="cpu", role="llama2")
    assert cap.key() != chat.key()  # completions and chat answers never share a cache


@pytest.mark.parametrize("repo", [R.MISTRAL])
def test_chat_llm_template_and_generation(cache, repo):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    snap = snapshot(repo)
    real = json.loads(R._real_path(repo, "tokenizer_config.json").read_text())["chat_template"]
    tok = AutoTokenizer.from_pretrained(repo, local_files_only=True, padding_side="left")
    assert tok.chat_template == real and len(tok) == 32000
    user = [{"role": "user", "content": "hi"}]
    assert tok.apply_chat_template(user, tokenize=False) == CHATS[repo][0]
    system = [{"role": "system", "content": "Be brief."}, *user]
    assert tok.apply_chat_template(system, tokenize=False) == CHATS[repo][1]
    assert tok("the tench").input_ids[0] == 1 and tok.decode(tok("the tench").input_ids[1:]) == "the tench"
    lm = AutoModelForCausalLM.from_pretrained(snap, local_files_only=True, dtype="auto").eval()
    assert str(lm.dtype) == "torch." + json.loads((snap / "config.json").read_text())["torch_dtype"]
    tok.pad_token = tok.eos_token
    enc = tok.apply_chat_template([user, system], add_generation_prompt=True, return_tensors="pt", padding=True,
                                  return_dict=True)
    torch.manual_seed(0)
    with torch.no_grad():
        out = lm.generate(**enc, max_new_tokens=4, do_sample=True, pad_token_id=tok.eos_token_id)
    assert out.shape[1] > enc["input_ids"].shape[1]
    assert any(s.strip() for s in tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True))


def test_word2sen_t5_generates_words(cache):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(R.WORD2SEN, local_files_only=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(R.WORD2SEN, local_files_only=True).eval()
    assert len(tok) == 32100 and tok.convert_tokens_to_ids("<extra_id_0>") == 32099 and tok.eos_token_id == 1
    enc = tok(["tench", "goldfish"], return_tensors="pt", padding=True)
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(**enc, do_sample=True, top_p=0.95, max_new_tokens=8)
    assert all(s.strip() for s in tok.batch_decode(out, skip_special_tokens=True))


# ------------------------------------------------------------------------------------------- FID and LPIPS files
def test_fid_inception_and_lpips_alex_load_offline(cache):
    import torch
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    from synscale.methods.metrics import fid_network, lpips_network

    features = fid_network(cache.built["fid_inception"])
    imgs = rng_images(4, side=64)
    f = features(imgs)
    assert f.shape == (4, 2048) and np.isfinite(f).all() and f.std() > 0
    assert len(torch.load(cache.built["fid_inception"], weights_only=True)) == 566
    assert Path(torch.hub.get_dir()) == cache.torch_home / "hub"
    distance = lpips_network("alex")
    d = distance(imgs[:2], imgs[2:])
    assert d.shape == (2,) and np.isfinite(d).all() and (d > 0).all()
    assert float(distance(imgs[:1], imgs[:1])[0]) == pytest.approx(0.0, abs=1e-6)
    metric = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)
    x = torch.from_numpy(imgs[:2]).permute(0, 3, 1, 2).float().div(255)
    assert torch.isfinite(metric(x, x.flip(-1)))


def test_build_took_seconds(cache):
    assert cache.seconds < 60, cache.seconds  # the whole cache of stand-ins, all roles
