"""The upstream CLIP: open_clip models, the mini world's tiny config, contrastive training, save and load.

At paper scale this is OpenCLIP ViT-B/16 from a local file (``create("ViT-B-16", pretrained=".../x.safetensors")``);
in the mini world it is ``synscale-mini-clip`` (``MINI_CONFIG``), a tiny open_clip CLIP on 32×32 images, trained
here with open_clip's ``ClipLoss`` on (image, caption) pairs. Both go through open_clip's own factory and tokenizer.

Training is deterministic and resumable: the batch and augmentation of step ``s`` depend only on ``(seed, s)``,
checkpoints (model + optimizer + step + RNG state) land in ``ckpt_dir`` and a later call resumes from the latest,
so a killed run ends with the same weights as an uninterrupted one (CPU, same seed).

Data modes (Fan et al. sec. 5.2) at a fixed caption count: ``real`` (each caption's real image), ``synthetic``
(each caption's generated image) and ``synthetic+real`` (each step picks, per caption, its real or its synthetic
image at random: :func:`pick_alternate`). Hyper-parameters follow Table A3: set ``S`` below a caption threshold
(100M in the paper), ``L`` at or above it (:func:`hparam_set`), warm-up 600 / 1200 / 2000 by scale
(:func:`warmup_for_scale`); the mini world scales thresholds, batch sizes and warm-ups with one factor.
At paper scale the same data modes go through open_clip's own trainer on webdataset shards
(``python -m synscale.methods.openclip_train``, under torchrun); :func:`open_clip_argv` writes that command,
:func:`mode_sources` picks the shards of each data mode and :func:`train_open_clip` runs it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from synscale.data.shards import brace, reshard
from synscale.data.weights import is_repo_id, resolve
from synscale.runtime import integrity
from synscale.runtime.checkpoint import batch_indices, seed_for, train_loop
from synscale.runtime.launch import Launcher, LaunchError, run_job

# ---------------------------------------------------------------------------------------------------------------
# The mini config
# ---------------------------------------------------------------------------------------------------------------

MINI_NAME = "synscale-mini-clip"

#: open_clip model-config JSON for the mini world's CLIP (4.2M parameters, 3.2M of them the token table).
#: Patch 8 on 32×32 (a 4×4 grid + CLS) and a 32-token context: at patch 4 / 77 tokens a step costs ~3× more on
#: CPU while the world's captions and prompts are all under 25 BPE tokens (longer text is truncated, EOT kept).
MINI_CONFIG: dict[str, Any] = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 128, "head_width": 32, "layers": 4},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 4},
}

#: ViT-B-16's open_clip config shrunk in width and depth only (same 224 px input, patch 16, 77 tokens, vocabulary):
#: what the rehearsal (synscale.orchestration.rehearsal) trains where the paper trains ViT-B-16 from scratch (notebooks
# 06, 08).
REHEARSAL_NAME = "ViT-B-16-rehearsal"
REHEARSAL_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}

WEIGHTS_FILE = "open_clip_model.safetensors"
CONFIG_FILE = "open_clip_config.json"  # open_clip's hf-hub / local-dir layout: {"model_cfg", "preprocess_cfg"}


def register(name: str = MINI_NAME, config: dict[str, Any] | None = None) -> str:
    """Make ``name`` an open_clip model config (``open_clip.list_models()``); idempotent; returns ``name``.

    open_clip reads configs from JSON files named ``<name>.json``, so the config is written (atomically) to a
    temp directory keyed by its content and added with ``open_clip.add_model_config``.
    """
    config = MINI_CONFIG if config is None else config
    if open_clip.get_model_config(name) == config:
        return name
    text = json.dumps(config, indent=2, sort_keys=True)
    d = Path(tempfile.gettempdir()) / f"synscale-open-clip-{hashlib.sha1(text.encode()).hexdigest()[:12]}"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.json"
    if not path.exists() or path.read_text() != text:
        tmp = d / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(text)
        os.replace(tmp, path)
    open_clip.add_model_config(path)
    return name


def registered() -> None:
    """Register the mini and the rehearsal configs on first use (not at import: importing writes nothing)."""
    if open_clip.get_model_config(REHEARSAL_NAME) != REHEARSAL_CONFIG:
        register()
        register(REHEARSAL_NAME, REHEARSAL_CONFIG)

# ---------------------------------------------------------------------------------------------------------------
# Create, preprocess, save
# ---------------------------------------------------------------------------------------------------------------


class Preprocess:
    """open_clip's eval transform that also takes the world's images (uint8 numpy ``[H, W]`` or ``[H, W, 3]``)."""

    def __init__(self, transform: Callable):
        self.transform = transform

    def __call__(self, image):
        if isinstance(image, np.ndarray):
            from PIL import Image

            image = Image.fromarray(np.ascontiguousarray(image))
        return self.transform(image)

    def __repr__(self) -> str:
        return f"Preprocess({self.transform!r})"


def _weights_path(pretrained: str | Path) -> str:
    p = Path(pretrained)
    return str(p / WEIGHTS_FILE) if p.is_dir() else str(p)


class _RandomInitNotice(logging.Filter):
    """open_clip's warning for a model created without weights, which is what a fresh model is meant to be."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded for model")


@contextlib.contextmanager
def _quiet_random_init():
    """Drop that one notice (open_clip logs it on the root logger) while a fresh model is created; the user's
    logging is otherwise untouched."""
    notice = _RandomInitNotice()
    logging.getLogger().addFilter(notice)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(notice)


def create(model_name: str = MINI_NAME, pretrained: str | Path | None = None, device: str | torch.device = "cpu"):
    """``(model, preprocess, tokenizer)`` through ``open_clip.create_model_and_transforms`` + ``get_tokenizer``.

    ``pretrained`` is an open_clip tag, a weights file, or a folder written by :func:`save`. The model is in eval
    mode; ``preprocess`` is open_clip's eval transform (accepts PIL or uint8 numpy images); for whole arrays use
    :func:`to_tensor`, which skips PIL.
    """
    registered()
    folder = _open_clip_folder(pretrained)
    if folder is not None:  # a saved or cached open_clip model: its own config (widths and all) and weights
        model_name = f"local-dir:{folder}"
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, device=device)
    else:
        weights = None if pretrained is None else _weights_path(pretrained)
        with _quiet_random_init() if weights is None else contextlib.nullcontext():
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=weights, device=device)
    model.synscale_model_name = model_name  # so save() can write the config beside the weights
    model.eval()
    return model, Preprocess(preprocess), open_clip.get_tokenizer(model_name)


def _open_clip_folder(pretrained: str | Path | None) -> Path | None:
    """The cached repo of a paper weights name (``paper:clip``, or a repo id such as
    ``laion/CLIP-ViT-B-16-laion2B-s34B-b88K``), read as open_clip reads ``hf-hub:`` models: the architecture from
    its ``open_clip_config.json``, the weights beside it. ``None`` for an open_clip tag, a weights file or a folder
    written by :func:`save` (read with the named architecture)."""
    name = str(pretrained) if pretrained is not None else ""
    if not (name.startswith("paper:") or is_repo_id(name)):
        return None
    p = resolve(name, "clip").path
    if not (p / CONFIG_FILE).is_file() or "model_cfg" not in json.loads((p / CONFIG_FILE).read_text()):
        raise FileNotFoundError(f"{p} (open_clip weights '{name}') has no {CONFIG_FILE} with a model_cfg: copy the "
                                "whole repo (open_clip pushes it with the weights)")
    return p


def image_size(model_name: str = MINI_NAME) -> int:
    """The side of the square images a registered open_clip model takes (224 for ViT-B-16, 32 for the mini CLIP)."""
    registered()
    size = (open_clip.get_model_config(model_name) or {}).get("vision_cfg", {}).get("image_size")
    if size is None:
        raise ValueError(f"unknown open_clip model {model_name!r}; known e.g. ViT-B-16, {MINI_NAME}")
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def input_size(model: torch.nn.Module) -> int:
    """The side of the square images a created model takes (its preprocess config: 224 for ViT-B-16)."""
    size = _norm_stats(model)[2]
    return int(size) if size else image_size(getattr(model, "synscale_model_name", MINI_NAME))


def _norm_stats(model: torch.nn.Module | None) -> tuple[tuple[float, ...], tuple[float, ...], int | None]:
    cfg = open_clip.get_model_preprocess_cfg(model) if model is not None else {}
    size = cfg.get("size")
    size = size[0] if isinstance(size, (tuple, list)) else size
    return (tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)), tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD)),
            size)


def _as_nchw(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, H, W]`` (grey -> 3 channels) or ``[N, H, W, 3]`` -> uint8 ``[N, 3, H, W]`` (a view if possible)."""
    if isinstance(images, torch.Tensor):
        x = images
    else:
        with warnings.catch_warnings():  # the world's arrays are read-only; nothing here writes to them
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            x = torch.from_numpy(np.ascontiguousarray(images))
    if x.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {x.dtype}")
    if x.ndim == 3:
        return x.unsqueeze(1).expand(-1, 3, -1, -1)
    if x.ndim == 4 and x.shape[-1] == 3:
        return x.permute(0, 3, 1, 2)
    raise ValueError(f"images must be [N, H, W] or [N, H, W, 3], got shape {tuple(x.shape)}")


def _normalize(x: torch.Tensor, model: torch.nn.Module | None) -> torch.Tensor:
    """uint8 ``[N, 3, H, W]`` -> float, resized to the model's size if it differs, normalized by its mean/std."""
    mean, std, size = _norm_stats(model)
    x = x.float().div_(255.0)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def to_tensor(images: np.ndarray | torch.Tensor, model: torch.nn.Module | None = None) -> torch.Tensor:
    """uint8 ``[N, H, W]`` (grey, replicated to RGB) or ``[N, H, W, 3]`` -> float ``[N, 3, S, S]``, normalized.

    Mean/std (and size S) come from the model's preprocess config (OpenAI's mean/std, no resize, when ``model``
    is None). Images are resized (bicubic, antialiased) only when S differs, e.g. 32 -> 224 for ViT-B/16.
    """
    return _normalize(_as_nchw(images), model)


def save(model: torch.nn.Module, path: str | Path, half: bool = True, model_name: str | None = None) -> Path:
    """Write ``open_clip_model.safetensors`` (weight matrices fp16 unless ``half=False``) and ``open_clip_config.json``.

    ``path`` is a folder (created) or a ``.safetensors`` file path. Load with ``create(name, pretrained=path)``
    (or ``open_clip.create_model("local-dir:<folder>")``). Returns the weights file.
    """
    from safetensors.torch import save_file

    path = Path(path)
    weights = path if path.suffix == ".safetensors" else path / WEIGHTS_FILE
    weights.parent.mkdir(parents=True, exist_ok=True)
    name = model_name or getattr(model, "synscale_model_name", MINI_NAME)
    sd = {k: (v.half() if half and v.is_floating_point() and v.ndim >= 2 else v).detach().cpu().contiguous()
          for k, v in model.state_dict().items()}  # matrices in fp16; biases, norms and logit_scale stay exact
    tmp = weights.with_name(f".{weights.name}.tmp")
    save_file(sd, str(tmp), metadata={"model_name": name, "format": "pt"})
    os.replace(tmp, weights)
    registered()
    cfg = {"model_name": name, "model_cfg": open_clip.get_model_config(name),
           "preprocess_cfg": open_clip.get_model_preprocess_cfg(model)}
    (weights.parent / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, default=list))
    return weights


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


_AUG, _MIX = 2, 3  # stream tags: seed_for(seed, tag, step) (1 is checkpoint.batch_indices' shuffle)


def random_crop(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """Random crop of each image (same size) after zero-padding by ``pad`` px; offsets drawn from ``g``."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    off = torch.randint(0, 2 * pad + 1, (n, 2), generator=g).tolist()
    return torch.stack([xp[i, :, r:r + h, c:c + w] for i, (r, c) in enumerate(off)])


def cosine_lr(step: int, base_lr: float, warmup: int, steps: int) -> float:
    """open_clip's schedule: linear warm-up to ``base_lr`` over ``warmup`` steps, then cosine to 0 at ``steps``."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    e, es = step - warmup, max(1, steps - warmup)
    return 0.5 * (1 + math.cos(math.pi * e / es)) * base_lr


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """open_clip's split: no weight decay on gains, biases, norms and ``logit_scale``."""
    def exclude(n: str, p: torch.Tensor) -> bool:
        return p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
            {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": weight_decay}]


def tokenize_captions(captions: Sequence[str], tokenizer: Callable) -> tuple[torch.Tensor, np.ndarray]:
    """Tokens of the distinct captions ``[U, ctx]`` and each caption's row in it ``[N]`` (captions repeat a lot)."""
    uniq, inverse = np.unique(np.asarray(captions, dtype=object).astype(str), return_inverse=True)
    rows = [tokenizer(list(uniq[i:i + 4096])) for i in range(0, len(uniq), 4096)]
    return torch.cat(rows), inverse.astype(np.int64)


def _rng_state() -> dict[str, Any]:
    """The RNG states as tensors (checkpoints are read with ``weights_only=True``, which refuses numpy arrays)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
            "numpy_rest": torch.tensor([pos, has_gauss], dtype=torch.int64), "numpy_gauss": torch.tensor(gauss),
            "python": torch.tensor(internal, dtype=torch.int64), "python_version": version,
            "python_gauss": gauss_next}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    pos, has_gauss = (int(v) for v in state["numpy_rest"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss,
                         float(state["numpy_gauss"])))
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"]), state["python_gauss"]))


DATA_MODES = ("real", "synthetic", "synthetic+real")

#: Fan et al. Table A3: (a) "S" for < 100M captions (after Cherti et al.), (b) "L" for >= 100M (after CLIP).
#: 32 epochs, AdamW betas (0.9, 0.98), cosine decay; warm-up 600/1200/2000 (S, by scale) or 2000 (L).
PAPER_HPARAMS: dict[str, dict[str, float]] = {
    "S": {"batch_size": 8192, "lr": 1.0e-3, "weight_decay": 0.5, "eps": 1.0e-8, "epochs": 32},
    "L": {"batch_size": 32768, "lr": 5.0e-4, "weight_decay": 0.2, "eps": 1.0e-6, "epochs": 32},
}
PAPER_THRESHOLD = 100_000_000  # captions: S below, L at or above
PAPER_WARMUP = ((1_000_000, 600), (2_000_000, 1200), (4_000_000, 2000))  # (scale up to which, warm-up steps)


def hparam_set(n_captions: int, threshold: int = PAPER_THRESHOLD) -> str:
    """``"S"`` for fewer than ``threshold`` captions, else ``"L"`` (appendix B.1; the mini world scales it)."""
    if n_captions <= 0:
        raise ValueError(f"n_captions must be positive, got {n_captions}")
    return "S" if n_captions < threshold else "L"


def hparams_for(n_captions: int, threshold: int = PAPER_THRESHOLD, batch_scale: float = 1.0,
                force: str | None = None) -> dict[str, float]:
    """Table A3's set for ``n_captions`` (or ``force`` = "S"/"L"), batch size multiplied by ``batch_scale``
    (the mini world runs the paper's sets with smaller batches: 8192 -> 128 is ``batch_scale=1/64``)."""
    name = force or hparam_set(n_captions, threshold)
    if name not in PAPER_HPARAMS:
        raise ValueError(f"hyper-parameter set must be 'S' or 'L', got {name!r}")
    hp = dict(PAPER_HPARAMS[name], name=name)
    hp["batch_size"] = max(2, int(round(hp["batch_size"] * batch_scale)))
    return hp


def warmup_for_scale(n_captions: int, unit: int = 1_000_000, table: Sequence[int] = (600, 1200, 2000),
                     hparams: str = "S") -> int:
    """Warm-up steps by scale (appendix B.1): ``table[0]`` up to 1 ``unit`` (1M captions in the paper),
    ``table[1]`` below 4 units (the paper's 2M), ``table[2]`` at 4 units or more and always for set ``L``."""
    if hparams == "L" or n_captions >= 4 * unit:
        return int(table[2])
    return int(table[0] if n_captions < 2 * unit else table[1])


def epochs_to_steps(epochs: float, n: int, batch_size: int) -> int:
    """Optimizer steps for ``epochs`` passes over ``n`` pairs (at least 1)."""
    return max(1, math.ceil(epochs * n / batch_size))


def pick_alternate(seed: int, step: int, idx: np.ndarray, p: float) -> np.ndarray:
    """For step ``step``'s batch (sample indices ``idx``), which captions use their alternate (synthetic) image.

    Each (caption, step) draws independently with probability ``p`` from a stream seeded by ``(seed, step)``, so
    the choice depends only on the seed and step (resumable) and every caption sees both images over training.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"mixing probability must be in [0, 1], got {p}")
    rng = np.random.default_rng(seed_for(seed, _MIX, step))
    return rng.random(len(idx)) < p


def mode_data(mode: str, real: np.ndarray, synthetic: np.ndarray | None, p_synthetic: float = 0.5
              ) -> tuple[np.ndarray, np.ndarray | None, float]:
    """``(images, alt_images, p_alt)`` for :func:`train_clip` in data mode ``mode`` (``DATA_MODES``).

    ``real[i]`` and ``synthetic[i]`` are caption ``i``'s real and generated images (same count)."""
    if mode not in DATA_MODES:
        raise ValueError(f"data mode must be one of {DATA_MODES}, got {mode!r}")
    if mode != "real" and (synthetic is None or len(synthetic) != len(real)):
        raise ValueError(f"mode {mode!r} needs one synthetic image per caption: got "
                         f"{None if synthetic is None else len(synthetic)} for {len(real)} captions")
    if mode == "real":
        return real, None, 0.0
    if mode == "synthetic":
        return synthetic, None, 0.0
    return real, synthetic, float(p_synthetic)


# ---------------------------------------------------------------------------------------------------------------
# open_clip's trainer on webdataset shards (paper scale; torchrun)
# ---------------------------------------------------------------------------------------------------------------


def open_clip_argv(sources: Sequence[Sequence[str]], n_samples: int, name: str, logs: str | Path, *,
                   weights: Sequence[float] | None = None, model: str = "ViT-B-16", nproc: int = 8,
                   threshold: int = PAPER_THRESHOLD, batch_scale: float = 1.0, warmup: int | None = None,
                   epochs: int | None = None, precision: str = "amp", workers: int = 4, seed: int = 0,
                   device: str = "cuda", force: str | None = None, hparams: dict[str, float] | None = None,
                   gpu_batch: int = 0, keep_all_checkpoints: bool = False, extra: Sequence[str] = ()) -> list[str]:
    """The command line of one open_clip run with Table A3's settings (``python -m synscale.methods.openclip_train``,
    under ``torch.distributed.run`` when ``nproc`` > 1); ``force`` = "S" / "L" overrides the set the scale picks, and
    ``hparams`` (``batch_size``, ``lr``, ``weight_decay``, ``eps``; total batch) replaces Table A3 altogether
    (SynthCLIP's settings). ``extra`` arguments are appended as they are (e.g. ``--aug-cfg scale=(0.5,1.0)``).

    ``gpu_batch`` (> 0) is the most images one GPU takes per step: a larger per-GPU share of the batch is split into
    ``--accum-freq`` steps with ``--grad-checkpointing`` (the update is the same; Table A3's 32768 on 8 GPUs is 8
    accumulated steps of 512 on each), so the paper's batches run on 1 or 8 GPUs alike.

    ``sources`` are lists of shard paths of (image, ``txt``) pairs; one source is a plain subset. With ``weights``
    (one per source) the run resamples shards (``--dataset-resampled``) with probability proportional to its
    source's weight divided by the source's shard count (open_clip's ``--train-data-upsampling-factors`` weighs
    each shard), i.e. ``weights`` are the sources' shares of the samples when their shards hold equally many.
    That is how ``synthetic+real`` runs here: the real and the synthetic shards of the same captions at 1:1,
    which gives each caption its real image half the time as sec. 5.2 does, but draws the two sources per shard,
    not per caption at each step (open_clip's loader reads one source at a time; a named difference).
    """
    hp = ({"name": "custom", "eps": 1e-6, **hparams} if hparams
          else hparams_for(n_samples, threshold, batch_scale, force))
    per_gpu = max(1, int(hp["batch_size"]) // nproc)
    accum = 1
    if gpu_batch and per_gpu > gpu_batch:
        accum = math.ceil(per_gpu / gpu_batch)
        while per_gpu % accum:  # open_clip accumulates equal micro-batches
            accum += 1
        per_gpu //= accum
    warm = warmup_for_scale(n_samples, hparams=hp["name"]) if warmup is None else int(warmup)
    total_steps = int(epochs or hp["epochs"]) * max(1, n_samples // int(hp["batch_size"]))
    warm = min(warm, total_steps - 1)  # open_clip's cosine divides by the steps after warm-up
    parts, factors = [], []
    n_shards = sum(len(u) for u in sources)  # scales the factors to read near 1; only their ratios count
    for k, urls in enumerate(sources):
        for pattern in brace(urls):
            parts.append(pattern)
            if weights is not None:
                factors.append(float(weights[k]) / len(urls) * n_shards)
    argv = ["-m", "synscale.methods.openclip_train", "--model", model, "--train-data", "::".join(parts),
            "--dataset-type", "webdataset", "--train-num-samples", str(n_samples), "--batch-size", str(per_gpu),
            "--lr", str(hp["lr"]), "--wd", str(hp["weight_decay"]), "--eps", str(hp["eps"]), "--beta1", "0.9",
            "--beta2", "0.98", "--warmup", str(warm), "--epochs", str(int(epochs or hp["epochs"])),
            "--lr-scheduler", "cosine", "--precision", precision, "--workers", str(workers), "--seed", str(seed),
            "--device", device, "--save-frequency", "1", "--resume", "latest", "--zeroshot-frequency", "0",
            "--logs", str(logs), "--name", name]
    if not keep_all_checkpoints:  # the last epoch's only (it resumes; it is the one evaluated): 32 epochs of a
        argv += ["--delete-previous-checkpoint"]  # ViT-B/16 with AdamW's state were ~57 GB per run
    if accum > 1:
        argv += ["--accum-freq", str(accum), "--grad-checkpointing"]
    if nproc > 1:
        argv = ["-m", "torch.distributed.run", "--nproc-per-node", str(nproc)] + argv + ["--local-loss",
                                                                                          "--gather-with-grad"]
    if weights is not None:
        argv += ["--dataset-resampled", "--train-data-upsampling-factors", "::".join(f"{f:.6g}" for f in factors)]
    return [sys.executable] + argv + list(extra)


def mode_sources(mode: str, real: Sequence[str], synthetic: Sequence[str] | None, p_synthetic: float = 0.5
                 ) -> tuple[list[list[str]], list[float] | None]:
    """``(sources, weights)`` for :func:`open_clip_argv` in data mode ``mode``: the shard analog of
    :func:`mode_data` (``real`` and ``synthetic`` hold the same captions' real and generated images)."""
    if mode not in DATA_MODES:
        raise ValueError(f"data mode must be one of {DATA_MODES}, got {mode!r}")
    if mode != "real" and not synthetic:
        raise ValueError(f"mode {mode!r} needs the synthetic shards of the same captions")
    if mode == "real":
        return [list(real)], None
    if mode == "synthetic":
        return [list(synthetic)], None
    return [list(real), list(synthetic)], [1.0 - p_synthetic, float(p_synthetic)]


def train_open_clip(sources: Sequence[Sequence[str]], n_samples: int, logs: str | Path, *, label: str,
                    epochs: int, weights: Sequence[float] | None = None, model: str = "ViT-B-16",
                    eval_device: str | None = None, **argv_kw) -> tuple[torch.nn.Module, Callable, dict[str, Any]]:
    """One open_clip run (:func:`open_clip_argv` with ``argv_kw``), then its final checkpoint loaded for evaluation:
    ``(model, tokenizer, stats)`` as :func:`train_new` gives.

    The run lives in ``<logs>/<label>-<hash of its data and settings>``: a finished run is loaded, not retrained,
    and a killed one resumes (``--resume latest``). Its output goes to ``<that>.out``; a failure raises with the
    log's path and last lines. ``stats``: ``final_loss`` (open_clip's last logged running mean of the contrastive
    loss), ``seconds`` (0 when loaded), ``images_per_s``, ``checkpoint``, ``name``."""
    import re
    import subprocess


    image_size(model)  # an unknown model fails here, not after a process start
    argv_kw.setdefault("device", "cuda" if torch.cuda.is_available() else "cpu")
    launcher = Launcher.from_env()
    ranks = argv_kw.get("nproc", 8) if launcher.inprocess else launcher.nproc * launcher.nodes
    if ranks > 1:  # open_clip hands each rank's workers whole shards: a small source is split to have enough
        need = ranks * max(1, int(argv_kw.get("workers", 4)))
        sources = [reshard(urls, need, Path(logs) / "reshard") for urls in sources]
    settings = {"sources": [brace(u) for u in sources], "weights": weights, "n": n_samples, "epochs": epochs,
                "model": model, **{k: v for k, v in argv_kw.items() if k not in ("nproc", "workers", "device")}}
    name = f"{label}-{hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]}"
    logs = Path(logs)
    ckpt = logs / name / "checkpoints" / f"epoch_{epochs}.pt"
    out = logs / f"{name}.out"
    if not out.exists() and (logs / name / "out.log").exists():  # a run launched as a job (torchrun, SLURM)
        out = logs / name / "out.log"
    seconds = 0.0
    if not ckpt.exists() and not launcher.inprocess:  # torchrun / submitit / SLURM: N processes share the batch
        argv_kw["nproc"] = launcher.nproc * launcher.nodes
        argv = open_clip_argv(sources, n_samples, name, logs, weights=weights, model=model, epochs=epochs, **argv_kw)
        cut = argv.index("synscale.methods.openclip_train") + 1
        args = integrity.write_json(logs / f"{name}.args.json", argv[cut:])
        seconds = run_job("synscale.methods.openclip_train", ["--args-file", str(args)], logs, name, launcher)
        if not ckpt.exists():
            raise LaunchError(f"open_clip run {name} under {launcher} wrote no {ckpt.name} (logs in {logs})")
        out = logs / name / "out.log"  # open_clip_train's own log of the run
    elif not ckpt.exists():
        logs.mkdir(parents=True, exist_ok=True)
        argv = open_clip_argv(sources, n_samples, name, logs, weights=weights, model=model, epochs=epochs, **argv_kw)
        # torchrun's parser would take --logs for its --logs-specs
        cut = argv.index("synscale.methods.openclip_train") + 1
        args = integrity.write_json(logs / f"{name}.args.json", argv[cut:])
        argv = argv[:cut] + ["--args-file", str(args)]
        lib = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [lib, os.environ.get("PYTHONPATH")]))}
        t0 = time.perf_counter()
        with open(out, "a") as f:
            rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
        seconds = time.perf_counter() - t0
        if rc != 0 or not ckpt.exists():
            tail = [line for line in out.read_text(errors="replace").splitlines() if line.strip()][-3:]
            raise RuntimeError(f"open_clip run {name} failed (exit {rc}; log {out}): " + " | ".join(tail))
    losses = re.findall(r"Contrastive_loss: \S+ \((\S+)\)", out.read_text(errors="replace") if out.exists() else "")
    m, _, tokenizer = create(model, ckpt, device=eval_device or argv_kw["device"])
    return m, tokenizer, {"final_loss": float(losses[-1]) if losses else math.nan, "seconds": seconds,
                          "images_per_s": epochs * n_samples / seconds if seconds else math.nan,
                          "checkpoint": str(ckpt), "name": name}


class _RNG:
    """The global RNG states (torch, numpy, python) as a checkpointed object: dropout and any unseeded draw resume
    where they were."""

    def state_dict(self) -> dict[str, Any]:
        return _rng_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _set_rng_state(state)


class _LossLog:
    """The losses of the last ``log_every`` steps and one history row per ``log_every`` steps, checkpointed."""

    def __init__(self, log_every: int) -> None:
        self.log_every, self.history, self.last = log_every, [], []

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "last_losses": self.last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history, self.last = list(state["history"]), list(state["last_losses"])


def train_clip(model: torch.nn.Module, images: np.ndarray, captions: Sequence[str], tokenizer: Callable, *,
               steps: int, batch_size: int, lr: float, weight_decay: float = 0.1, warmup: int = 100, seed: int = 0,
               ckpt_dir: str | Path | None = None, ckpt_every: int = 200, log_every: int = 50, crop_pad: int = 2,
               stop_after: int | None = None, progress: bool = True,
               alt_images: np.ndarray | None = None, p_alt: float = 0.0, eps: float = 1e-6) -> dict[str, Any]:
    """Contrastive training (open_clip ``ClipLoss``, AdamW, warm-up + cosine) on ``(images, captions)``, on the
    package's one training loop (:func:`synscale.runtime.checkpoint.train_loop`: checkpoints, resume, thread pinning).

    ``images`` uint8 ``[N, H, W]`` / ``[N, H, W, 3]``; ``captions[i]`` describes ``images[i]``. Step ``s`` trains
    on ``checkpoint.batch_indices(seed, s, epochs=True)`` with random crops (pad ``crop_pad``, 0 = off) drawn from
    ``(seed, s)``.
    Every ``ckpt_every`` steps and at the end, model + optimizer + step + RNG states + loss log go to
    ``ckpt_dir/train_clip.ckpt.pt``; a call finding it resumes (its hyper-parameters must match). ``stop_after``
    ends the call after that many total steps, as if killed after a checkpoint. AdamW betas/eps, no gradient
    clipping and the clamp of ``logit_scale`` to ``ln 100`` follow open_clip's training code (``eps`` 1e-6; Table
    A3's S set uses 1e-8).

    ``alt_images`` (same shape as ``images``) with ``p_alt`` > 0 is the synthetic+real mode: at each step every
    caption in the batch uses its ``alt_images`` row with probability ``p_alt`` (:func:`pick_alternate`), else its
    ``images`` row (see :func:`mode_data`).

    Returns ``steps`` (done so far), ``final_loss`` (mean of the last ``log_every`` steps), ``last_loss``,
    ``logit_scale`` (exp), ``images_per_s`` and ``seconds`` (this call), ``resumed_from`` and ``history``
    (one row per ``log_every`` steps: step, loss, lr, logit_scale).
    """
    device = next(model.parameters()).device
    hparams = {"steps": steps, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "warmup": warmup,
               "seed": seed, "crop_pad": crop_pad, "n": len(images)}
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if alt_images is not None:
        if np.shape(alt_images) != np.shape(images):
            raise ValueError(f"alt_images must match images: {np.shape(alt_images)} vs {np.shape(images)}")
        hparams.update(p_alt=float(p_alt))  # only in mixed runs
        pick_alternate(seed, 0, np.zeros(1, dtype=np.int64), p_alt)  # validates p_alt
    if eps != 1e-6:
        hparams.update(eps=eps)
    opt = torch.optim.AdamW(_param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.98), eps=eps,
                            fused=device.type in ("cpu", "cuda"))  # fused: ~20x faster step on CPU (token table)
    x_all = _as_nchw(images)
    x_alt = _as_nchw(alt_images) if alt_images is not None else None
    log, loss_fn, cur = _LossLog(log_every), ClipLoss(), {"n_alt": 0, "trained": 0}

    def step_fn(step: int) -> torch.Tensor:
        if "tokens" not in cur:  # tokenized on the first step trained (a finished run needs none)
            cur["tokens"], cur["rows"] = tokenize_captions(captions, tokenizer)
        idx = batch_indices(seed, step, len(images), batch_size, epochs=True)
        g = torch.Generator().manual_seed(seed_for(seed, _AUG, step))
        x = x_all[torch.from_numpy(idx)]
        if x_alt is not None and p_alt > 0:
            alt = pick_alternate(seed, step, idx, p_alt)
            if alt.any():
                x = x.clone()
                x[torch.from_numpy(alt)] = x_alt[torch.from_numpy(idx[alt])]
            cur["n_alt"] += int(alt.sum())
        if crop_pad:
            x = random_crop(x, crop_pad, g)
        x = _normalize(x, model).to(device)
        t = cur["tokens"][torch.from_numpy(cur["rows"][idx])].to(device)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, lr, warmup, steps)
        img_f = model.encode_image(x, normalize=True)
        txt_f = model.encode_text(t, normalize=True)
        cur["loss"] = loss_fn(img_f, txt_f, model.logit_scale.exp())
        return cur["loss"]

    def after_step(step: int) -> None:
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        log.last = (log.last + [cur["loss"].item()])[-log_every:]
        cur["trained"] += 1
        done = step + 1
        if done % log_every == 0 or done == steps:
            log.history.append({"step": done, "loss": float(np.mean(log.last)), "lr": opt.param_groups[0]["lr"],
                                "logit_scale": float(model.logit_scale.detach().exp())})

    t0 = time.perf_counter()
    info = train_loop({"model": model}, opt, None, step_fn, steps, Path(ckpt_dir) if ckpt_dir is not None else None,
                      ckpt_every, "train_clip", progress, after_step, {"rng": _RNG(), "log": log}, hparams,
                      max_grad_norm=None, stop_after=stop_after)
    seconds, trained = time.perf_counter() - t0, cur["trained"]
    return {"steps": info["steps"], "final_loss": float(np.mean(log.last)) if log.last else math.nan,
            "last_loss": log.last[-1] if log.last else math.nan,
            "logit_scale": float(model.logit_scale.detach().exp()),
            "images_per_s": trained * batch_size / seconds if trained else 0.0, "seconds": seconds,
            "resumed_from": info["resumed_from"], "history": log.history,
            "alt_fraction": cur["n_alt"] / (trained * batch_size) if trained and x_alt is not None else 0.0}


def train_new(images: np.ndarray, captions: Sequence[str], *, model_name: str = MINI_NAME, init_seed: int = 0,
              **train_kw) -> tuple[torch.nn.Module, Callable, dict[str, Any]]:
    """A fresh model (weights drawn from ``init_seed``) trained by :func:`train_clip` with ``train_kw``:
    ``(model, tokenizer, stats)``; the model is in eval mode."""
    torch.manual_seed(init_seed)
    model, _, tokenizer = create(model_name)
    stats = train_clip(model, images, captions, tokenizer, **train_kw)
    return model, tokenizer, stats
