"""Image generation with diffusers pipelines: one seed per sample, written once as webdataset shards.

- ``generate_images`` is the in-memory core (uint8 greyscale/RGB arrays). Sample ``i`` is drawn with its own
  ``torch.Generator`` seeded by ``seeds[i]``, so an image does not depend on batch size, order, shard or rank.
  SD and IF pipelines take a list of generators natively. ``AmusedPipeline`` hands its generator to the scheduler
  only, so :func:`per_sample_scheduler` swaps in an ``AmusedScheduler`` whose ``step`` accepts one generator per
  sample (each sample's token draws are exactly those of a batch-of-one call); Muse is batched too.
- ``generate_dataset`` writes a prompt set's images as webdataset shards (``shard-00000.tar`` …; per sample:
  ``png`` image, ``cls`` label, ``txt`` prompt, ``json`` with the seed). Shard ``j`` holds samples
  ``[j·S, (j+1)·S)`` and belongs to rank ``j mod world_size``, so several processes (torchrun / accelerate set
  ``RANK`` and ``WORLD_SIZE``) split the work without talking to each other. Finished shards are skipped, a
  partial shard is redone from scratch (it is written to a temp name and renamed when complete), and the tar
  entries carry a fixed mtime, so a resumed data set is byte-identical to an uninterrupted one.
- ``dataset_dir`` is the stable cache path of a data set, keyed by family, model fingerprint, prompt config,
  guidance, steps, seed and count; later notebooks reuse what earlier ones generated.

``synscale generate --help`` runs the same generation from the shell (e.g. under ``torchrun`` on
GPUs), for the mini world's classes or an ImageNet folder's (``--world``).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synscale.data import prompts as P
from synscale.data.arrays import ShardImages, scan_shards, take
from synscale.data.samples import chunked_sha256
from synscale.data.world import open_world
from synscale.methods import models
from synscale.methods.models import fingerprint
from synscale.runtime import integrity, logs
from synscale.runtime.distributed import default_device, dist_env, dist_init
from synscale.runtime.launch import Launcher, LaunchError, run_spec
from synscale.runtime.paths import cache_dir
from synscale.runtime.progress import bar as progress_bar
from synscale.runtime.threads import pinned

log = logs.logger(__name__)

INDEX = "index.json"
SHARD = "shard-{:05d}.tar"


def _call(pipe, prompts: list[str], gens: list[torch.Generator], guidance_scale: float, steps: int) -> np.ndarray:
    kwargs: dict[str, Any] = dict(prompt=prompts, guidance_scale=guidance_scale, num_inference_steps=steps,
                                  generator=gens if len(gens) > 1 else gens[0], output_type="np")
    name = type(pipe).__name__
    if name == "IFPipeline":
        kwargs["clean_caption"] = False  # IF's caption cleaning needs bs4 and ftfy, and would change the prompts
    kwargs.update(getattr(pipe, "synscale_call", {}))  # the registry entry's call arguments (params/generators.yaml)
    if name == "StableDiffusionPipeline":
        size = pipe.unet.config.sample_size * pipe.vae_scale_factor
        kwargs.update(height=size, width=size)
    out = pipe(**kwargs).images
    return np.asarray(out if not torch.is_tensor(out) else out.cpu().numpy())


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float [N, H, W, C] in [0, 1] → uint8 [N, H, W] (C = 1) or [N, H, W, 3]."""
    x = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    return x[..., 0] if x.shape[-1] == 1 else x


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a data set generated with ``seed`` (independent of batching and sharding)."""
    return int(seed) * 1_000_000_007 + int(index)


@pinned
@torch.no_grad()
def generate_images(pipe, prompts: list[str], seeds: list[int], guidance_scale: float, steps: int,
                    batch_size: int = 64, progress=None) -> tuple[np.ndarray, dict[str, float]]:
    """Images for ``prompts`` (one per prompt, sample i from ``seeds[i]``) and throughput stats."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds: give one seed per prompt")
    if type(pipe).__name__ == "AmusedPipeline" and not isinstance(pipe.scheduler, _per_sample_amused()):
        pipe.scheduler = per_sample_scheduler(pipe.scheduler)
    t0 = time.perf_counter()
    device = getattr(pipe, "device", "cpu")  # once: DiffusionPipeline.device walks every module's submodules (~ms)
    chunks = []
    for i in range(0, len(prompts), batch_size):
        gens = [torch.Generator(device).manual_seed(int(s)) for s in seeds[i : i + batch_size]]
        chunks.append(to_uint8(_call(pipe, prompts[i : i + batch_size], gens, guidance_scale, steps)))
        if progress is not None:
            progress.update(len(gens))
    dt = time.perf_counter() - t0
    return np.concatenate(chunks), {"images": len(prompts), "seconds": dt, "images_per_s": len(prompts) / dt}


@functools.cache
def _per_sample_amused():
    from diffusers import AmusedScheduler
    from diffusers.schedulers.scheduling_amused import AmusedSchedulerOutput

    class PerSampleAmusedScheduler(AmusedScheduler):
        """``AmusedScheduler`` whose ``step`` takes one generator per sample (diffusers' convention for lists).

        One batched step: ``AmusedScheduler.step``'s arithmetic on the whole batch, only the random draws (the token
        ``multinomial`` and the Gumbel noise of ``mask_by_random_topk``) per sample from its own generator, with the
        same calls on the same per-sample tensors, so every sample equals a batch-of-one ``step`` bit for bit
        (tests/test_generate.py checks this against diffusers' own step). Versus a loop of whole per-sample steps
        this cuts a 64-image step from ~90 to ~55 ms on one CPU thread; the rest is the multinomial's exponential
        draws, which diffusers' stock batched step makes too.
        """

        def step(self, model_output, timestep, sample, starting_mask_ratio=1.0, generator=None, return_dict=True):
            if not isinstance(generator, (list, tuple)):
                return super().step(model_output, timestep, sample, starting_mask_ratio, generator, return_dict)
            if len(generator) != len(sample):
                raise ValueError(f"{len(generator)} generators for a batch of {len(sample)}")
            prev, orig = _amused_step(self, model_output, timestep, sample, starting_mask_ratio, list(generator))
            return AmusedSchedulerOutput(prev, orig) if return_dict else (prev, orig)

    return PerSampleAmusedScheduler


def _amused_step(sched, model_output: torch.Tensor, timestep, sample: torch.Tensor, starting_mask_ratio: float,
                 gens: list[torch.Generator]) -> tuple[torch.Tensor, torch.Tensor]:
    """``AmusedScheduler.step`` (diffusers 0.42) batched, with sample ``i``'s draws from ``gens[i]``."""
    two_dim_input = sample.ndim == 3 and model_output.ndim == 4
    if two_dim_input:
        batch_size, codebook_size, height, width = model_output.shape
        sample = sample.reshape(batch_size, height * width)
        model_output = model_output.reshape(batch_size, codebook_size, height * width).permute(0, 2, 1)
    mask_id = sched.config.mask_token_id
    unknown_map = sample == mask_id
    probs = model_output.softmax(dim=-1)  # row-wise, so each sample's rows equal its batch-of-one softmax
    device = probs.device

    # diffusers draws torch.multinomial(probs_i, 1, generator=g_i) per sample. For one sample PyTorch computes
    # argmax(p / q) with q ~ Exp(1) of p's shape (ATen's one-sample path), so only the exponential draws need each
    # sample's generator; the division and argmax run once on the batch, with the same values bit for bit.
    g_device = gens[0].device
    p = probs.to(g_device)
    if p.device.type == "cpu" and p.dtype != torch.float32:
        p = p.float()  # as diffusers does: multinomial is not implemented for cpu half precision
    q = torch.empty_like(p)
    for i, g in enumerate(gens):
        q[i].exponential_(1, generator=g)
    pred_original_sample = (p / q).argmax(dim=-1).to(device)
    pred_original_sample = torch.where(unknown_map, pred_original_sample, sample)
    if timestep == 0:
        prev_sample = pred_original_sample
    else:
        seq_len = sample.shape[1]
        step_idx = (sched.timesteps == timestep).nonzero()
        ratio = (step_idx + 1) / len(sched.timesteps)
        if sched.config.masking_schedule == "cosine":
            mask_ratio = torch.cos(ratio * math.pi / 2)
        elif sched.config.masking_schedule == "linear":
            mask_ratio = 1 - ratio
        else:
            raise ValueError(f"unknown masking schedule {sched.config.masking_schedule}")
        mask_len = (seq_len * (starting_mask_ratio * mask_ratio)).floor()
        mask_len = torch.min(unknown_map.sum(dim=-1, keepdim=True) - 1, mask_len)  # [B, 1], per sample
        mask_len = torch.max(torch.tensor([1], device=model_output.device), mask_len)
        selected_probs = torch.gather(probs, -1, pred_original_sample[:, :, None])[:, :, 0]
        selected_probs = torch.where(unknown_map, selected_probs, torch.finfo(selected_probs.dtype).max)
        # mask_by_random_topk with gumbel_noise's uniform draw per sample (its [L] row, on the generator's device)
        noise = torch.empty_like(selected_probs, device=g_device)
        for i, g in enumerate(gens):
            noise[i].uniform_(0, 1, generator=g)
        noise = noise.to(device)
        gumbel = -torch.log((-torch.log(noise.clamp(1e-20))).clamp(1e-20))
        confidence = torch.log(selected_probs.clamp(1e-20)) + sched.temperatures[step_idx] * gumbel
        cut_off = torch.gather(torch.sort(confidence, dim=-1).values, 1, mask_len.long())
        prev_sample = torch.where(confidence < cut_off, mask_id, pred_original_sample)
    if two_dim_input:
        prev_sample = prev_sample.reshape(batch_size, height, width)
        pred_original_sample = pred_original_sample.reshape(batch_size, height, width)
    return prev_sample, pred_original_sample


def per_sample_scheduler(scheduler):
    """The same Amused scheduler (config and state) accepting a list of per-sample generators."""
    return _per_sample_amused().from_config(scheduler.config)


def resize(images: np.ndarray, size: int | None) -> np.ndarray:
    """Store-time resize (paper: generated at 512, stored at 256) with PIL's bicubic filter; ``None`` keeps size."""
    if size is None or images.shape[1] == size:
        return images
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BICUBIC)) for im in images])


# --------------------------------------------------------------------------------------------------- data sets
@dataclass(frozen=True)
class Synthetic:
    """A generated data set read back from its shards, in sample order."""

    images: np.ndarray
    labels: np.ndarray
    prompts: list[str]
    seeds: np.ndarray
    index: dict[str, Any]


def head_per_class(ds: Synthetic, k: int) -> Synthetic:
    """The first ``k`` samples of each class of a data set (what sample grids show), in sample order; the images
    stay lazy for a lazy set (a grid of 10 classes decodes 10 classes' images, not 1000's)."""
    keep = np.concatenate([np.flatnonzero(ds.labels == c)[:k] for c in np.unique(ds.labels)])
    keep.sort()
    return Synthetic(take(ds.images, keep), ds.labels[keep], [ds.prompts[i] for i in keep], ds.seeds[keep], ds.index)


def dataset_dir(family: str, fingerprint: str, prompts, guidance_scale: float, steps: int, seed: int,
                root: Path | None = None, store_size: int | None = None) -> Path:
    """``<cache>/synthetic/<family>@<weights>/<prompt config>/cfg<g>_steps<s>_seed<seed>_n<per class>_p<prompts>``
    (``_s<side>`` appended when images are stored resized).

    ``<weights>`` fingerprints the model's files and ``<prompts>`` the exact prompt list, so a rebuilt model or a
    different caption source never reuses another data set.
    """
    n_per_class = len(prompts) // max(1, len(prompts.classes))
    phash = chunked_sha256(prompts.prompts)[:8]  # = sha256 of the joined prompts, never joined (371M captions)
    return ((root or cache_dir() / "synthetic") / f"{family}@{fingerprint}" / prompts.config
            / (f"cfg{guidance_scale:g}_steps{steps}_seed{seed}_n{n_per_class}_p{phash}"
               + (f"_s{store_size}" if store_size else "")))


def is_complete(out: Path) -> bool:
    """The set's index is written (every shard was, with its record); :func:`damaged_shards` checks the bytes."""
    return (Path(out) / INDEX).exists()


def _write_shard(path: Path, images: np.ndarray, labels: np.ndarray, prompts: list[str], seeds: list[int],
                 first: int) -> None:
    """One shard, renamed into place when complete, with its size + sha256 record beside it (``.sha256``)."""
    import webdataset as wds

    def write(tmp: Path) -> None:
        with wds.TarWriter(str(tmp), mtime=0.0) as w:
            for k, (im, y, p, s) in enumerate(zip(images, labels, prompts, seeds)):
                w.write({"__key__": f"{first + k:08d}", "png": im, "cls": int(y), "txt": p,
                         "json": {"seed": int(s), "label": int(y)}})

    integrity.save(path, write)


def read_index(out: Path | str) -> dict[str, Any]:
    """A finished set's ``index.json``; a one-line :class:`~synscale.runtime.integrity.DamagedCacheError` when it is
    unreadable or has no shard records (a set written before they existed, or a damaged index)."""
    out = Path(out)
    try:
        index = json.loads((out / INDEX).read_text())
        index["shard_records"][index["shards"] - 1]
    except FileNotFoundError:
        raise FileNotFoundError(f"{out}: data set incomplete (no {INDEX}); run generate_dataset to finish it") from None
    except (json.JSONDecodeError, KeyError, IndexError, TypeError):
        raise integrity.DamagedCacheError(f"generated set {out}: {INDEX} is damaged or has no shard records; repair: "
                                          f"{repair_command(out)}") from None
    return index


def repair_command(out: Path | str) -> str:
    return f"synscale generate --repair {out}"


def damaged_shards(out: Path | str, index: dict[str, Any] | None = None, full: bool | None = None
                   ) -> dict[str, str]:
    """``{shard file: what is wrong}`` for the shards of a finished set that differ from the records its index keeps
    (size, and sha256 where ``integrity.should_hash`` says, or for every shard with ``full``); empty when every
    shard is as written."""
    out = Path(out)
    index = index or read_index(out)
    return {r["file"]: problem for r in index["shard_records"]
            if (problem := integrity.damage(out / r["file"], r, full)) is not None}


def _check_set(out: Path) -> dict[str, Any]:
    """The index of a finished set whose shards are all as written, else a one-line error naming a damaged shard
    and the command that regenerates exactly the damaged ones."""
    index = read_index(out)
    bad = damaged_shards(out, index)
    if bad:
        name, problem = next(iter(bad.items()))
        more = f" (and {len(bad) - 1} more shards)" if len(bad) > 1 else ""
        raise integrity.DamagedCacheError(f"generated set {out}: {name} is damaged ({problem}){more}; repair: "
                                          f"{repair_command(out)}")
    return index


def _finished(out: Path) -> bool:
    """Whether ``out`` is a finished set whose shards are all as written (an unreadable index: not finished, and
    every shard is then checked against its own record)."""
    if not is_complete(out):
        return False
    try:
        return not damaged_shards(out)
    except integrity.DamagedCacheError:
        return False


def generate_dataset(pipe, prompts, out: Path | str, guidance_scale: float, steps: int, seed: int,
                     shard_size: int = 1000, batch_size: int = 64, store_size: int | None = None,
                     rank: int | None = None, world_size: int | None = None, info: dict | None = None,
                     progress: bool = True) -> Path:
    """Generate ``prompts`` (a :class:`synscale.data.prompts.PromptSet`) into webdataset shards under ``out``.

    ``pipe`` may be a pipeline or a zero-argument function returning one (loaded only if there is work left).
    Returns ``out``; ``out/index.json`` exists once every shard does (written by whichever rank finishes last), with
    each shard's sample count, size and sha256. A finished set is checked against those records: shards found
    damaged (truncated, flipped, deleted) are regenerated, and only those, byte-identical to the originals (CPU).
    """
    out = Path(out)
    if _finished(out):
        return out
    synced = rank is None or world_size is None  # ranks from the launcher: they wait for each other's shards
    if synced:
        rank, world_size = dist_init()
        synced = world_size > 1
    # one process: a run beside it that fills the same set holds the lock until the set is done (ranks of one
    # launcher coordinate by barriers instead)
    with integrity.exclusive(out) if world_size == 1 else contextlib.nullcontext():
        if world_size == 1 and _finished(out):  # finished meanwhile by the run that held the lock
            return out
        n = len(prompts.prompts)
        n_shards = math.ceil(n / shard_size)
        out.mkdir(parents=True, exist_ok=True)
        if rank == 0:  # first, so that a set interrupted at any point can be repaired from its folder alone
            _save_prompts(prompts, out)
        owned = [j for j in range(n_shards) if j % world_size == rank]
        for j in owned:  # partial shards of an interrupted run, damaged ones of a finished run: redone from scratch
            shard = out / SHARD.format(j)
            for stale in integrity.stale_tmps(shard):
                stale.unlink(missing_ok=True)
            if shard.exists() and (problem := integrity.verify(shard)) is not None:
                log.warning(f"{shard} is damaged ({problem}): regenerating it")
                shard.unlink()
        if not all((out / SHARD.format(j)).exists() for j in range(n_shards)):
            (out / INDEX).unlink(missing_ok=True)  # the set is not complete until every shard is back
        if synced:
            torch.distributed.barrier()  # every rank has taken stock before any writes
        mine = [j for j in owned if not (out / SHARD.format(j)).exists()]
        todo = sum(min(shard_size, n - j * shard_size) for j in mine)
        seconds = 0.0
        if mine:
            pipe = pipe() if callable(pipe) and not hasattr(pipe, "components") else pipe
            bar = progress_bar(total=todo, desc=f"generate {out.parent.name}/{out.name}", unit="img",
                               disable=not progress)
            for j in mine:
                lo, hi = j * shard_size, min(n, (j + 1) * shard_size)
                seeds = [sample_seed(seed, i) for i in range(lo, hi)]
                imgs, stats = generate_images(pipe, list(prompts.prompts[lo:hi]), seeds, guidance_scale, steps,
                                              batch_size, progress=bar)
                seconds += stats["seconds"]
                _write_shard(out / SHARD.format(j), resize(imgs, store_size), prompts.labels[lo:hi],
                             list(prompts.prompts[lo:hi]), seeds, lo)
                bar.set_postfix(img_per_s=f"{(bar.n / seconds) if seconds else 0:.2f}")
            bar.close()
        if synced:
            torch.distributed.barrier()  # every rank's shards are written
        if (not synced or rank == 0) and not is_complete(out) \
                and all((out / SHARD.format(j)).exists() for j in range(n_shards)):
            write_index(out, n, shard_size, {
                "classes": list(prompts.classes), "prompt_config": prompts.config, "guidance_scale": guidance_scale,
                "steps": steps, "seed": seed, "store_size": store_size, "batch_size": batch_size,
                "images_per_s_last_rank": (todo / seconds) if seconds else None, **(info or {})})
        if synced:
            torch.distributed.barrier()  # rank 0 wrote the index: every rank can read the set
        return out


def write_index(out: Path, n: int, shard_size: int, meta: dict[str, Any]) -> Path:
    """The index that marks a set complete (written atomically): ``meta`` and each shard's record (samples, size and
    the sha256 its writer computed from the bytes it wrote)."""
    records = []
    for j in range(math.ceil(n / shard_size)):
        shard = out / SHARD.format(j)
        rec = json.loads(integrity.sidecar(shard).read_text())
        if shard.stat().st_size != rec["size"]:
            raise integrity.DamagedCacheError(f"generated set {out}: {shard.name} changed while the set was being "
                                              f"written; repair: {repair_command(out)}")
        records.append({"file": shard.name, "samples": min(shard_size, n - j * shard_size), **rec})
    return integrity.write_json(out / INDEX, {**meta, "images": n, "shards": len(records), "shard_size": shard_size,
                                              "shard_records": records})


def prompt_file_name(prompts) -> str:
    """``prompts.tsv`` (readable) for a set held in memory; ``prompts.parquet`` for a lazy one (pool captions: up to
    371M), which every rank then reads only in its own rows (``data.prompts.load``)."""
    return "prompts.tsv" if isinstance(prompts.prompts, (tuple, list)) else "prompts.parquet"


def prompt_file(folder: Path) -> Path:
    """The prompt file a set's or a job's folder keeps (:func:`prompt_file_name`)."""
    return next((f for f in (folder / "prompts.parquet", folder / "prompts.tsv") if f.exists()),
                folder / "prompts.tsv")


def _save_prompts(prompts, out: Path) -> None:
    f = out / prompt_file_name(prompts)
    if f.suffix == ".parquet":
        prompts.save(f)  # written atomically, streamed
        return
    tmp = integrity.tmp_name(f)
    prompts.save(tmp)
    os.replace(tmp, f)


@functools.lru_cache(maxsize=4)
def pipeline(family: str, model: str = "mini", device: str | None = None):
    """A loaded text-to-image pipeline on ``device`` (default: :func:`default_device`), kept for reuse across data
    sets (four at most)."""
    device = device or default_device()
    dtype = torch.float16 if device.startswith("cuda") else None
    return models.t2i(family, model, device=device, dtype=dtype)


def steps_for(steps: int | Mapping[str, int], family: str) -> int:
    """Sampler steps of ``family``: one number for every family, or a mapping family -> steps (each family's sampler
    converges at its own rate: DDIM in few steps, DDPM and masked-token decoding in more)."""
    if isinstance(steps, Mapping):
        if family not in steps:
            raise ValueError(f"gen_steps has no entry for family '{family}' (it has {sorted(steps)}): add one, "
                             f"e.g. {{..., '{family}': 15}}")
        return int(steps[family])
    return int(steps)


def ensure_set(family: str, prompts, guidance_scale: float, steps: int, seed: int, model: str = "mini",
               device: str | None = None, root: Path | None = None, launcher: Launcher | None = None,
               **kwargs) -> Path:
    """The cached data set of (family/weights, prompts, guidance, steps, seed): generated once, then reused.

    Missing, it is generated in this process, or — with a launcher other than ``inprocess`` (``launcher``, default
    ``SYNSCALE_LAUNCHER``; :mod:`synscale.runtime.launch`) — as the job ``synscale generate --spec
    …`` whose
    ranks share out the shards; the caller waits for it. The bytes are the same either way (per-sample seeds)."""
    fp = fingerprint(family, model)
    out = dataset_dir(family, fp, prompts, guidance_scale, steps, seed, root, kwargs.get("store_size"))
    launcher = launcher or Launcher.from_env()
    if not launcher.inprocess and not _finished(out):
        return _launch_set(out, launcher, family, model, prompts, guidance_scale, steps, seed, **kwargs)
    info = {"family": family, "model": model, "fingerprint": fp}
    return generate_dataset(lambda: pipeline(family, model, device), prompts, out, guidance_scale, steps, seed,
                            info=info, **kwargs)


def _launch_set(out: Path, launcher: Launcher, family: str, model: str, prompts, guidance_scale: float, steps: int,
                seed: int, **kwargs) -> Path:
    """:func:`ensure_set` as a launched job: its spec (and prompts) beside the set, then wait and check."""
    job = out.with_name(f".{out.name}.job")
    with integrity.exclusive(job):  # two runs that need the same set: one launches, the other then finds it
        if _finished(out):
            return out
        prompts.save(job / prompt_file_name(prompts))
        kwargs.pop("progress", None)
        spec = {"out": str(out), "root": str(out.parents[2]), "family": family, "model": model,
                "classes": list(prompts.classes), "cfg": guidance_scale, "steps": steps, "seed": seed,
                "kwargs": kwargs}
        seconds = run_spec("synscale.methods.generate", job, spec, "generate", launcher)
    if not _finished(out):
        raise LaunchError(f"job generate for {out} ended without a complete set (logs in {job})")
    log.info(f"[{launcher}] generated {out.name} in {seconds:.0f} s")
    return out


def _from_spec(path: Path) -> Path:
    """The set a launched job's spec describes (:func:`_launch_set`), made by this process's rank."""
    spec = json.loads(Path(path).read_text())
    ps = P.load(prompt_file(Path(path).parent), spec["classes"])  # lazy for a large set: this rank's rows only
    rank, _ = dist_env()
    out = ensure_set(spec["family"], ps, spec["cfg"], spec["steps"], spec["seed"], spec["model"], default_device(),
                     Path(spec["root"]), Launcher(), progress=rank == 0, **spec["kwargs"])
    if str(out) != spec["out"]:
        raise LaunchError(f"job spec {path}: it names {spec['out']} but describes {out} (weights or prompts changed "
                          f"since it was written); delete {Path(path).parent} and run again")
    return out


def shard_urls(out: Path | str) -> list[str]:
    """The shards of a finished set, each checked against the record its index keeps (a damaged one is a one-line
    error naming it and the repair command)."""
    out = Path(out)
    index = _check_set(out)
    return [str(out / r["file"]) for r in index["shard_records"]]


def read_dataset(out: Path | str, lazy: bool = False) -> Synthetic:
    """All samples of a finished data set, in sample order, its shards checked first (:func:`shard_urls`).
    ``lazy``: the images stay in the shards and are decoded when indexed (``arrays.ShardImages``: paper-scale sets);
    otherwise they are decoded into one uint8 array."""
    urls = shard_urls(out)
    index = read_index(out)
    offsets, small = scan_shards(urls)
    if len(offsets) != index["images"]:
        raise integrity.DamagedCacheError(f"generated set {out}: {len(offsets)} images in its shards, "
                                          f"{index['images']} in its index; repair: {repair_command(out)}")
    meta = [json.loads(b) for b in small["json"]]
    images = ShardImages(urls, offsets)
    return Synthetic(images if lazy else images[:], np.array([int(b) for b in small["cls"]], dtype=np.int64),
                     [b.decode() for b in small["txt"]], np.array([m["seed"] for m in meta]), index)


def repair(out: Path | str, device: str | None = None) -> Path:
    """Regenerate exactly the damaged or missing shards of a set from what its folder records (prompts.tsv and the
    index's family, weights, guidance, steps, seed and sizes); the other shards are left as they are."""
    out = Path(out)
    try:
        index = json.loads((out / INDEX).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        raise integrity.DamagedCacheError(f"generated set {out}: {INDEX} is missing or damaged, so the set's "
                                          "settings are unknown; rerun the notebook that made it (it regenerates the "
                                          "set)") from None
    if "family" not in index or not prompt_file(out).exists():
        raise integrity.DamagedCacheError(f"generated set {out} does not record its generator or prompts; rerun the "
                                          "notebook that made it (it regenerates the set)")
    ps = P.load(prompt_file(out), index["classes"])
    info = {k: index[k] for k in ("family", "model", "fingerprint")}
    if fingerprint(index["family"], index["model"]) != index.get("fingerprint"):
        raise integrity.DamagedCacheError(f"generated set {out} was made with other {index['family']} weights than "
                                          f"'{index['model']}' resolves to now; its shards cannot be regenerated")
    return generate_dataset(lambda: pipeline(index["family"], index["model"], device), ps, out,
                            index["guidance_scale"], index["steps"], index["seed"], index["shard_size"],
                            index.get("batch_size", 64), index["store_size"], info=info)


# ---------------------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None, prog: str = "synscale generate") -> int:
    ap = argparse.ArgumentParser(prog=prog,
                                 description="Generate one synthetic data set (webdataset shards) into the shared "
                                             "cache, <cache>/synthetic/<key>/ (rank-sharded under torchrun or SLURM: "
                                             "RANK and WORLD_SIZE are honoured); prints the set's folder.")
    ap.add_argument("--repair", metavar="SET_DIR", help="regenerate the damaged or missing shards of a finished set")
    ap.add_argument("--verify", metavar="SET_DIR", help="hash every shard of a finished set against the sha256 "
                    "written with it (reads check sizes and a sample; SYNSCALE_VERIFY=full hashes all on every read)")
    ap.add_argument("--spec", metavar="JSON", help="the set a launched job describes (written by ensure_set)")
    ap.add_argument("--family", choices=sorted(models.PIPELINES))
    ap.add_argument("--model", default="mini",
                    help="'mini' (shipped world), paper:<family> (e.g. paper:sd), a cached HF repo id or a folder")
    ap.add_argument("--world", default="mini",
                    help="whose classes the prompts name: 'mini' or an ImageNet-style folder "
                         "(synscale.data.world.folder)")
    ap.add_argument("--word2sen", default="offline", help="Word2Sen writer: 'offline' or T5 weights (paper:word2sen)")
    ap.add_argument("--prompts", choices=P.CONFIGS)
    ap.add_argument("--cfg", type=float)
    ap.add_argument("--n-per-class", type=int, default=50)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store-size", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--shard-size", type=int, default=1000, help="images per shard (ranks share out whole shards)")
    a = ap.parse_args(argv)
    if a.verify:
        bad = damaged_shards(a.verify, full=True)
        for name, problem in bad.items():
            print(f"{name}: {problem}")
        print(f"{a.verify}: {'damaged; repair: ' + repair_command(a.verify) if bad else 'every shard as written'}")
        return 1 if bad else 0
    if a.repair:
        print(repair(a.repair, default_device()))
        return 0
    if a.spec:
        out = _from_spec(a.spec)
        if dist_env()[0] == 0:
            print(out)
        return 0
    if a.family is None or a.prompts is None or a.cfg is None:
        ap.error("--family, --prompts and --cfg are required (or --repair SET_DIR)")
    world = open_world(a.world, a.seed, a.store_size)
    ps = P.for_world(a.prompts, world, a.n_per_class, a.seed, a.word2sen)
    rank, _ = dist_env()
    out = ensure_set(a.family, ps, a.cfg, a.steps, a.seed, a.model, default_device(), batch_size=a.batch_size,
                     store_size=a.store_size, shard_size=a.shard_size, progress=rank == 0)
    if rank == 0:
        print(out)
    return 0


if __name__ == "__main__":  # a launched job: its lines go to its log
    logs.route()
    raise SystemExit(main())
