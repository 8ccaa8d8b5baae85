"""Deterministic, resumable training loops: the data and noise of step s depend only on (seed, s).

``train_loop`` checkpoints models + optimizer + scheduler every ``every`` steps into ``ckpt_dir`` (atomic
rename, size + sha256 record beside it: ``synscale.runtime.integrity``) and resumes from the latest checkpoint, so a
killed build continues where it stopped and ends with the same weights as an uninterrupted run (CPU, same seed).
Checkpoints hold tensors and plain values only and are read with ``torch.load(weights_only=True)``: a file dropped
into a shared cache cannot run code. A damaged checkpoint is moved aside with a one-line warning and training
starts over, never from damaged bytes.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synscale.runtime import integrity
from synscale.runtime.progress import bar as tqdm
from synscale.runtime.threads import pinned


@dataclass
class TrainConfig:
    steps: int
    batch_size: int = 128
    lr: float = 5.0e-4
    warmup: int = 100
    weight_decay: float = 0.01
    seed: int = 0
    ckpt_every: int = 200


def iterations_for(size: float, base_size: float = 1.0e6, base_iters: int = 95_000, base_warmup: int = 10_000,
                   min_fraction: float = 1.0) -> tuple[int, int]:
    """(total, warm-up) iterations scheduled linearly in log2 of the data size (appendix A.1).

    The paper gives 95k/10k at 1M, 190k/20k at 2M, 285k/30k at 4M: iterations = base · (1 + log2(D / base_size)).
    Below ``base_size`` that line reaches zero at half the base size, and the paper does not say what it used for
    its 0.125M–0.5M points, so the factor is floored at ``min_fraction`` — by default 1: a smaller set never gets
    fewer iterations than the base size (our choice; a lower floor leaves the small sets of a curve undertrained
    and bends it for reasons that have nothing to do with the data).
    """
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    f = max(min_fraction, 1.0 + math.log2(size / base_size))
    return int(round(base_iters * f)), int(round(base_warmup * f))


def warmup_cosine(opt, cfg: TrainConfig, floor: float = 0.1):
    """Linear warm-up to the peak lr, then cosine decay to ``floor`` × peak at ``cfg.steps``."""
    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
        return floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * t))
    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def seed_for(*keys: int) -> int:
    """A 63-bit seed that depends only on ``keys`` (numpy SeedSequence mixing)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


def batch_indices(seed: int, step: int, n: int, batch_size: int, epochs: bool = False) -> np.ndarray:
    """The sample indices of one step, a function of (seed, step) only: drawn with replacement (the classifiers'
    and the mini world's trainers), or with ``epochs`` position ``step * batch_size + i`` of a seeded shuffle per
    epoch, every sample once per epoch (the contrastive trainers')."""
    if not epochs:
        return np.random.default_rng([seed, step]).integers(0, n, size=batch_size)
    pos = np.arange(step * batch_size, (step + 1) * batch_size, dtype=np.int64)
    out = np.empty_like(pos)
    for epoch in np.unique(pos // n):
        perm = np.random.default_rng(seed_for(seed, 1, epoch)).permutation(n)  # 1: the shuffle's stream tag
        sel = pos // n == epoch
        out[sel] = perm[pos[sel] % n]
    return out


def torch_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))


def _path(ckpt_dir: Path, name: str) -> Path:
    return Path(ckpt_dir) / f"{name}.ckpt.pt"


def save(ckpt_dir: Path, name: str, step: int, models: dict[str, torch.nn.Module], opt, sched,
         extra: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> None:
    state = {"step": step, "models": {k: m.state_dict() for k, m in models.items()},
             "opt": opt.state_dict(), "sched": sched.state_dict() if sched is not None else None,
             "extra": {k: v.state_dict() for k, v in (extra or {}).items()}, "config": config}
    save_state(_path(ckpt_dir, name), state)


def plain(obj: Any) -> Any:
    """``obj`` with numpy scalars as Python numbers and numpy arrays as tensors, the types ``weights_only``
    loading accepts (schedulers' lambdas return numpy floats; RNG states are numpy arrays)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_state(path: Path, state: dict[str, Any]) -> Path:
    """A checkpoint file: ``state`` made :func:`plain`, written atomically with its size + sha256 record."""
    state = plain(state)
    return integrity.save(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path, what: str = "checkpoint") -> dict[str, Any] | None:
    """A checkpoint's state (tensors and plain values, ``weights_only=True``), or ``None`` when it is missing or
    damaged (moved aside with a one-line warning: ``integrity.load``)."""
    return integrity.load(path, lambda p: torch.load(p, map_location="cpu", weights_only=True), what)


def load(ckpt_dir: Path, name: str, models: dict[str, torch.nn.Module], opt, sched,
         extra: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> int:
    """Restore the latest checkpoint if there is one; return the step to continue from (0 if none).

    ``config``: what the run trains (objective, schedule, steps, ...). A checkpoint saved under another config is
    refused with a one-line error, rather than resumed into a model of a different recipe."""
    path = _path(ckpt_dir, name)
    state = load_state(path)
    if state is None:
        return 0
    saved = state.get("config")
    if config is not None and saved != config:
        changed = sorted(k for k in set(config) | set(saved or {}) if (saved or {}).get(k) != config.get(k))
        raise ValueError(f"checkpoint {path} was saved by a run with another config (differs in {changed}): delete it "
                         "to train from scratch (or rebuild with force=True)")
    for k, m in models.items():
        m.load_state_dict(state["models"][k])
    opt.load_state_dict(state["opt"])
    if sched is not None:
        sched.load_state_dict(state["sched"])
    for k, v in (extra or {}).items():
        v.load_state_dict(state["extra"][k])
    return int(state["step"])


@pinned
def train_loop(models: dict[str, torch.nn.Module], opt, sched, step_fn: Callable[[int], torch.Tensor], steps: int,
               ckpt_dir: Path | None, every: int, name: str, progress: bool = True,
               after_step: Callable[[int], None] | None = None, extra: dict[str, Any] | None = None,
               config: dict[str, Any] | None = None, max_grad_norm: float | None = 1.0,
               stop_after: int | None = None) -> dict[str, Any]:
    """Run ``step_fn(step)`` → loss for steps [start, steps), with checkpoints and resume: the package's one training
    loop (classifiers, the mini world's networks, CLIP, CLIP finetuning). ``step_fn`` may instead yield a step's
    micro-batch losses (each scaled by its share of the batch): each is back-propagated as it comes, so the
    gradients accumulate to the whole batch's before the optimizer steps.

    ``after_step(step)`` runs after each optimizer step (e.g. an EMA update); ``extra`` objects with
    ``state_dict``/``load_state_dict`` (e.g. that EMA, RNG states, a loss log) are checkpointed and restored with the
    models. ``config`` (JSON-like) is stored with each checkpoint, and resuming under a different one is an error
    (``load``). ``sched`` may be ``None`` (``step_fn`` sets the learning rate itself); ``max_grad_norm`` ``None``
    leaves gradients unclipped; ``ckpt_dir`` ``None`` trains without checkpoints; ``stop_after`` ends the call early
    at that step (checkpointed), as a killed job would, so that resuming can be tested.
    """
    start = load(ckpt_dir, name, models, opt, sched, extra, config) if ckpt_dir is not None else 0
    end = steps if stop_after is None else min(steps, stop_after)
    for m in models.values():
        m.train()
    losses: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(range(start, end), desc=name, initial=start, total=steps, mininterval=10, disable=not progress)
    for step in bar:
        opt.zero_grad(set_to_none=True)
        out = step_fn(step)
        if torch.is_tensor(out):
            loss = out
            loss.backward()
        else:  # micro-batch losses, each already scaled by its share: gradients accumulate over them
            loss = torch.zeros(())
            for part in out:
                part.backward()
                loss = loss + part.detach().float().cpu()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], max_grad_norm)
        opt.step()
        if sched is not None:
            sched.step()
        if after_step is not None:
            after_step(step)
        losses.append(float(loss.detach()))
        if (step + 1) % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if ckpt_dir is not None and ((step + 1) % every == 0 or step + 1 == end):
            save(ckpt_dir, name, step + 1, models, opt, sched, extra, config)
    for m in models.values():
        m.eval()
    dt = time.perf_counter() - t0
    return {"steps": max(start, end), "resumed_from": start, "seconds": round(dt, 1),
            "final_loss": float(np.mean(losses[-50:])) if losses else None,
            "first_loss": float(np.mean(losses[:50])) if losses else None}
