"""Build the mini world's models once (resumable), and write them as shipped artifacts with checksums.

Components, in order (each skipped when the manifest already lists it, unless forced):

| component | what | trained on |
|---|---|---|
| oracle | timm classifier for recognizability/diversity (paper: pretrained ViT-B) | pool + train images, labels |
| ood_a  | ImageNet-A analog: held-out candidates the oracle misclassifies | — |
| sd     | latent diffusion: AutoencoderKL + UNet + CLIP text encoder → StableDiffusionPipeline | pool + captions |
| if     | pixel diffusion, frozen SD text encoder → IFPipeline | pool images + captions |
| muse   | masked-token model: VQModel + UVit2DModel → AmusedPipeline | pool images + captions |
| fm     | flow matching: SD3Transformer2DModel on the SD analog's latents, frozen SD text encoder →
           StableDiffusion3Pipeline | pool + captions |
| clip   | upstream CLIP (open_clip, small custom config) | pool images + captions |

Training checkpoints live in ``work`` (default ``outputs/_cache/world_build``) so an interrupted build resumes.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synscale.data.world import MANIFEST, World, read_manifest, sha256
from synscale.runtime.checkpoint import TrainConfig

COMPONENTS = ("oracle", "ood_a", "sd", "if", "muse", "clip", "fm")


@dataclass
class BuildConfig:
    oracle_arch: str = "resnet18"
    oracle_args: dict = field(default_factory=lambda: {"channels": [32, 64, 128, 256]})
    oracle: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1800, batch_size=128, lr=2.0e-3, warmup=100,
                                                                    weight_decay=0.05))
    vae: TrainConfig = field(default_factory=lambda: TrainConfig(steps=600, batch_size=64, lr=1.0e-3, warmup=50))
    sd: TrainConfig = field(default_factory=lambda: TrainConfig(steps=800, batch_size=128, lr=1.0e-3))
    if_: TrainConfig = field(default_factory=lambda: TrainConfig(steps=600, batch_size=64, lr=1.0e-3))
    muse_vq: TrainConfig = field(default_factory=lambda: TrainConfig(steps=400, batch_size=64, lr=2.0e-3, warmup=50))
    muse: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1000, batch_size=128, lr=2.0e-3, warmup=50))
    clip: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1000, batch_size=128, lr=2.0e-3, warmup=50,
                                                                  weight_decay=0.1))
    fm: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1000, batch_size=64, lr=1.0e-3, warmup=50))
    text_width: int = 64
    pool_limit: int | None = None  # train the generative models on a prefix of the pool (smoke builds)
    seed: int = 0



def _write_component(out: Path, name: str, src: Path, info: dict[str, Any]) -> None:
    """Move a finished component folder into ``out/name`` and record its files' checksums in the manifest."""
    dst = out / name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.move(str(src), str(dst))
    record_component(out, name, info)


def record_component(out: Path, name: str, info: dict[str, Any]) -> None:
    """(Re)write ``name``'s manifest entry: sha256 of every file under ``out/name``, total bytes, ``info``."""
    dst = out / name
    files = {str(p.relative_to(out)): sha256(p) for p in sorted(dst.rglob("*")) if p.is_file()}
    man = read_manifest(out)
    man["components"][name] = {"files": files, "bytes": sum((out / f).stat().st_size for f in files), **info}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(man, indent=1, sort_keys=True))
    os.replace(tmp, out / MANIFEST)


def _pool(world: World, cfg: BuildConfig) -> tuple[np.ndarray, list[str]]:
    return world.split("pool", cfg.pool_limit)[0], world.captions("pool", cfg.pool_limit)


def build_oracle(world: World, cfg: BuildConfig, work: Path, stage: Path, progress: bool) -> dict:
    from synscale.methods import train

    x = np.concatenate([world.split("pool")[0], world.split("train")[0]])
    y = np.concatenate([world.split("pool")[1], world.split("train")[1]])
    torch.manual_seed(cfg.seed)
    model = train.create(cfg.oracle_arch, 10, **cfg.oracle_args)
    stats = train.train_classifier(model, x, y, cfg.oracle, work / "oracle", progress=progress)
    xv, yv = world.split("val")
    acc = float((train.predict(model, xv)[0].argmax(1) == yv).mean())
    train.save(model.half(), stage, model_args=cfg.oracle_args)  # fp16 on disk; timm loads it into fp32
    return {**stats, "val_top1": acc, "params": sum(p.numel() for p in model.parameters())}


def build_ood_a(world: World, cfg: BuildConfig, work: Path, stage: Path, progress: bool) -> dict:
    from synscale.methods import train

    model = train.load(world.path("oracle"))
    x, y = world.split("a_candidates")
    wrong = train.predict(model, x)[0].argmax(1) != y
    stage.mkdir(parents=True)
    np.save(stage / "misclassified.npy", wrong)
    return {"candidates": int(len(y)), "kept": int(wrong.sum())}


def build_sd(world: World, cfg: BuildConfig, work: Path, stage: Path, progress: bool) -> dict:
    from synscale.data.world import diffusion as D
    from synscale.data.world.textenc import build_tokenizer

    x, caps = _pool(world, cfg)
    torch.manual_seed(cfg.seed)
    vae = D.make_vae()
    s_vae = D.train_vae(vae, x, cfg.vae, work / "sd", progress=progress)
    lat = D.encode_latents(vae, x)
    vae.register_to_config(scaling_factor=float(1.0 / lat.std()))
    lat = lat * vae.config.scaling_factor
    tok = build_tokenizer(work / "tokenizer")
    te = D.make_text_encoder(cfg.text_width)
    unet = D.make_latent_unet(cfg.text_width)
    s_unet = D.train_denoiser(unet, te, tok, lat, caps, cfg.sd, work / "sd", train_text=True, progress=progress,
                              text_mask=D.TEXT_MASK["sd"])
    pipe = D.sd_pipeline(vae, unet, te, tok)
    pipe.to(torch.float16).save_pretrained(str(stage))
    save_tokenizer_files(stage)
    return {"vae": s_vae, "unet": s_unet, "params": {k: D.n_params(m) for k, m in
            (("vae", vae), ("unet", unet), ("text_encoder", te))}}


def build_if(world: World, cfg: BuildConfig, work: Path, stage: Path, progress: bool) -> dict:
    from diffusers import StableDiffusionPipeline

    from synscale.data.world import diffusion as D

    x, caps = _pool(world, cfg)
    sd = StableDiffusionPipeline.from_pretrained(str(world.path("sd")), dtype=torch.float32)
    torch.manual_seed(cfg.seed + 1)
    unet = D.make_pixel_unet(cfg.text_width)
    stats = D.train_denoiser(unet, sd.text_encoder, sd.tokenizer, D.to_unit(x), caps, cfg.if_, work / "if",
                             train_text=False, progress=progress, name="pixel_unet", schedule=D.IF_SCHEDULER,
                             text_mask=D.TEXT_MASK["if"])
    pipe = D.if_pipeline(unet, sd.text_encoder, sd.tokenizer)
    pipe.to(torch.float16).save_pretrained(str(stage))
    save_tokenizer_files(stage)
    return {"unet": stats, "params": {"unet": D.n_params(unet)}}


def build_fm(world: World, cfg: BuildConfig, work: Path, stage: Path, progress: bool) -> dict:
    from diffusers import StableDiffusionPipeline

    from synscale.data.world import diffusion as D
    from synscale.data.world import flow as FL

    x, caps = _pool(world, cfg)
    sd = StableDiffusionPipeline.from_pretrained(str(world.path("sd")), dtype=torch.float32)
    lat = D.encode_latents(sd.vae, x)  # SD3's VAE has a shift and a scale: the latents' mean and 1 / std
    shift = float(lat.mean())
    sd.vae.register_to_config(shift_factor=shift, scaling_factor=float(1.0 / (lat - shift).std()))
    lat = (lat - shift) * sd.vae.config.scaling_factor
    te = FL.text_encoder_with_projection(sd.text_encoder, cfg.seed + 3)
    tok = sd.tokenizer
    tok.model_max_length = FL.TEXT_TOKENS
    torch.manual_seed(cfg.seed + 3)
    tr = FL.make_transformer(cfg.text_width, te.config.projection_dim)
    pipe = FL.pipeline(sd.vae, tr, te, tok)
    stats = FL.train_flow(pipe, lat, caps, cfg.fm, work / "fm", progress=progress)
    pipe.to(torch.float16).save_pretrained(str(stage))
    save_tokenizer_files(stage, ("tokenizer", "tokenizer_2"))
    return {"transformer": stats, "params": {"transformer": D.n_params(tr)}}


def build_muse(world: World, cfg: BuildConfig, work: Path, stage: Path, progress: bool) -> dict:
    from synscale.data.world import muse as M

    x, caps = _pool(world, cfg)
    pipe = M.build(seed=cfg.seed)
    vq, tr = cfg.muse_vq, cfg.muse
    vq_losses = M.train_vq(pipe.vqvae, x, steps=vq.steps, batch_size=vq.batch_size, lr=vq.lr, seed=cfg.seed,
                           ckpt_dir=work / "muse" / "vq", warmup=vq.warmup, progress=progress)
    tr_losses = M.train_transformer(pipe, x, caps, steps=tr.steps, batch_size=tr.batch_size, lr=tr.lr, seed=cfg.seed,
                                    ckpt_dir=work / "muse" / "transformer", warmup=tr.warmup,
                                    weight_decay=tr.weight_decay, progress=progress)
    M.save(pipe, stage)
    return {"vq_final_loss": float(np.mean(vq_losses[-50:])), "transformer_final_loss": float(np.mean(tr_losses[-50:])),
            "params": M.param_counts(pipe)}


def build_clip(world: World, cfg: BuildConfig, work: Path, stage: Path, progress: bool) -> dict:
    from synscale.data.world.text import clip_templates
    from synscale.methods import clip as C
    from synscale.methods.evaluate import zero_shot_classifier, zero_shot_eval

    x, caps = _pool(world, cfg)
    torch.manual_seed(cfg.seed)
    model, _, tok = C.create()
    c = cfg.clip
    stats = C.train_clip(model, x, caps, tok, steps=c.steps, batch_size=c.batch_size, lr=c.lr,
                         weight_decay=c.weight_decay, warmup=c.warmup, seed=cfg.seed, ckpt_dir=work / "clip",
                         progress=progress)
    C.save(model, stage)
    xv, yv = world.split("val")
    head = zero_shot_classifier(model, tok, world.classes, clip_templates(80))
    zs = zero_shot_eval(model, C.to_tensor(xv, model), yv, head)
    keep = ("steps", "final_loss", "logit_scale", "images_per_s", "resumed_from")
    return {**{k: stats[k] for k in keep}, "val_zero_shot_top1": zs["top1"],
            "params": sum(p.numel() for p in model.parameters())}


def save_tokenizer_files(pipeline_dir: Path, folders: tuple[str, ...] = ("tokenizer",)) -> None:
    """transformers 5 saves a CLIPTokenizer as tokenizer.json only (3.6 MB per pipeline); write the small
    vocab.json + merges.txt it loads from instead (identical across pipelines, so git stores them once)."""
    from synscale.data.world.textenc import write_tokenizer_files

    for folder in folders:
        tok_dir = Path(pipeline_dir) / folder
        write_tokenizer_files(tok_dir)
        (tok_dir / "tokenizer.json").unlink(missing_ok=True)


BUILDERS: dict[str, Callable[..., dict]] = {"oracle": build_oracle, "ood_a": build_ood_a, "sd": build_sd,
                                            "if": build_if, "muse": build_muse, "clip": build_clip,
                                            "fm": build_fm}


def build(out: Path, cfg: BuildConfig, work: Path, components: tuple[str, ...] = COMPONENTS, force: bool = False,
          progress: bool = True, seed: int = 0) -> dict[str, dict]:
    """Build the named components into ``out`` (skipping finished ones); return each component's stats."""
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown:
        raise ValueError(f"unknown world components {unknown}; known: {', '.join(COMPONENTS)}")
    out, work = Path(out), Path(work)
    out.mkdir(parents=True, exist_ok=True)
    world = World(out, seed=seed)
    # every core, unless the runner shares them between parallel runs (it sets OMP_NUM_THREADS per run)
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)))
    report: dict[str, dict] = {}
    for name in components:
        done = read_manifest(out)["components"].get(name)
        if done and not force:
            report[name] = {**done, "skipped": True}
            continue
        if force:
            shutil.rmtree(work / name, ignore_errors=True)
        stage = work / f".stage-{name}"
        shutil.rmtree(stage, ignore_errors=True)
        t0 = time.perf_counter()
        info = BUILDERS[name](world, cfg, work, stage, progress)
        info["build_seconds"] = round(time.perf_counter() - t0, 1)
        _write_component(out, name, stage, info)
        report[name] = info
    return report
