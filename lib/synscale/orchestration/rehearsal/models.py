"""Tiny random-weight stand-ins for every real model the ``paper`` profiles name, under the real names.

Each ``build_<role>(hf_home, torch_home)`` writes one stand-in into the Hugging Face hub cache under
``hf_home`` (``hub.write_repo``: real repo id, blobs, snapshot symlinks, ``refs/main``) or into torch's download
cache under ``torch_home``, and returns the repo id or the file path. What is **real** and what is **shrunk**:

- real: the repo id, the pipeline/model/tokenizer/scheduler classes, the file names and layout (components,
  ``fp16`` variants, shards and their index names), every config key, and every value that is not a width or a
  depth: scheduler configs verbatim, vocabulary sizes, special-token ids, chat templates, image sizes and
  normalisation, IF's ``learned_range`` variance, aMUSEd's codebook 8192 and mask token 8255, BLIP-2's 32 query
  tokens and ``<image>`` id 50265. The config files come from ``real/<org>--<name>/`` (copied from the research
  reports ``/work/research/{diffusers,other}_configs.md``; provenance labels in ``SOURCES`` below).
- shrunk: widths (hidden sizes, channels, heads, feed-forward sizes), depths (layers, blocks per level) and the
  diffusion pipelines' default image side (SD 512 -> 64 px, aMUSEd 256 -> 64 px; IF stage I is 64 px already).
  Weights are random (seeded from the repo id and component, so builds are deterministic).
- deviations the real repos force on an offline machine without ``sentencepiece``: T5 / Llama / Mistral tokenizers
  ship a ``tokenizer.json`` (the real DeepFloyd IF and Word2Sen repos have only ``spiece.model``), built from
  real-looking vocabularies of the real sizes (CLIP's BPE words fill the piece lists, so sampled ids decode to words).
  The CLIP tokenizer is the real one (open_clip's bundled BPE, ids identical to openai's ``vocab.json``).
- fixed architectures (FID Inception, torchvision AlexNet) keep the full state dict; every tensor is a strided view
  of a small random storage, so the ``.pth`` files are well under 1 MB yet load strictly.

Nothing here touches the network.
"""
from __future__ import annotations

import copy
import gzip
import importlib.util
import json
import math
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from synscale.orchestration.rehearsal.hub import hub_dir, torch_checkpoints, write_repo

REAL = Path(__file__).with_name("real")

SD = "stable-diffusion-v1-5/stable-diffusion-v1-5"
IF = "DeepFloyd/IF-I-XL-v1.0"
IF2 = "DeepFloyd/IF-II-L-v1.0"
MUSE = "amused/amused-256"
ORACLE = "timm/vit_base_patch16_224.augreg_in21k_ft_in1k"
ORACLE_LARGE = "timm/vit_large_patch16_224.augreg_in21k_ft_in1k"
CLIP = "laion/CLIP-ViT-B-16-laion2B-s34B-b88K"
BLIP2 = "Salesforce/blip2-opt-2.7b"
MISTRAL = "mistralai/Mistral-7B-Instruct-v0.2"
LLAMA2 = "meta-llama/Llama-2-7b-hf"
WORD2SEN = "mrm8488/t5-base-finetuned-common_gen"
FID_INCEPTION = "pt_inception-2015-12-05-6726825d.pth"
LPIPS_ALEX = "alexnet-owt-7be5be79.pth"

#: Where the values of each file in ``real/`` come from (the files themselves are written here: the published keys and
#: values, re-serialized with sorted keys). VERBATIM = every key and value of the repo's file; VERIFIED = the real
#: content, checked against its published size; DERIVED = from a duplicate/re-save of the repo; RECALLED = unverified.
SOURCES = {
    SD: "all files VERBATIM (runwayml mirror @1d0c4eb; same files as stable-diffusion-v1-5@451f4fe)",
    IF: "model_index VERIFIED (whitespace reconstructed), scheduler/watermarker/config.yml VERBATIM, unet RE-SAVED "
        "(diffusers 0.19: real values, newer default keys), text_encoder/tokenizer/feature_extractor RECALLED, "
        "safety_checker = SD's CLIP-L/14 CLIPConfig (RECALLED as the same)",
    IF2: "no file of the real repo at hand: model_index, schedulers and the UNet's layout DERIVED from diffusers' "
         "scripts/convert_if.py (super-resolution pipeline) and its tests' super-resolution components",
    MUSE: "model_index/transformer VERBATIM, vqvae/scheduler/text_encoder VERBATIM (amused-512 sibling), tokenizer "
          "configs RECALLED",
    ORACLE: "config.json VERIFIED (586 B)",
    ORACLE_LARGE: "config.json INFERRED from the base repo and timm's registry",
    CLIP: "open_clip_config.json VERIFIED (469 B)",
    BLIP2: "config.json/processor_config.json VERIFIED, preprocessor/tokenizer/special tokens/generation DERIVED",
    MISTRAL: "config/generation/special tokens DERIVED, chat_template VERIFIED (2024-05-08), other tokenizer keys "
             "DERIVED",
    LLAMA2: "config/special tokens/tokenizer keys DERIVED from the chat sibling (same architecture and tokenizer; "
            "no chat_template: a base model), generation_config RECALLED",
    WORD2SEN: "config.json RECALLED (t5-base values), tokenizer_config.json (25 B) and special tokens RECALLED",
}


# ---------------------------------------------------------------------------------------------------- small helpers
def _real_path(repo: str, rel: str) -> Path:
    return REAL / repo.replace("/", "--") / rel


def _real(repo: str, rel: str) -> dict[str, Any]:
    """A real config file of ``repo`` (see ``SOURCES``) as a dict."""
    return json.loads(_real_path(repo, rel).read_text())


def _copy_real(repo: str, rel: str, out: Path) -> None:
    """Copy a real file byte for byte to ``out/rel``."""
    dst = out / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_real_path(repo, rel), dst)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` applied recursively (dict values merge, others replace); key order of ``base`` kept."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _write_json(path: Path, obj: Any, indent: int | None = 2, newline: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=indent, ensure_ascii=False) + ("\n" if newline else ""))


def _shrunk(repo: str, rel: str, out: Path, over: dict[str, Any]) -> dict[str, Any]:
    """Write the real config ``rel`` of ``repo`` with widths/depths ``over`` to ``out/rel``; returns it."""
    cfg = _merge(_real(repo, rel), over)
    _write_json(out / rel, cfg)
    return cfg


def _seed(tag: str) -> None:
    """Seed torch from a name, so a component's weights do not depend on what was built before it."""
    import torch

    torch.manual_seed(zlib.crc32(tag.encode()))


@contextmanager
def _quiet() -> Iterator[None]:
    """No transformers/diffusers progress bars while building (restored afterwards)."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    bars = tlog.is_progress_bar_enabled(), dlog.is_progress_bar_enabled()
    tlog.disable_progress_bar()
    dlog.disable_progress_bar()
    try:
        yield
    finally:
        if bars[0]:
            tlog.enable_progress_bar()
        if bars[1]:
            dlog.enable_progress_bar()


def _build_in_tmp(repo: str, hf_home: Path, fill: Callable[[Path], None]) -> str:
    """Let ``fill`` write the repo's files into a scratch folder, then put them into the hub cache as ``repo``."""
    with tempfile.TemporaryDirectory(prefix="synscale-rehearsal-") as tmp, _quiet():
        fill(Path(tmp))
        write_repo(hub_dir(hf_home), repo, Path(tmp))
    return repo


# ------------------------------------------------------------------------------------------------------ weight files
def _variant(name: str, variant: str | None) -> str:
    """``diffusion_pytorch_model.safetensors`` -> ``diffusion_pytorch_model.fp16.safetensors`` (transformers' rule)."""
    if variant is None:
        return name
    stem, ext = name.rsplit(".", 1)
    return f"{stem}.{variant}.{ext}"


def _save_diffusers(model, folder: Path, variants: tuple[str | None, ...]) -> None:
    """The weights of a diffusers model as ``diffusion_pytorch_model[.<variant>].safetensors`` (fp32 / fp16)."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    for v in variants:
        dtype = torch.float16 if v == "fp16" else torch.float32
        sd = {k: t.detach().to(dtype).contiguous() for k, t in model.state_dict().items()}
        save_file(sd, str(folder / _variant("diffusion_pytorch_model.safetensors", v)), metadata={"format": "pt"})


def _state_of(model, dtype) -> dict:
    """A transformers model's tensors as ``save_pretrained`` writes them (tied duplicates removed), in ``dtype``."""
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp:
        model.to(dtype).save_pretrained(tmp, safe_serialization=True)
        files = sorted(Path(tmp).glob("*.safetensors"))
        state: dict = {}
        for f in files:
            state.update(load_file(str(f)))
    return state


def _save_transformers(model, folder: Path, dtype, variant: str | None = None, shards: int = 1) -> None:
    """A transformers model's weights as ``model[.<variant>].safetensors``, or as ``shards`` files
    ``model[.<variant>]-0000k-of-0000n.safetensors`` plus ``model.safetensors.index[.<variant>].json`` (the names
    ``save_pretrained`` gives sharded checkpoints; the real repos are sharded)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = _state_of(model, dtype)
    if shards == 1:
        save_file(state, str(folder / _variant("model.safetensors", variant)), metadata={"format": "pt"})
        return
    keys = list(state)
    sizes = [state[k].numel() * state[k].element_size() for k in keys]
    total, groups = sum(sizes), [[] for _ in range(shards)]
    acc = 0
    for k, s in zip(keys, sizes):  # contiguous runs of keys, about equal bytes per shard
        groups[min(shards - 1, int((acc + s / 2) * shards / total))].append(k)
        acc += s
    if any(not g for g in groups):  # one tensor outweighs the rest (a vocabulary embedding): equal key counts
        if len(keys) < shards:
            raise ValueError(f"cannot split {len(keys)} tensors into {shards} shards")
        cuts = [round(i * len(keys) / shards) for i in range(shards + 1)]
        groups = [keys[cuts[i] : cuts[i + 1]] for i in range(shards)]
    weight_map = {}
    for i, group in enumerate(groups, start=1):
        stem = "model" if variant is None else f"model.{variant}"
        name = f"{stem}-{i:05d}-of-{shards:05d}.safetensors"
        save_file({k: state[k] for k in group}, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(group, name))
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    _write_json(folder / _variant("model.safetensors.index.json", variant), index)


# -------------------------------------------------------------------------------------------------------- tokenizers
def _bpe_file() -> Path:
    """open_clip's bundled CLIP BPE merges (found without importing open_clip)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("open_clip is needed for its bundled CLIP BPE file")
    return Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 byte values, in vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


@lru_cache(maxsize=1)
def _clip_merges() -> tuple[str, ...]:
    with gzip.open(_bpe_file()) as f:
        lines = f.read().decode("utf-8").split("\n")
    return tuple(lines[1 : 49152 - 256 - 2 + 1])  # exactly what open_clip's SimpleTokenizer uses: 48,894 merges


@lru_cache(maxsize=1)
def _clip_vocab() -> dict[str, int]:
    """openai CLIP's ``vocab.json``: 256 bytes, the same with ``</w>``, one token per merge, then the 2 specials."""
    units = _bytes_to_unicode()
    tokens = units + [u + "</w>" for u in units] + [m.replace(" ", "") for m in _clip_merges()]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


@lru_cache(maxsize=1)
def _words() -> tuple[str, ...]:
    """English-looking whole words from CLIP's BPE, most frequent first (fill for the other vocabularies)."""
    out: list[str] = []
    seen: set[str] = set()
    for m in _clip_merges():
        w = m.replace(" ", "")
        if w.endswith("</w>") and w[:-4].isascii() and w[:-4].isalpha() and w[:-4] not in seen:
            seen.add(w[:-4])
            out.append(w[:-4])
    return tuple(out)


def _write_clip_tokenizer(repo: str, out: Path, rel_dir: str = "tokenizer") -> None:
    """The real CLIP BPE tokenizer (vocab 49,408; ``<|startoftext|>`` 49406, ``<|endoftext|>`` 49407) with the
    repo's real ``tokenizer_config.json`` / ``special_tokens_map.json``."""
    d = out / rel_dir
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.json").write_text(json.dumps(_clip_vocab(), ensure_ascii=False))
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_clip_merges()) + "\n")
    for f in ("special_tokens_map.json", "tokenizer_config.json"):
        _copy_real(repo, f"{rel_dir}/{f}", out)


def _tokenizer_json(tok) -> bytes:
    """The ``tokenizer.json`` a transformers tokenizer saves."""
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        return (Path(tmp) / "tokenizer.json").read_bytes()


@lru_cache(maxsize=1)
def _t5_tokenizer_bytes() -> bytes:
    """T5's sentencepiece vocabulary as a ``tokenizer.json`` (Unigram): ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, 31,997
    pieces (characters, then ``▁word`` pieces from CLIP's words), then ``<extra_id_99>`` … ``<extra_id_0>`` =
    32,100 tokens, like t5-base / t5-v1_1 (model vocab 32,128)."""
    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    chars = [chr(c) for c in range(33, 127)]
    pieces += [(c, -10.0) for c in chars] + [("▁" + c, -9.0) for c in chars]
    have = {p for p, _ in pieces}
    for rank, w in enumerate(_words()):
        if len(pieces) >= 32000:
            break
        if "▁" + w not in have:
            pieces.append(("▁" + w, -3.0 - rank * 1e-4))
    extra = [f"<extra_id_{i}>" for i in range(100)]
    pieces += [(e, 0.0) for e in reversed(extra)]
    tok = T5Tokenizer(vocab=pieces, extra_ids=100, additional_special_tokens=extra)
    return _tokenizer_json(tok)


def _t5_tokenizer_json(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_t5_tokenizer_bytes())


@lru_cache(maxsize=1)
def _llama_tokenizer_bytes() -> bytes:
    """The Llama/Mistral sentencepiece layout as a ``tokenizer.json`` (BPE with byte fallback): ``<unk>`` 0, ``<s>``
    1, ``</s>`` 2, ``<0x00>`` … ``<0xFF>`` 3–258, ``▁`` and ASCII characters, then ``▁word`` pieces to 32,000;
    ``<s>`` is prepended by the post-processor (as the real ``tokenizer.json``)."""
    from transformers import LlamaTokenizer

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for ch in ["▁"] + [chr(c) for c in range(33, 127)]:
        vocab.setdefault(ch, len(vocab))
    merges = [("▁", "t"), ("h", "e"), ("▁t", "he")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    for w in _words():
        if len(vocab) >= 32000:
            break
        vocab.setdefault("▁" + w, len(vocab))
    tok = LlamaTokenizer(vocab=vocab, merges=merges, legacy=False, add_bos_token=True, add_eos_token=False)
    return _tokenizer_json(tok)


def _llama_tokenizer_json(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_llama_tokenizer_bytes())


def _opt_tokenizer(out: Path) -> int:
    """OPT's byte-level BPE (GPT2Tokenizer): ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, bytes, ``Ċ`` (newline,
    OPT's BLIP-2 eos) at 50118, ``Ġword`` pieces, 50,265 entries, then ``<image>`` 50265; writes ``tokenizer.json``,
    ``vocab.json``, ``merges.txt``. Returns the ``<image>`` id."""
    from tokenizers import AddedToken
    from transformers import GPT2Tokenizer

    merges = [("Ġ", "t"), ("Ġ", "a"), ("h", "e"), ("Ġt", "he")]
    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + [u for u in _bytes_to_unicode() if u != "Ċ"]
    tokens += [a + b for a, b in merges]
    seen = {*tokens, "Ċ"}
    for w in ["Ġ" + w for w in _words()] + list(_words()) + [m.replace(" ", "") for m in _clip_merges()]:
        if len(tokens) == 50264:
            break
        if w not in seen and "</w>" not in w:
            tokens.append(w)
            seen.add(w)
    tokens.insert(50118, "Ċ")  # the newline byte at OPT's id 50118 (BLIP-2's eos_token_id)
    if len(tokens) != 50265:
        raise AssertionError(f"OPT stand-in vocabulary has {len(tokens)} tokens, not 50,265")
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = GPT2Tokenizer(vocab=vocab, merges=merges, bos_token="</s>", eos_token="</s>", unk_token="</s>",
                        pad_token="<pad>", add_bos_token=True)
    tok.add_special_tokens({"additional_special_tokens": [AddedToken("<image>", normalized=False, special=True)]})
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        shutil.copyfile(Path(tmp) / "tokenizer.json", out / "tokenizer.json")
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    return tok.convert_tokens_to_ids("<image>")


# ------------------------------------------------------------------------------------------- diffusers pipelines
#: CLIP text tower (SD's CLIPTextModel, aMUSEd's CLIPTextModelWithProjection): 768 wide, 12 layers -> 16, 2. The
#: real 49,408 x width token embedding is most of each stand-in's bytes, hence 16 rather than 32.
_CLIP_TEXT = {"hidden_size": 16, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 2,
              "projection_dim": 16}
#: CLIP-L/14 vision tower of the safety checkers: 1024 wide, 24 layers -> 32, 2 (224 px, patch 14 kept).
_CLIP_VISION = {"hidden_size": 32, "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2}


def _safety_config(architecture: str) -> dict[str, Any]:
    """SD's safety-checker CLIPConfig (CLIP-L/14) shrunk; IF's is the same CLIP-L/14 config (convert_if.py), whose
    ``CLIPVisionModelWithProjection`` also reads ``vision_config.projection_dim``."""
    size = dict(_CLIP_VISION)
    over = {"projection_dim": 32, "text_config": size, "text_config_dict": size, "vision_config": size,
            "vision_config_dict": size}
    cfg = _merge(_real(SD, "safety_checker/config.json"), over)
    if architecture != "StableDiffusionSafetyChecker":
        cfg.pop("_commit_hash", None)
        cfg["_name_or_path"] = "openai/clip-vit-large-patch14"
        cfg["architectures"] = [architecture]
        cfg["vision_config"]["projection_dim"] = cfg["projection_dim"]
    return cfg


def _clip_text_model(cls_name: str, cfg: dict[str, Any], tag: str):
    import transformers

    _seed(tag)
    conf = transformers.CLIPTextConfig(**{k: v for k, v in cfg.items() if not k.startswith("_")})
    return getattr(transformers, cls_name)(conf).eval()


def _sd_safety_checker(out: Path, variants: tuple[str | None, ...], tag: str) -> None:
    """StableDiffusionSafetyChecker with thresholds 1.0 (cosine - 1 is never > 0: it never blacks an image out)."""
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig

    cfg = _safety_config("StableDiffusionSafetyChecker")
    _write_json(out / "safety_checker/config.json", cfg)
    _seed(tag)
    model = StableDiffusionSafetyChecker(CLIPConfig.from_dict(cfg)).eval()
    with torch.no_grad():
        model.concept_embeds.normal_()
        model.special_care_embeds.normal_()
        model.concept_embeds_weights.fill_(1.0)
        model.special_care_embeds_weights.fill_(1.0)
    for v in variants:
        _save_transformers(model, out / "safety_checker", torch.float16 if v == "fp16" else torch.float32, v)


#: The SD UNet config's ``_diffusers_version`` (real "0.6.0"; see ``build_sd``).
_SD_UNET_VERSION = "0.9.0"


def build_sd(hf_home: Path, torch_home: Path) -> str:
    """``stable-diffusion-v1-5/stable-diffusion-v1-5`` (StableDiffusionPipeline), fp32 and fp16 weights.

    Real: model_index.json (with safety_checker/feature_extractor), PNDMScheduler config, tokenizer (CLIP BPE and
    its configs), feature_extractor verbatim; every config key. Shrunk: UNet channels 320/640/1280/1280 -> 16/16/32/32,
    2 -> 1 layer per block, 8 -> 2 heads, cross-attention 768 -> 16, sample_size 64 -> 8 (image 512 -> 64 px);
    VAE 128/256/512/512 -> 16/16/32/32 (still 4 levels: latent factor 8), 2 -> 1 layer; text encoder 768 x 12 ->
    16 x 2 (vocab 49,408 and 77 positions kept); safety checker's CLIP-L/14 vision tower -> 32 x 2.
    One non-size change: the UNet config's ``_diffusers_version`` is ``_SD_UNET_VERSION``, because
    ``StableDiffusionPipeline`` resets ``sample_size`` < 64 to 64 in UNet configs written by diffusers < 0.9 (the
    real one says 0.6.0), which would make the default image 512 px again."""

    def fill(out: Path) -> None:
        import torch
        from diffusers import AutoencoderKL, UNet2DConditionModel

        for rel in ("model_index.json", "scheduler/scheduler_config.json",
                    "feature_extractor/preprocessor_config.json"):
            _copy_real(SD, rel, out)
        _write_clip_tokenizer(SD, out)
        unet = _shrunk(SD, "unet/config.json", out, {
            "block_out_channels": [16, 16, 32, 32], "layers_per_block": 1, "norm_num_groups": 8,
            "attention_head_dim": 2, "cross_attention_dim": _CLIP_TEXT["hidden_size"], "sample_size": 8,
            "_diffusers_version": _SD_UNET_VERSION})
        vae = _shrunk(SD, "vae/config.json", out, {
            "block_out_channels": [16, 16, 32, 32], "layers_per_block": 1, "norm_num_groups": 8, "sample_size": 64})
        text = _shrunk(SD, "text_encoder/config.json", out, _CLIP_TEXT)
        fp = (None, "fp16")
        _seed(f"{SD}/unet")
        _save_diffusers(UNet2DConditionModel.from_config(unet), out / "unet", fp)
        _seed(f"{SD}/vae")
        _save_diffusers(AutoencoderKL.from_config(vae), out / "vae", fp)
        te = _clip_text_model("CLIPTextModel", text, f"{SD}/text_encoder")
        _save_transformers(te, out / "text_encoder", torch.float32)
        _save_transformers(te, out / "text_encoder", torch.float16, "fp16")
        _sd_safety_checker(out, fp, f"{SD}/safety_checker")

    return _build_in_tmp(SD, hf_home, fill)


#: The T5-v1.1-XXL encoder (4096 wide, 24 layers, 64 heads) -> 32 wide, 2 layers, 4 heads of 8; vocab 32,128 kept.
_T5_IF = {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_heads": 4, "num_layers": 2, "num_decoder_layers": 2}


def build_if(hf_home: Path, torch_home: Path) -> str:
    """``DeepFloyd/IF-I-XL-v1.0`` (IFPipeline, stage I), **fp16 variant only** (as caches made with
    ``variant="fp16"``); the watermarker has no fp16 file in the real repo either.

    Real: model_index.json (``_ignore_files``, ``deepfloyd_if`` safety checker and watermarker), DDPMScheduler
    config (``learned_range``, thresholding, stray ``lambda_min_clipped``), root ``config.yml``, watermarker config
    (``_class_name`` "IFWatermark") and its fixed (62, 62, 4) uint8 buffer (random pattern), the text encoder's
    sharded fp16 layout (``model.fp16-0000k-of-00002.safetensors`` + ``model.safetensors.index.fp16.json``), every
    UNet key (``text_proj`` encoder_hid_dim, ``text`` addition embedding, SimpleCrossAttn blocks, 6 output
    channels, sample_size 64 = 64 px). Shrunk: UNet 704·(1,2,3,4) -> 8·(1,2,3,4) channels, 3 -> 1 layer per block,
    head dim 64 -> 8, cross-attention 2816 -> 32, encoder_hid_dim 4096 -> 32 (= T5 width), pooling heads 64 -> 4;
    T5 encoder 4096 x 24 -> 32 x 2; safety checker's CLIP-L/14 vision tower -> 32 x 2 with heads that never flag.
    Tokenizer: ``tokenizer.json`` (T5 Unigram layout, 32,100 tokens) instead of the real ``spiece.model``."""

    def fill(out: Path) -> None:
        import torch
        from diffusers import UNet2DConditionModel
        from diffusers.pipelines.deepfloyd_if.safety_checker import IFSafetyChecker
        from safetensors.torch import save_file
        from transformers import CLIPConfig, T5Config, T5EncoderModel

        for rel in ("model_index.json", "config.yml", "scheduler/scheduler_config.json", "watermarker/config.json",
                    "feature_extractor/preprocessor_config.json", "tokenizer/tokenizer_config.json",
                    "tokenizer/special_tokens_map.json"):
            _copy_real(IF, rel, out)
        _t5_tokenizer_json(out / "tokenizer/tokenizer.json")
        unet = _shrunk(IF, "unet/config.json", out, {
            "block_out_channels": [8, 16, 24, 32], "layers_per_block": 1, "norm_num_groups": 8,
            "attention_head_dim": 8, "cross_attention_dim": 32, "encoder_hid_dim": _T5_IF["d_model"],
            "addition_embed_type_num_heads": 4})
        text = _shrunk(IF, "text_encoder/config.json", out, _T5_IF)
        _seed(f"{IF}/unet")
        _save_diffusers(UNet2DConditionModel.from_config(unet), out / "unet", ("fp16",))
        _seed(f"{IF}/text_encoder")
        te = T5EncoderModel(T5Config(**{k: v for k, v in text.items() if not k.startswith("_")})).eval()
        _save_transformers(te, out / "text_encoder", torch.float16, "fp16", shards=2)
        safety = _safety_config("IFSafetyChecker")
        _write_json(out / "safety_checker/config.json", safety)
        _seed(f"{IF}/safety_checker")
        checker = IFSafetyChecker(CLIPConfig.from_dict(safety)).eval()
        with torch.no_grad():  # p/w scores are 0, never above the 0.5 thresholds: no image is blacked out
            for head in (checker.p_head, checker.w_head):
                head.weight.zero_()
                head.bias.zero_()
        _save_transformers(checker, out / "safety_checker", torch.float16, "fp16")
        _seed(f"{IF}/watermarker")
        mark = torch.randint(0, 256, (62, 62, 4), dtype=torch.uint8)
        mark[..., 3] //= 4  # a faint alpha, as a watermark
        save_file({"watermark_image": mark}, str(out / "watermarker/diffusion_pytorch_model.safetensors"),
                  metadata={"format": "pt"})

    return _build_in_tmp(IF, hf_home, fill)


def build_if_stage2(hf_home: Path, torch_home: Path) -> str:
    """``DeepFloyd/IF-II-L-v1.0`` (IFSuperResolutionPipeline, stage II), **fp16 variant only**.

    DERIVED (``SOURCES``): the super-resolution UNet as diffusers' ``convert_if.py`` writes it — 6 input channels (the
    noisy image and stage I's image upscaled), 6 output channels (epsilon and the ``learned_range`` variance), the noise
    level added to stage I's image as a ``timestep`` class embedding, ResnetDownsample/-Upsample blocks at the high
    resolutions and SimpleCrossAttn blocks at the low ones, scale-shift norm, GELU, T5 text embeddings
    (``encoder_hid_dim``); its DDPM scheduler (``learned_range``, thresholding at 1.0) and image-noising scheduler
    (cosine). Shrunk: 8·(1,2,3,4) channels, 1 layer per block, head dim 8, T5 width 32 (stage I's stand-in); sample_size
    256 -> 64, as SD's 512 -> 64 (at 128 px stage II cost the suite minutes of CPU). The text encoder, tokenizer, safety
    checker, watermarker and feature extractor are null in ``model_index.json``: stage II takes stage I's prompt
    embeddings (as IF's own README loads it, ``text_encoder=None``)."""

    def fill(out: Path) -> None:
        from diffusers import DDPMScheduler, UNet2DConditionModel

        index = {"_class_name": "IFSuperResolutionPipeline", "_diffusers_version": "0.16.0"}
        index.update({k: [None, None] for k in ("feature_extractor", "safety_checker", "text_encoder", "tokenizer",
                                                "watermarker")})
        index.update({"image_noising_scheduler": ["diffusers", "DDPMScheduler"], "requires_safety_checker": False,
                      "scheduler": ["diffusers", "DDPMScheduler"], "unet": ["diffusers", "UNet2DConditionModel"]})
        _write_json(out / "model_index.json", dict(sorted(index.items())))
        DDPMScheduler(variance_type="learned_range", beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                      thresholding=True, dynamic_thresholding_ratio=0.95,
                      sample_max_value=1.0).save_config(str(out / "scheduler"))
        DDPMScheduler(beta_schedule="squaredcos_cap_v2").save_config(str(out / "image_noising_scheduler"))
        _seed(f"{IF2}/unet")
        unet = UNet2DConditionModel(
            sample_size=64, in_channels=6, out_channels=6, layers_per_block=1, block_out_channels=(8, 16, 24, 32),
            down_block_types=("ResnetDownsampleBlock2D", "ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D",
                              "SimpleCrossAttnDownBlock2D"),
            mid_block_type="UNetMidBlock2DSimpleCrossAttn",
            up_block_types=("SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D",
                            "ResnetUpsampleBlock2D"),
            norm_num_groups=8, cross_attention_dim=32, encoder_hid_dim=_T5_IF["d_model"], attention_head_dim=8,
            addition_embed_type="text", addition_embed_type_num_heads=4, cross_attention_norm="group_norm",
            resnet_time_scale_shift="scale_shift", act_fn="gelu", class_embed_type="timestep",
            mid_block_scale_factor=1.414, time_embedding_act_fn="gelu")
        unet.save_config(str(out / "unet"))
        _save_diffusers(unet, out / "unet", ("fp16",))

    return _build_in_tmp(IF2, hf_home, fill)


def build_muse(hf_home: Path, torch_home: Path) -> str:
    """``amused/amused-256`` (AmusedPipeline), **fp16 variant only**.

    Real: model_index.json, AmusedScheduler config (mask_token_id 8255 = vocab_size - 1, cosine), codebook 8192 and
    transformer vocab 8256, VQ 5 levels (16x downsampling), ``force_upcast``, every config key, the CLIP BPE
    tokenizer. Shrunk: UVit2D 1024 wide x 22 layers -> 32 x 2 (conv blocks 768 -> 32, 3 -> 1 res block, 16/12 -> 2
    heads, micro-conditioning 256·5 -> 8·5), sample_size 16 -> 4 tokens a side (image 256 -> 64 px); VQ channels
    128/256/256/512/768 -> 8/16/16/32/32, 2 -> 1 layer, latent 64 -> 8; text encoder 768 x 12 -> 16 x 2."""

    def fill(out: Path) -> None:
        import torch
        from diffusers import UVit2DModel, VQModel

        for rel in ("model_index.json", "scheduler/scheduler_config.json"):
            _copy_real(MUSE, rel, out)
        _write_clip_tokenizer(MUSE, out)
        text = _shrunk(MUSE, "text_encoder/config.json", out, _CLIP_TEXT)
        tr = _shrunk(MUSE, "transformer/config.json", out, {
            "hidden_size": 32, "block_out_channels": 32, "in_channels": 32, "intermediate_size": 88,
            "cond_embed_dim": text["projection_dim"], "encoder_hidden_size": text["hidden_size"],
            "micro_cond_encode_dim": 8, "micro_cond_embed_dim": 40, "num_attention_heads": 2, "block_num_heads": 2,
            "num_hidden_layers": 2, "num_res_blocks": 1, "sample_size": 4})
        vq = _shrunk(MUSE, "vqvae/config.json", out, {
            "block_out_channels": [8, 16, 16, 32, 32], "layers_per_block": 1, "latent_channels": 8,
            "norm_num_groups": 8})
        _seed(f"{MUSE}/transformer")
        _save_diffusers(UVit2DModel.from_config(tr), out / "transformer", ("fp16",))
        _seed(f"{MUSE}/vqvae")
        _save_diffusers(VQModel.from_config(vq), out / "vqvae", ("fp16",))
        te = _clip_text_model("CLIPTextModelWithProjection", text, f"{MUSE}/text_encoder")
        _save_transformers(te, out / "text_encoder", torch.float16, "fp16")

    return _build_in_tmp(MUSE, hf_home, fill)


# ------------------------------------------------------------------------------------------------ timm, open_clip
def _build_timm_vit(repo: str, hf_home: Path, embed_dim: int, depth: int, num_heads: int) -> str:
    """A timm ViT repo: the real ``config.json`` plus ``model_args`` (honoured by ``hf-hub:`` and ``local-dir:``),
    ``model.safetensors`` and ``pytorch_model.bin`` (both real files); 1000 classes, 224 px, patch 16 kept."""

    def fill(out: Path) -> None:
        import timm
        import torch
        from safetensors.torch import save_file

        cfg = _real(repo, "config.json")
        args = {"embed_dim": embed_dim, "depth": depth, "num_heads": num_heads}
        cfg = {**cfg, "num_features": embed_dim, "model_args": args}
        _write_json(out / "config.json", cfg, newline=False)
        _seed(repo)
        model = timm.create_model(cfg["architecture"], pretrained=False, num_classes=cfg["num_classes"], **args)
        sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
        torch.save(sd, out / "pytorch_model.bin")

    return _build_in_tmp(repo, hf_home, fill)


def build_oracle(hf_home: Path, torch_home: Path) -> str:
    """``timm/vit_base_patch16_224.augreg_in21k_ft_in1k``: ViT-B/16 768 wide x 12 (12 heads) -> 32 x 2 (2 heads)."""
    return _build_timm_vit(ORACLE, hf_home, embed_dim=32, depth=2, num_heads=2)


def build_oracle_large(hf_home: Path, torch_home: Path) -> str:
    """``timm/vit_large_patch16_224.augreg_in21k_ft_in1k``: ViT-L/16 1024 x 24 (16 heads) -> 48 x 3 (3 heads)."""
    return _build_timm_vit(ORACLE_LARGE, hf_home, embed_dim=48, depth=3, num_heads=3)


def build_clip(hf_home: Path, torch_home: Path) -> str:
    """``laion/CLIP-ViT-B-16-laion2B-s34B-b88K`` (open_clip ``hf-hub:``): ``open_clip_config.json`` with the real
    ``preprocess_cfg`` and ``model_cfg`` shrunk — vision 768 x 12 -> 32 x 2 (head width 16), text 512 x 12 (8
    heads) -> 16 x 2 (2 heads), embedding 512 -> 16; image 224, patch 16, vocab 49,408, context 77 kept — and the
    weights as ``open_clip_model.safetensors`` and ``open_clip_pytorch_model.bin`` (fp32, as the real files), plus
    the CLIP BPE tokenizer files ``push_to_hf_hub`` writes (open_clip itself uses its bundled BPE)."""

    def fill(out: Path) -> None:
        import open_clip
        import torch
        from safetensors.torch import save_file

        cfg = _real(CLIP, "open_clip_config.json")
        cfg = _merge(cfg, {"model_cfg": {
            "embed_dim": 16, "vision_cfg": {"layers": 2, "width": 32, "head_width": 16},
            "text_cfg": {"width": 16, "heads": 2, "layers": 2}}})
        _write_json(out / "open_clip_config.json", cfg, newline=False)
        _seed(CLIP)
        model = open_clip.CLIP(**cfg["model_cfg"])
        sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(sd, str(out / "open_clip_model.safetensors"), metadata={"format": "pt"})
        torch.save(sd, out / "open_clip_pytorch_model.bin")
        _write_clip_files(out)

    return _build_in_tmp(CLIP, hf_home, fill)


def _write_clip_files(out: Path) -> None:
    """The transformers CLIP tokenizer files open_clip's ``push_to_hf_hub`` adds next to the weights."""
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(_clip_vocab(), ensure_ascii=False))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_clip_merges()) + "\n")
        tok = CLIPTokenizer(vocab=str(Path(tmp) / "vocab.json"), merges=str(Path(tmp) / "merges.txt"),
                            model_max_length=77)
        tok.save_pretrained(out)


# ---------------------------------------------------------------------------------------------- transformers LMs
def build_blip2(hf_home: Path, torch_home: Path) -> str:
    """``Salesforce/blip2-opt-2.7b`` (Blip2ForConditionalGeneration + Blip2Processor), fp32 in 2 shards as the real
    ``model-0000k-of-00002.safetensors`` + index.

    Real: every config key, 32 query tokens, ``image_token_index`` 50265 = the tokenizer's ``<image>``, OPT vocab
    50,304 with eos 50118 (newline), 224 px BlipImageProcessor, ``processor_config.json`` (68 B), the tokenizer
    configs. Shrunk: EVA ViT-g 1408 x 39 -> 32 x 2 (4 heads), Q-Former 768 x 12 -> 32 x 2 (4 heads), OPT-2.7B
    2560 x 32 (32 heads) -> 16 x 2 (2 heads; its 50,304 x width embedding is most of the bytes), feed-forward sizes
    4x width. Tokenizer: OPT layout (see ``_opt_tokenizer``) with ``tokenizer.json``, ``vocab.json``,
    ``merges.txt``."""

    def fill(out: Path) -> None:
        import torch
        from transformers import Blip2Config, Blip2ForConditionalGeneration

        image_id = _opt_tokenizer(out)
        for rel in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json",
                    "special_tokens_map.json", "generation_config.json"):
            _copy_real(BLIP2, rel, out)
        w = {"hidden_size": 32, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}
        cfg = _shrunk(BLIP2, "config.json", out, {
            "image_token_index": image_id, "vision_config": dict(w), "qformer_config": dict(w),
            "text_config": {"hidden_size": 16, "ffn_dim": 64, "word_embed_proj_dim": 16, "num_hidden_layers": 2,
                            "num_attention_heads": 2}})
        _seed(BLIP2)
        model = Blip2ForConditionalGeneration(Blip2Config.from_dict(cfg)).eval()
        _save_transformers(model, out, torch.float32, shards=2)

    return _build_in_tmp(BLIP2, hf_home, fill)


def _build_causal_lm(repo: str, hf_home: Path, over: dict[str, Any], dtype_name: str, shards: int) -> str:
    """A chat LLM repo: real config keys shrunk, real generation config, special tokens and ``tokenizer_config.json``
    (with the real ``chat_template``), a ``tokenizer.json`` of the sentencepiece layout (32,000 tokens), weights in
    the real dtype as ``shards`` safetensors files + index."""

    def fill(out: Path) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        for rel in ("generation_config.json", "special_tokens_map.json", "tokenizer_config.json"):
            _copy_real(repo, rel, out)
        _llama_tokenizer_json(out / "tokenizer.json")
        cfg = _shrunk(repo, "config.json", out, over)
        conf = AutoConfig.for_model(**{k: v for k, v in cfg.items() if not k.startswith("_")})
        _seed(repo)
        model = AutoModelForCausalLM.from_config(conf).eval()
        _save_transformers(model, out, getattr(torch, dtype_name), shards=shards)

    return _build_in_tmp(repo, hf_home, fill)


def build_mistral(hf_home: Path, torch_home: Path) -> str:
    """``mistralai/Mistral-7B-Instruct-v0.2``: 4096 x 32 (32 heads, 8 KV heads) -> 32 x 2 (4 heads, 1 KV head: the
    same 4:1 grouping), MLP 14336 -> 112; bf16 in 3 shards as the real repo; vocab 32,000, rope 1e6 kept."""
    return _build_causal_lm(MISTRAL, hf_home, {
        "hidden_size": 32, "intermediate_size": 112, "num_attention_heads": 4, "num_key_value_heads": 1,
        "num_hidden_layers": 2}, "bfloat16", shards=3)


def build_llama2(hf_home: Path, torch_home: Path) -> str:
    """``meta-llama/Llama-2-7b-hf`` (the base model Geng et al. prompt): 4096 x 32 (32 heads = KV heads) -> 32 x 2
    (4 heads = KV heads), MLP 11008 -> 86; fp16 in 2 shards as the real repo; vocab 32,000 kept."""
    return _build_causal_lm(LLAMA2, hf_home, {
        "hidden_size": 32, "intermediate_size": 86, "num_attention_heads": 4, "num_key_value_heads": 4,
        "num_hidden_layers": 2}, "float16", shards=2)


def build_word2sen(hf_home: Path, torch_home: Path) -> str:
    """``mrm8488/t5-base-finetuned-common_gen`` (T5ForConditionalGeneration, fp32 ``model.safetensors``): t5-base
    768 x 12 (12 heads, d_ff 3072) -> 16 x 2 (2 heads of 8, d_ff 32), vocab 32,128 (tied embedding) kept; real
    ``tokenizer_config.json`` / ``special_tokens_map.json`` plus a ``tokenizer.json`` (the real repo has only
    ``spiece.model``, which this environment cannot read without sentencepiece)."""

    def fill(out: Path) -> None:
        import torch
        from transformers import T5Config, T5ForConditionalGeneration

        for rel in ("tokenizer_config.json", "special_tokens_map.json"):
            _copy_real(WORD2SEN, rel, out)
        _t5_tokenizer_json(out / "tokenizer.json")
        cfg = _shrunk(WORD2SEN, "config.json", out, {"d_model": 16, "d_kv": 8, "d_ff": 32, "num_heads": 2,
                                                     "num_layers": 2})
        _seed(WORD2SEN)
        model = T5ForConditionalGeneration(T5Config(**cfg)).eval()
        _save_transformers(model, out, torch.float32)

    return _build_in_tmp(WORD2SEN, hf_home, fill)


# --------------------------------------------------------------------------------------- fixed-architecture .pth
#: Strides of the views into the random storage, per tensor rank: neighbouring indices read different values.
_STRIDES = {1: (1,), 2: (13, 1), 4: (97, 13, 3, 1)}


def _view(base, shape: tuple[int, ...], gen):
    """A ``shape`` tensor that reads ``base`` through strides (a view: saving it stores only ``base``)."""
    import torch

    strides = _STRIDES[len(shape)]
    need = 1 + sum((n - 1) * s for n, s in zip(shape, strides))
    if need > base.numel():
        raise ValueError(f"storage of {base.numel()} too small for {shape}")
    offset = int(torch.randint(0, base.numel() - need + 1, (1,), generator=gen))
    return base.as_strided(shape, strides, base.storage_offset() + offset)


def _atomic_save(state: dict, path: Path) -> str:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".incomplete")
    torch.save(state, tmp)
    tmp.replace(path)
    return str(path)


def build_fid_inception(hf_home: Path, torch_home: Path) -> str:
    """``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``: the FID Inception-v3 state dict with the
    full architecture (566 keys, 2048-d pool features, 1008-way ``fc``) that torchmetrics' ``NoTrainInceptionV3`` /
    torch-fidelity load strictly (``metrics.fid_network``). Every conv/fc weight is a strided view of one random
    storage (131,072 floats); BatchNorm has running mean 0, variance 1, bias 0 and a gain sqrt(2 / fan-in) (views of
    a few constants), so activations keep unit scale through the 94 convolutions. File ~0.5 MB instead of 95 MB."""
    import torch
    import torchvision

    with torch.device("meta"):  # torchvision's Inception3 has torch-fidelity's module names (pytorch-fid's keys)
        net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    gen = torch.Generator().manual_seed(zlib.crc32(FID_INCEPTION.encode()))
    base = torch.randn(1 << 17, generator=gen)
    gains = sorted({math.sqrt(2.0 / math.prod(s[1:])) for k, s in shapes.items() if k.endswith("conv.weight")})
    consts = torch.tensor([0.0, 1.0, *gains])
    col = {g: i + 2 for i, g in enumerate(gains)}
    step = torch.zeros((), dtype=torch.long)
    state: dict = {}
    for k, s in shapes.items():
        if k.endswith("num_batches_tracked"):
            state[k] = step
        elif k.endswith("bn.weight"):
            conv = shapes[k.replace("bn.weight", "conv.weight")]
            i = col[math.sqrt(2.0 / math.prod(conv[1:]))]
            state[k] = consts[i : i + 1].expand(s)
        elif k.endswith(("bn.bias", "bn.running_mean", "fc.bias")):
            state[k] = consts[0:1].expand(s)
        elif k.endswith("bn.running_var"):
            state[k] = consts[1:2].expand(s)
        else:
            state[k] = _view(base, s, gen)
    return _atomic_save(state, torch_checkpoints(torch_home) / FID_INCEPTION)


def build_lpips_alex(hf_home: Path, torch_home: Path) -> str:
    """``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``: torchvision's full AlexNet state dict (5 convs and
    the 3 classifier layers that strict loading needs; LPIPS uses the convs), which torchmetrics'
    ``LearnedPerceptualImagePatchSimilarity(net_type="alex")`` loads offline from torch's hub cache (its linear
    heads ship inside torchmetrics). Each conv weight is a strided view of its own small random storage scaled by
    sqrt(2 / fan-in); classifier weights view one storage; biases are zero. File ~0.8 MB instead of 233 MB."""
    import torch
    import torchvision

    with torch.device("meta"):
        net = torchvision.models.alexnet(weights=None)
    gen = torch.Generator().manual_seed(zlib.crc32(LPIPS_ALEX.encode()))
    zero = torch.zeros(1)
    fc_base = torch.randn(1 << 16, generator=gen) * 0.01
    state: dict = {}
    for k, v in net.state_dict().items():
        s = tuple(v.shape)
        if k.endswith("bias"):
            state[k] = zero.expand(s)
        elif k.startswith("features"):
            need = 1 + sum((n - 1) * st for n, st in zip(s, _STRIDES[4]))
            base = torch.randn(need, generator=gen) * math.sqrt(2.0 / math.prod(s[1:]))
            state[k] = _view(base, s, gen)
        else:
            state[k] = _view(fc_base, s, gen)
    return _atomic_save(state, torch_checkpoints(torch_home) / LPIPS_ALEX)


# ----------------------------------------------------------------------------------------------------- the registry
STANDINS: dict[str, Callable[[Path, Path], str]] = {
    "sd": build_sd,
    "if": build_if,
    "if_stage2": build_if_stage2,
    "muse": build_muse,
    "oracle": build_oracle,
    "oracle_large": build_oracle_large,
    "clip": build_clip,
    "blip2": build_blip2,
    "mistral": build_mistral,
    "llama2": build_llama2,
    "word2sen": build_word2sen,
    "fid_inception": build_fid_inception,
    "lpips_alex": build_lpips_alex,
}
