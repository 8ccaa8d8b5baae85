"""Supervised classifiers on timm: create, train (resumable), save/load in timm's own folder format.

The mini world's oracle (the paper's "pretrained ViT-B, 86.2%") and the experiments' classifiers are timm
models; ``save`` writes timm's ``save_for_hf`` folder (config.json with the model args + model.safetensors) and
``load`` reads it back through ``timm.create_model("local-dir:<folder>")`` — the same call that loads a paper-scale
checkpoint folder.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synscale.data.arrays import nested_order, take
from synscale.runtime import checkpoint as ckpt
from synscale.runtime import integrity
from synscale.runtime.checkpoint import TrainConfig, iterations_for
from synscale.runtime.distributed import default_device, dist_init
from synscale.runtime.paths import cache_dir
from synscale.runtime.threads import pinned

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


def restrict_classes(model, indices: list[int]):
    """``model`` with its classifier cut to the outputs ``indices`` (in that order): an ImageNet-1k classifier on a
    world of a subset of ImageNet's classes, or logits restricted to ImageNet-R/-A's 200 classes."""
    head = model.get_classifier()
    keep = torch.as_tensor(indices, dtype=torch.long)
    new = torch.nn.Linear(head.in_features, len(indices), bias=head.bias is not None).to(head.weight.device)
    with torch.no_grad():
        new.weight.copy_(head.weight[keep])
        if head.bias is not None:
            new.bias.copy_(head.bias[keep])
    name = model.pretrained_cfg.get("classifier", "head")
    parent = model
    for part in name.split(".")[:-1]:
        parent = getattr(parent, part)
    setattr(parent, name.split(".")[-1], new)
    model.num_classes = len(indices)
    return model


def to_input(images_uint8: np.ndarray, mean=MEAN, std=STD) -> torch.Tensor:
    """uint8 greyscale [N, H, W] (or RGB [N, H, W, 3]) → normalised float [N, 3, H, W]."""
    x = torch.from_numpy(np.ascontiguousarray(images_uint8)).float().div(255.0)
    x = x.unsqueeze(1).expand(-1, 3, -1, -1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


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


def eval_preprocess(model, image_size: int):
    """How ``model`` sees uint8 images of side ``image_size`` at evaluation, as a function images -> tensor.

    timm's own eval transform of the model's data config (resize, centre crop, its mean/std) when the model needs
    a fixed input size (a ViT) or the images are larger than its input (paper: 256 px images, 224 px oracle);
    otherwise the images at their own size normalised with the model's mean/std (the mini world's 32 px models,
    whose configs keep timm's default 224)."""
    from timm.data import create_transform, resolve_data_config

    cfg = resolve_data_config(model=model)
    if not (model.pretrained_cfg.get("fixed_input_size") or image_size > cfg["input_size"][-1]):
        return functools.partial(to_input, mean=cfg["mean"], std=cfg["std"])
    from PIL import Image

    tf = create_transform(**cfg)

    def timm_eval(images_uint8: np.ndarray) -> torch.Tensor:
        return torch.stack([tf(Image.fromarray(np.asarray(im)).convert("RGB")) for im in images_uint8])

    return timm_eval


@pinned
@torch.no_grad()
def predict(model, images_uint8: np.ndarray, batch_size: int = 1000, preprocess=None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Logits [N, C] and pooled features [N, D] (the classifier's pre-logits) of uint8 images (an array or a lazy
    ``synscale.data.arrays`` one); ``preprocess`` maps a batch to the model's input (default
    :func:`to_input`; :func:`eval_preprocess` for a model with its own input size)."""
    model.eval()
    preprocess = preprocess or to_input
    device = next(model.parameters()).device  # where the model is (a GPU at paper scale)
    logits, feats = [], []
    for i in range(0, len(images_uint8), batch_size):
        x = preprocess(images_uint8[i : i + batch_size]).to(device)
        f = model.forward_head(model.forward_features(x), pre_logits=True)
        feats.append(f.float().cpu())
        logits.append(model.get_classifier()(f).float().cpu())
    return torch.cat(logits).numpy(), torch.cat(feats).numpy()


# ---------------------------------------------------------------------------------------------------------------
# The paper's supervised recipe (Fan et al., appendix A.1, Table A1) on timm
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """Table A1 — ViT-B/16, batch 4096, Adam(W) lr 3e-3, wd 0.1, β (0.9, 0.999), cosine, mixup 0.5, dropout 0.1,
    stochastic depth 0.1, RandAug(2, 15), binary cross-entropy — with iterations scheduled linearly in log data size
    (``checkpoint.iterations_for``: ``base_iters``/``base_warmup`` at ``base_size``). ``paper()`` is the table; the
    mini world scales model, batch and base schedule down (``params/0[345]_*.yaml``)."""

    arch: str = "vit_base_patch16_224"
    model_args: dict = field(default_factory=dict)
    img_size: int = 224
    batch_size: int = 4096
    opt: str = "adamw"
    lr: float = 3.0e-3
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    mixup: float = 0.5
    drop_rate: float = 0.1
    drop_path_rate: float = 0.1
    randaug: str = "rand-m15-n2"          # "" = no RandAugment
    loss: str = "bce"                    # "bce" (timm BinaryCrossEntropy, the paper's) or "ce" (softmax cross-entropy)
    label_smoothing: float = 0.1
    crop_scale: tuple[float, float] = (0.08, 1.0)
    base_size: float = 1.0e6
    base_iters: int = 95_000
    base_warmup: int = 10_000
    min_fraction: float = 1.0
    ckpt_every: int = 1000
    micro_batch: int = 0            # images per forward/backward (gradients accumulate to batch_size); 0: the whole
    #                                 per-rank batch on a CPU, the largest power-of-two share that fits on a GPU
    grad_checkpointing: bool = False  # timm's activation checkpointing (ViT-L at batch 512+ per 80 GB GPU)

    @classmethod
    def paper(cls) -> Recipe:
        return cls()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown recipe keys {unknown}; known: {[f.name for f in fields(cls)]}")
        tuples = {k: tuple(v) for k, v in d.items() if k in ("betas", "crop_scale")}
        return cls(**{**d, **tuples})

    def schedule(self, size: int) -> tuple[int, int]:
        """(total, warm-up) iterations for a training set of ``size`` images (appendix A.1's rule)."""
        return iterations_for(size, self.base_size, self.base_iters, self.base_warmup, self.min_fraction)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]

    def create_model(self, num_classes: int):
        model = create(self.arch, num_classes, drop_rate=self.drop_rate, drop_path_rate=self.drop_path_rate,
                       **self.model_args)
        if self.grad_checkpointing:
            model.set_grad_checkpointing(True)
        if "img_size" in self.model_args:  # its data config (timm's eval transform) follows the size it was built at
            s = int(self.model_args["img_size"])
            model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, s, s)}
        return model

    def transform(self, uint8: bool = False):
        """timm's training transform: RandomResizedCrop(``crop_scale``) + flip + RandAugment, normalised; with
        ``uint8``, its uint8 tensor before ``ToTensor`` and ``Normalize`` (timm's prefetcher form: :func:`normalize`
        finishes it, bit for bit the same), so DataLoader workers hand over a quarter of the bytes."""
        from timm.data import create_transform

        return create_transform(self.img_size, is_training=True, scale=self.crop_scale, hflip=0.5,
                                color_jitter=None, auto_augment=self.randaug or None, interpolation="bicubic",
                                mean=MEAN, std=STD, use_prefetcher=uint8)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """A uint8 batch ``[B, 3, H, W]`` from ``Recipe.transform(uint8=True)`` as the float one ``transform()`` gives
    (ToTensor's /255, then Normalize's −mean, /std: the same operations in the same order)."""
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return x.float().div(255).sub_(mean).div_(std)


def nested_subset(images: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``size`` samples of :func:`nested_order` (one-line error if the set is too small)."""
    if size > len(labels):
        raise ValueError(f"asked for {size} training images but the set has {len(labels)}: generate more "
                         f"(raise n_per_class) or drop that size from `sizes`")
    idx = nested_order(labels)[:size]
    return take(images, idx), np.asarray(labels)[idx]  # a lazy array stays lazy (paper scale)


class _StepScheduler:
    """timm's scheduler advanced per update (``step_update``), with the torch-style ``step()`` the loop calls."""

    def __init__(self, sched):
        self.sched, self.n = sched, 0

    def step(self) -> None:
        self.n += 1
        self.sched.step_update(self.n)

    def state_dict(self) -> dict:
        return {"n": self.n, "sched": self.sched.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.n = state["n"]
        self.sched.load_state_dict(state["sched"])
        self.sched.step_update(self.n)


def _seed_step(seed: int, step: int) -> None:
    """Seed every RNG the timm transforms and Mixup draw from (python ``random``, numpy, torch) for one step."""
    s = (int(seed) * 1_000_003 + int(step)) % (2**32)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def make_batch(images: np.ndarray, labels: np.ndarray, idx: np.ndarray, transform) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented batch of uint8 images (greyscale or RGB; an array or a lazy ``synscale.data.arrays`` one) through a
    PIL transform."""
    from PIL import Image

    x = torch.stack([transform(Image.fromarray(images[int(i)]).convert("RGB")) for i in idx])
    return x, torch.as_tensor(np.asarray(labels)[idx], dtype=torch.long)


class StepBatches(torch.utils.data.Dataset):
    """Item ``step`` = the augmented batch of that step for this rank, with the RNG states its augmentations left.

    The RNGs are seeded by (seed, rank, step) before the batch is drawn, and the states after it travel with the
    batch, so the main process continues exactly where the augmentations stopped (Mixup, dropout): a DataLoader
    with any number of workers gives the same training run as none (``workers=0``, everything in-process)."""

    def __init__(self, images, labels, transform, seed: int, rank: int, per_rank: int, batch_size: int):
        self.images, self.labels, self.transform = images, labels, transform
        self.seed, self.rank, self.per_rank, self.batch_size = seed, rank, per_rank, batch_size

    def __len__(self) -> int:
        return 2**62  # indexed by step; the sampler says which steps

    def __getitem__(self, step: int):
        idx = ckpt.batch_indices(self.seed, step, len(self.labels), self.batch_size)
        idx = idx[self.rank * self.per_rank:(self.rank + 1) * self.per_rank]
        _seed_step(self.seed * 7919 + self.rank, step)
        x, y = make_batch(self.images, self.labels, idx, self.transform)
        return step, x, y, (random.getstate(), np.random.get_state(), torch.get_rng_state())


def _as_is(item):
    return item  # the DataLoader's collate: batches come built, and RNG states must keep their types


def step_stream(batches: torch.utils.data.Dataset, total: int, workers: int = 0):
    """``get(step)`` -> ``batches[step]`` (an item whose first field is its step): in-process when ``workers`` <= 0,
    else from a DataLoader of that many processes over steps [first step asked, ``total``) — opened at the first
    call, so a resumed run starts where it left off. Steps must be asked in order."""
    stream: list = []

    def get(step: int):
        if workers <= 0:
            item = batches[step]
        else:
            if not stream:
                stream.append(iter(torch.utils.data.DataLoader(
                    batches, batch_size=None, sampler=range(step, total), num_workers=workers,
                    collate_fn=_as_is, prefetch_factor=2)))
            item = next(stream[0])
        assert item[0] == step, f"data loader out of step: got batch {item[0]} at step {step}"
        return item

    return get


def _restore_rng(states) -> None:
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])


def fit(recipe: Recipe, images: np.ndarray, labels: np.ndarray, num_classes: int, ckpt_dir: Path,
        seed: int = 0, steps: int | None = None, progress: bool = True, workers: int = 0):
    """Train ``recipe.create_model`` on (images, labels) with the full recipe; resumable from ``ckpt_dir``.

    Step s draws its batch indices, augmentations, Mixup λ and dropout masks from RNGs seeded by (seed, s), so a
    run killed and resumed ends with the same weights as an uninterrupted one (CPU). Returns (model, stats).
    ``images`` may be lazy (``synscale.data.arrays``): ``workers`` > 0 decodes and augments batches in that many
    DataLoader processes (paper scale), with the same result as in-process (:class:`StepBatches`).
    Under torchrun each rank takes its slice of the global batch and gradients are averaged by DDP.
    """
    from timm.data import Mixup
    from timm.loss import BinaryCrossEntropy, SoftTargetCrossEntropy
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    if recipe.loss not in ("bce", "ce"):
        raise ValueError(f"recipe.loss must be 'bce' or 'ce', got {recipe.loss!r}")
    total, warmup = recipe.schedule(len(labels))
    total = steps if steps is not None else total
    warmup = min(warmup, max(0, total - 1))
    rank, world_size = dist_init()
    if recipe.batch_size % (2 * world_size):
        raise ValueError(f"batch_size {recipe.batch_size} must be even per rank (Mixup pairs samples) over "
                         f"{world_size} ranks")
    torch.manual_seed(seed)
    device = torch.device(default_device())
    model = recipe.create_model(num_classes).to(device)
    net = ddp(model, device) if world_size > 1 else model
    opt = create_optimizer_v2(model, opt=recipe.opt, lr=recipe.lr, weight_decay=recipe.weight_decay,
                              betas=recipe.betas)
    sched = _StepScheduler(create_scheduler_v2(opt, "cosine", num_epochs=total, warmup_epochs=warmup,
                                               warmup_lr=recipe.lr * 1e-3, min_lr=0.0, step_on_epochs=False,
                                               updates_per_epoch=1)[0])
    # Mixup (λ = 1 when off) turns labels into smoothed one-hot targets for either loss
    mixup = Mixup(mixup_alpha=recipe.mixup, prob=1.0 if recipe.mixup > 0 else 0.0,
                  label_smoothing=recipe.label_smoothing,
                  num_classes=num_classes)
    loss_fn = BinaryCrossEntropy(smoothing=0.0) if recipe.loss == "bce" else SoftTargetCrossEntropy()
    # uint8 items: a DataLoader holds workers x 2 of them in shared memory, per_rank x 3 x img_size² bytes each
    # (ViT-B at 224 px, 512 per rank, 10 workers: 1.5 GB per rank; float32 items were 6 GB)
    batches = StepBatches(images, labels, recipe.transform(uint8=True), seed, rank, recipe.batch_size // world_size,
                          recipe.batch_size)
    batch_at = step_stream(batches, total, workers)

    per_rank = recipe.batch_size // world_size
    micro = micro_batch_for(recipe, model, loss_fn, per_rank, num_classes, device)

    def step_fn(step: int):
        """The step's micro-batch losses, each scaled by its share of the rank's batch (the loop back-propagates
        each as it comes, so gradients accumulate to the whole batch's): Mixup pairs samples across the whole
        per-rank batch before it is split, as one forward pass over it would."""
        _, x, y, states = batch_at(step)
        _restore_rng(states)
        if device.type == "cuda":  # dropout masks on the GPU: from (seed, rank, step) too
            torch.cuda.manual_seed((seed * 7919 + rank) * 1_000_003 + step)
        x, y = mixup(normalize(x.to(device, non_blocking=True)), y.to(device, non_blocking=True))
        chunks = list(range(0, len(x), micro))
        for k, lo in enumerate(chunks):
            sync = world_size == 1 or k == len(chunks) - 1  # DDP averages gradients once, after the last chunk
            with (contextlib.nullcontext() if sync else net.no_sync()), \
                    torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):  # bf16 AMP
                xs, ys = x[lo:lo + micro], y[lo:lo + micro]
                yield loss_fn(net(xs), ys) * (len(xs) / len(x))

    ckpt_dir = Path(ckpt_dir) / f"rank{rank}" if world_size > 1 else ckpt_dir  # no two ranks write one file
    stats = ckpt.train_loop({"model": model}, opt, sched, step_fn, total, ckpt_dir, recipe.ckpt_every,
                            "classifier", progress and rank == 0)
    return model, {**stats, "warmup": warmup, "size": int(len(labels)), "ranks": world_size, "micro_batch": micro,
                   "images_per_s":
                   round((total - stats["resumed_from"]) * recipe.batch_size / max(stats["seconds"], 1e-9), 1)}


#: share of the GPU's memory left free by the micro-batch probe (allocator fragmentation, the loader's pinned
#: batches, evaluation): a probe that fits to the last byte runs out of memory later
PROBE_MARGIN = 0.10


def micro_batch_for(recipe: Recipe, model, loss_fn, per_rank: int, num_classes: int, device: torch.device) -> int:
    """Images per forward/backward: ``recipe.micro_batch`` when set; else the whole per-rank batch on a CPU, and on
    a GPU the largest of per_rank, per_rank/2, ... whose forward and backward at the recipe's image size fit in its
    memory beside AdamW's two fp32 moments per parameter (not allocated before the first step, so held here as a
    reserve) and :data:`PROBE_MARGIN` of the GPU (probed once with random inputs; Table A1's 4096 on one GPU becomes
    e.g. 16 steps of 256)."""
    if recipe.micro_batch:
        if per_rank % recipe.micro_batch:
            raise ValueError(f"micro_batch {recipe.micro_batch} must divide the per-rank batch {per_rank}")
        return recipe.micro_batch
    if device.type != "cuda":
        return per_rank
    moments = 2 * 4 * sum(p.numel() for p in model.parameters() if p.requires_grad)
    margin = int(PROBE_MARGIN * torch.cuda.get_device_properties(device).total_memory)
    reserve = torch.empty(moments + margin, dtype=torch.uint8, device=device)
    try:
        micro = per_rank
        while micro >= 1:
            try:
                x = torch.randn(micro, 3, recipe.img_size, recipe.img_size, device=device)
                y = torch.full((micro, num_classes), 1.0 / num_classes, device=device)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss_fn(model(x), y).backward()
                model.zero_grad(set_to_none=True)
                return micro
            except torch.cuda.OutOfMemoryError:
                model.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                if micro % 2:
                    break
                micro //= 2
    finally:
        del reserve
        torch.cuda.empty_cache()
    raise RuntimeError(f"{recipe.arch} does not fit one {recipe.img_size} px image per step on {device} beside "
                       "AdamW's state: set grad_checkpointing: true in the recipe or use a larger GPU")


def ddp(model, device: torch.device):
    """``model`` under DistributedDataParallel (device ids on a GPU only: CPU ranks take none)."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def classifier_dir(recipe: Recipe, data_id: str, size: int, seed: int = 0, root: Path | None = None) -> Path:
    """``<cache>/classifiers/<data>/<recipe key>/n<size>_seed<seed>``: where :func:`ensure_classifier` keeps it."""
    safe = data_id.replace("/", "__").replace(":", "_")
    if len(safe) > 200:  # many chunks (paper: 32 for 4M images) would exceed a file name's 255 bytes
        safe = f"{safe[:120]}+{data_id.count('+')}more-{hashlib.sha1(data_id.encode()).hexdigest()[:12]}"
    return (root or cache_dir() / "classifiers") / safe / recipe.key() / f"n{size}_seed{seed}"


def ensure_classifier(recipe: Recipe, data_id: str, images: np.ndarray, labels: np.ndarray, num_classes: int,
                      size: int, seed: int = 0, root: Path | None = None, progress: bool = True, workers: int = 0):
    """The classifier trained with ``recipe`` on the first ``size`` of :func:`nested_order` of a data set, cached.

    ``data_id`` names the data set (a synthetic set's cache path, or ``real:<world>:<split>``). The model lives in
    ``<cache>/classifiers/<data>/<recipe key>/n<size>_seed<seed>/`` (timm folder + ``stats.json``) with its
    training checkpoints, so notebooks 03, 04 and 05 share the models they have in common and an interrupted
    training resumes. Returns (model, stats); ``stats["dir"]`` is that folder.
    """
    out = classifier_dir(recipe, data_id, size, seed, root)
    stats = cached_model_stats(out)
    if stats is not None:
        return load_cached(out, stats)
    x, y = nested_subset(images, labels, size)
    model, stats = fit(recipe, x, y, num_classes, out / "ckpt", seed=seed, progress=progress, workers=workers)
    rank, world_size = dist_init()
    if rank == 0:
        save(model.cpu(), out / "model", model_args=recipe.model_args)
        model.to(default_device())
        files = {p.name: integrity.record(p) for p in sorted((out / "model").iterdir()) if p.is_file()}
        integrity.save_json(out / "stats.json", {**stats, "data": data_id, "recipe": asdict(recipe), "files": files})
    if world_size > 1:
        torch.distributed.barrier()  # every rank sees the model cached before any asks for the next one
    return model.eval(), {**stats, "cached": False, "dir": str(out)}


def load_cached(out: Path, stats: dict[str, Any]):
    """The classifier cached in ``out`` whose files :func:`cached_model_stats` has just checked: (model, stats)."""
    return load(out / "model").to(default_device()), {**stats, "cached": True, "dir": str(out)}


def cached_model_stats(out: Path) -> dict[str, Any] | None:
    """The stats of a classifier cached in ``out`` whose model files are as written, else ``None``: a half-written
    or damaged entry (stats or model files) is moved aside with a one-line warning and trained again (its training
    checkpoint, when intact, makes that quick)."""
    stats = integrity.load_json(out / "stats.json", "cached classifier record")
    if stats is None:
        return None
    bad = {f: problem for f, rec in stats.get("files", {}).items()
           if (problem := integrity.damage(out / "model" / f, rec)) is not None}
    if not stats.get("files") or bad:
        f, problem = next(iter(bad.items())) if bad else ("model", "no record of its files")
        integrity.discard(out / "stats.json", "cached classifier", f"{out / 'model' / f}: {problem}")
        return None
    return stats
