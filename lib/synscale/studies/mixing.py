"""Notebook 06's study (Fan et al. sec. 5, appendix B and H): CLIP trained on the same captions with their real images,
with images generated from them, or with either (synthetic+real), at x2 caption scales; the run plan, the generated
sets, and one trainer for both engines (synscale's in memory, open_clip's on shards) with the paper's Table A3
hyper-parameters, warm-up rule and step counts."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from synscale.methods import clip, generate
from synscale.methods.clipdata import CaptionPool, GeneratedSet
from synscale.studies.synthclip import caption_prompts


class Point(NamedTuple):
    """One CLIP of 06: its data mode, caption count, forced hyper-parameter set (Table A10's runs; None: the set its
    count takes), CFG, seed, and whose captions: ``"pool"`` (the study's caption pool) or ``"cfg_pool"`` (Table
    A11's own captions: the paper's CC12M)."""

    mode: str
    n: int
    force: str | None
    cfg: float
    seed: int
    captions: str = "pool"


def plan(modes: Sequence[str], scales: Sequence[int], cfg: float, cfg_table: Sequence[float],
         hparam_scales: Sequence[int], threshold: int, seed: int, noise_seeds: Sequence[int],
         hparam_own_model: bool = False, cfg_n: int = 0) -> list[Point]:
    """Every run of the study, in order: each (scale, mode) at ``cfg`` with the set its scale takes; Table A11's
    synthetic-only runs: at the smallest scale for the other CFGs, or, when Table A11 has captions of its own
    (``cfg_n`` > 0 of them: the paper's CC12M), at ``cfg_n`` for every CFG of ``cfg_table``; real-only runs at
    ``hparam_scales`` (Table A10): the other set beside the main grid's run, or both sets where the main grid has no
    run of that scale or Table A10 has its own architecture (``hparam_own_model``: the paper's ViT-B/32); then every
    (scale, mode) again for each noise seed."""
    scales = sorted(scales)
    out = [Point(m, n, None, cfg, seed) for n in scales for m in modes]
    if cfg_n:
        out += [Point("synthetic", cfg_n, None, g, seed, "cfg_pool") for g in cfg_table]
    else:
        out += [Point("synthetic", scales[0], None, g, seed) for g in cfg_table if g != cfg]
    for n in hparam_scales:
        own = clip.hparam_set(n, threshold)
        sets = ("S", "L") if hparam_own_model or n not in scales else ("L" if own == "S" else "S",)
        out += [Point("real", n, h, cfg, seed) for h in sets]
    return out + [Point(m, n, None, cfg, s) for s in noise_seeds for n in scales for m in modes]


def synthetic_sets(pool: CaptionPool, classes: Sequence[str], cfg: float, cfg_table: Sequence[float],
                   scales: Sequence[int], trainer: str, family: str, gen_steps: int, seed: int, model: str,
                   **gen_kw) -> dict[float, GeneratedSet]:
    """One image per pool caption from ``family`` at each CFG of ``cfg_table`` (``generate.ensure_set``: cached,
    resumable, launched as a job when ``SYNSCALE_LAUNCHER`` says so): for every scale at ``cfg``, for the smallest
    at the others. Each image keeps its caption's source-image class as a label for bookkeeping only."""
    out = {}
    for g in cfg_table:
        n = max(scales) if g == cfg else min(scales)
        labels = None if pool.labels is None else pool.labels[:n]
        ps = caption_prompts(pool.captions[:n], classes if labels is not None else (), labels, config="pool_captions")
        folder = generate.ensure_set(family, ps, g, gen_steps, seed, model, progress=False, **gen_kw)
        out[g] = GeneratedSet.read(folder, trainer, prefix_n=n)
    return out


@dataclass
class Trainer:
    """How every run of 06 is trained: Table A3's set S or L by caption count (``threshold``) with batches scaled by
    ``batch_scale``, the warm-up of appendix B.1 by scale, ``epochs`` over the run's captions; ``kind`` ``"synscale"``
    trains the mini CLIP in memory (synthetic+real: each caption, each step, picks its synthetic image with
    probability ``p_synthetic``, as sec. 5.2), ``"open_clip"`` runs open_clip's trainer on shards (synthetic+real:
    the real and synthetic shards resampled with weights ``1 - p``, ``p``)."""

    kind: str
    epochs: float
    batch_scale: float
    threshold: int
    warmup_unit: int
    warmup_table: Sequence[int]
    p_synthetic: float = 0.5
    clip_model: str = clip.MINI_NAME
    logs: Path | None = None  # open_clip: its runs (checkpoints, logs), reused by later runs with the same settings
    nproc: int = 1
    precision: str = "fp32"
    workers: int = 2
    gpu_batch: int = 0

    def for_model(self, clip_model: str) -> Trainer:
        """The same trainer for another architecture (Table A10's ViT-B/32 beside 06's ViT-B/16)."""
        return replace(self, clip_model=clip_model)

    def fit(self, pool: CaptionPool, synthetic: dict[float, GeneratedSet], point: Point
            ) -> tuple[Any, Any, dict[str, Any]]:
        """Train one fresh CLIP for ``point`` (its captions from ``pool``, its images from ``synthetic``):
        ``(model, tokenizer, run)`` where ``run`` records its settings, final loss and speed."""
        mode, n, force, g, s, source = point
        hp = clip.hparams_for(n, self.threshold, self.batch_scale, force)
        warm = clip.warmup_for_scale(n, self.warmup_unit, self.warmup_table, hp["name"])
        steps = clip.epochs_to_steps(self.epochs, n, hp["batch_size"])
        real, captions = pool.take(n)
        syn = synthetic[g].take(n) if mode != "real" else None
        if self.kind == "synscale":
            images, alt, p = clip.mode_data(mode, real, syn, self.p_synthetic)
            m, tok, st = clip.train_new(images, captions, init_seed=s, steps=steps, batch_size=hp["batch_size"],
                                        lr=hp["lr"], weight_decay=hp["weight_decay"], eps=hp["eps"], warmup=warm,
                                        seed=s, alt_images=alt, p_alt=p, progress=True)
        else:
            src, w = clip.mode_sources(mode, real, syn, self.p_synthetic)
            label = f"{mode.replace('+', '_')}-{n}-{hp['name']}-cfg{g:g}-s{s}"
            m, tok, st = clip.train_open_clip(src, n, self.logs, label=label, epochs=self.epochs, weights=w,
                                              model=self.clip_model, nproc=self.nproc, force=force,
                                              threshold=self.threshold, batch_scale=self.batch_scale, warmup=warm,
                                              precision=self.precision, workers=self.workers, seed=s,
                                              gpu_batch=self.gpu_batch)
            st["alt_fraction"] = np.nan  # open_clip draws shards, not per-caption images: not counted
        run = {"mode": mode, "n": n, "hparams": hp["name"], "cfg": g, "seed": s, "captions": source,
               "model": self.clip_model,
               "steps": steps, "batch_size": hp["batch_size"], "warmup": warm, "train_loss": st["final_loss"],
               "alt_fraction": st["alt_fraction"], "seconds": st["seconds"], "images_per_s": st["images_per_s"]}
        return m, tok, run
