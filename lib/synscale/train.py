"""Supervised classifiers on timm: create, train (resumable), save/load in timm's own folder format.

The mini world's oracle (the paper's "pretrained ViT-B, 86.2%") and the experiments' classifiers are timm
models; ``save`` writes timm's ``save_for_hf`` folder (config.json with the model args + model.safetensors) and
``load`` reads it back through ``timm.create_model("local-dir:<folder>")`` — the same call that loads a paper-scale
checkpoint folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from .checkpoint import TrainConfig

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def create(arch: str, num_classes: int, **model_args):
    import timm

    return timm.create_model(arch, num_classes=num_classes, pretrained=False, **model_args)


def save(model, out: Path, model_args: dict[str, Any]) -> Path:
    """timm folder: config.json (architecture, num_classes, model args, mean/std) + model.safetensors."""
    from timm.models import save_for_hf

    model.pretrained_cfg = {**getattr(model, "pretrained_cfg", {}), "mean": MEAN, "std": STD}
    save_for_hf(model, str(out), model_args=model_args, safe_serialization=True)
    return Path(out)


def load(folder: Path):
    import timm

    model = timm.create_model(f"local-dir:{Path(folder).resolve()}", pretrained=True)
    return model.eval()


def to_input(images_uint8: np.ndarray) -> torch.Tensor:
    """uint8 greyscale [N, H, W] (or RGB [N, H, W, 3]) → normalised float [N, 3, H, W]."""
    x = torch.from_numpy(np.ascontiguousarray(images_uint8)).float().div(255.0)
    x = x.unsqueeze(1).expand(-1, 3, -1, -1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return (x - 0.5) / 0.5


def augment(x: torch.Tensor, g: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random crop with ``pad`` px (background-valued) padding and horizontal flip, per sample, from ``g``."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad), value=float(x.min()))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g).tolist()
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g).tolist()
    out = torch.stack([xp[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    flip = torch.rand(n, generator=g) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def train_classifier(model, images_uint8: np.ndarray, labels: np.ndarray, cfg: TrainConfig, ckpt_dir: Path,
                     label_smoothing: float = 0.1, progress: bool = True) -> dict[str, Any]:
    """Cross-entropy training with crop/flip augmentation; resumable, data order a function of (seed, step)."""
    x_all = to_input(images_uint8)
    y_all = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    sched = ckpt.warmup_cosine(opt, cfg, floor=0.0)

    def step_fn(step: int) -> torch.Tensor:
        idx = ckpt.batch_indices(cfg.seed, step, len(x_all), cfg.batch_size)
        x = augment(x_all[idx], ckpt.torch_generator(cfg.seed, step))
        return F.cross_entropy(model(x), y_all[idx], label_smoothing=label_smoothing)

    return ckpt.train_loop({"model": model}, opt, sched, step_fn, cfg.steps, ckpt_dir, cfg.ckpt_every, "classifier",
                           progress)


@torch.no_grad()
def predict(model, images_uint8: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Logits [N, C] and pooled features [N, D] (the classifier's pre-logits) of uint8 images."""
    model.eval()
    logits, feats = [], []
    for i in range(0, len(images_uint8), batch_size):
        x = to_input(images_uint8[i : i + batch_size])
        f = model.forward_head(model.forward_features(x), pre_logits=True)
        feats.append(f)
        logits.append(model.get_classifier()(f))
    return torch.cat(logits).numpy(), torch.cat(feats).numpy()
