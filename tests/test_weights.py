"""Weights resolved in one place: paper roles, repo ids and aliases through the Hugging Face cache layout (HF_HOME,
refs/main, fp16-only variants), overrides by environment variable, local paths, and one-line errors with the fix."""
import json

import pytest

from synscale.data import weights as W


def repo(hub, repo_id, files, rev="0" * 40, refs=True):
    """A repo in huggingface_hub's cache layout: refs/main -> snapshots/<rev>/<files> (no trailing newline)."""
    d = hub / ("models--" + repo_id.replace("/", "--"))
    snap = d / "snapshots" / rev
    for rel, text in files.items():
        (snap / rel).parent.mkdir(parents=True, exist_ok=True)
        (snap / rel).write_text(text)
    if refs:
        (d / "refs").mkdir(parents=True, exist_ok=True)
        (d / "refs" / "main").write_text(rev)
    return snap


def pipeline_files(variant=""):
    v = f".{variant}" if variant else ""
    index = {"_class_name": "IFPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5Tokenizer"],
             "scheduler": ["diffusers", "DDPMScheduler"], "watermarker": ["deepfloyd_if", "IFWatermarker"],
             "safety_checker": [None, None]}
    return {"model_index.json": json.dumps(index), "unet/config.json": "{}",
            f"unet/diffusion_pytorch_model{v}.safetensors": "w", "text_encoder/config.json": "{}",
            f"text_encoder/model{v}-00001-of-00002.safetensors": "w",
            f"text_encoder/model{v}-00002-of-00002.safetensors": "w",
            "text_encoder/model.safetensors.index" + (f".{variant}" if variant else "") + ".json": "{}",
            "watermarker/config.json": "{}", "watermarker/diffusion_pytorch_model.safetensors": "w",  # no fp16 one
            "scheduler/scheduler_config.json": "{}", "tokenizer/tokenizer.json": "{}"}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    for m in W.PAPER.values():
        monkeypatch.delenv(m.env, raising=False) if m.env != "TORCH_HOME" else None
    return tmp_path / "hf" / "hub"


def test_paper_roles_resolve_through_the_cache_with_aliases_and_fp16_only_variants(hub):
    snap = repo(hub, "DeepFloyd/IF-I-XL-v1.0", pipeline_files("fp16"))
    w = W.resolve("paper:if")
    assert (w.path, w.repo, w.variant) == (snap, "DeepFloyd/IF-I-XL-v1.0", "fp16")  # sharded fp16 text encoder too
    assert W.completeness(w, "diffusers") is None  # the watermarker's plain file is fine: it has no fp16 version
    alias = repo(hub, "runwayml/stable-diffusion-v1-5", {"model_index.json": "{}"})
    assert W.resolve("paper:sd").path == alias  # a cache holding the withdrawn id still works
    maintained = repo(hub, "stable-diffusion-v1-5/stable-diffusion-v1-5", {"model_index.json": "{}"})
    assert W.resolve("paper:sd").path == maintained  # the maintained copy first
    assert W.resolve("stable-diffusion-v1-5/stable-diffusion-v1-5").path == maintained
    plain = repo(hub, "org/plain-if", pipeline_files())
    assert W.resolve("org/plain-if", "if").variant is None and W.resolve("hf-hub:org/plain-if", "if").path == plain


def test_environment_variables_override_a_role_and_local_paths_work(hub, tmp_path, monkeypatch):
    local = tmp_path / "my-sd"
    local.mkdir()
    monkeypatch.setenv("SYNSCALE_SD", str(local))
    assert W.resolve("paper:sd").path == local
    snap = repo(hub, "me/finetuned-sd", {"model_index.json": "{}"})
    monkeypatch.setenv("SYNSCALE_SD", "me/finetuned-sd")
    assert W.resolve("paper:sd").path == snap
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "w.pth").write_text("x")
    assert W.resolve("~/w.pth").path == tmp_path / "w.pth"


def test_missing_or_broken_caches_are_one_line_with_the_fix(hub, tmp_path, monkeypatch):
    with pytest.raises(W.MissingModelError) as e:
        W.resolve("paper:muse")
    msg = str(e.value)
    assert "\n" not in msg and "amused/amused-256" in msg and "hf download amused/amused-256" in msg
    assert "SYNSCALE_MUSE" in msg and str(hub) in msg
    repo(hub, "amused/amused-256", {"model_index.json": "{}"}, refs=False)  # copied without refs/
    with pytest.raises(W.MissingModelError, match="has no refs/main"):
        W.resolve("paper:muse")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(W.MissingModelError, match=r"alexnet-owt-7be5be79\.pth does not exist \(TORCH_HOME\)"):
        W.resolve("paper:lpips_alex")
    with pytest.raises(W.MissingModelError, match="unknown paper model 'paper:dalle'"):
        W.resolve("paper:dalle")


def test_problems_name_incomplete_repos(hub):
    files = pipeline_files("fp16")
    del files["unet/diffusion_pytorch_model.fp16.safetensors"]
    repo(hub, "DeepFloyd/IF-I-XL-v1.0", files)
    repo(hub, "timm/vit_base_patch16_224.augreg_in21k_ft_in1k", {"config.json": "{}"})
    out = W.problems([("if", "paper:if"), ("oracle", "paper:oracle"), ("sd", "mini"), ("muse", "paper:muse")])
    assert len(out) == 3
    assert "component unet/ has no weights" in out[0] and "no model.safetensors or pytorch_model.bin" in out[1]
    assert "amused/amused-256" in out[2]
    table = W.inventory()
    assert set(table.role) == set(W.PAPER) and not table.found.any()
