"""Training throughput: synscale's trainer vs a bare PyTorch loop on the same model and data, side by side.

    .venv/bin/python benchmarks/trainer_throughput.py [--steps 40] [--repeats 3] [--profile mini]

Both train the mini recipe of ``params/04_scaling.yaml`` (``--profile``) on the world's real ``train`` images for
``--steps`` iterations: ``synscale.methods.train.fit`` (timm transforms + Mixup + BCE + create_optimizer_v2 +
create_scheduler_v2, per-step RNG seeding, checkpointing, resume bookkeeping) and a bare loop a researcher would
write with the same timm pieces (one ``torch.utils.data.DataLoader`` over the same transforms, no checkpoints, no
seeding). Repeats alternate the two and the medians are compared: images/s and the ratio (goal ≥ 0.9×).

It then prints the wall time of the latest finished ``mini`` runs of notebooks 03–05 (from their metrics.json).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch


def bare_loop(recipe, images: np.ndarray, labels: np.ndarray, steps: int) -> float:
    """Images/s of the plain loop: DataLoader(transform) → Mixup → model → BCE → AdamW step → scheduler."""
    from PIL import Image
    from timm.data import Mixup
    from timm.loss import BinaryCrossEntropy, SoftTargetCrossEntropy
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    tf = recipe.transform()

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            return tf(Image.fromarray(images[i]).convert("RGB")), int(labels[i])

    loader = torch.utils.data.DataLoader(DS(), batch_size=recipe.batch_size, shuffle=True, drop_last=True)
    model = recipe.create_model(10).train()
    opt = create_optimizer_v2(model, opt=recipe.opt, lr=recipe.lr, weight_decay=recipe.weight_decay, betas=recipe.betas)
    sched, _ = create_scheduler_v2(opt, "cosine", num_epochs=steps, warmup_epochs=min(10, steps - 1),
                                   step_on_epochs=False, updates_per_epoch=1)
    mixup = Mixup(mixup_alpha=recipe.mixup, prob=1.0 if recipe.mixup > 0 else 0.0,
                  label_smoothing=recipe.label_smoothing, num_classes=10)
    loss_fn = BinaryCrossEntropy(smoothing=0.0) if recipe.loss == "bce" else SoftTargetCrossEntropy()
    t0, n, it = time.perf_counter(), 0, iter(loader)
    for step in range(steps):
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        x, y = mixup(x, y)
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step_update(step + 1)
        n += len(x)
    return n / (time.perf_counter() - t0)


def synscale_fit(recipe, images: np.ndarray, labels: np.ndarray, steps: int) -> float:
    from synscale.methods import train

    with tempfile.TemporaryDirectory() as d:
        _, stats = train.fit(recipe, images, labels, 10, d, steps=steps, progress=False)
    return stats["images_per_s"]


def study_times(profile: str = "mini") -> None:
    from synscale.runtime.results import finished_runs, read_json

    total = 0.0
    for stem in ("03_synthetic_1p3m", "04_scaling", "05_ood"):
        runs = finished_runs(stem, profile)
        if not runs:
            print(f"{stem}: no finished {profile} run under outputs/ (run ./run_all.sh {stem[:2]})")
            continue
        latest = max(runs, key=lambda d: (d / "metrics.json").stat().st_mtime)
        wall = float(read_json(latest / "metrics.json").get("wall_time_s", float("nan")))
        total += wall
        print(f"{stem}: {wall / 60:.1f} min ({latest.name})")
    print(f"03-05 together: {total / 60:.1f} min")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", default="mini")
    args = ap.parse_args()
    from synscale.data.world import load
    from synscale.methods import train
    from synscale.orchestration import params as P
    from synscale.runtime.paths import notebooks_dir, params_dir

    pf = P.load(params_dir() / "04_scaling.yaml", notebooks_dir() / "04_scaling.ipynb")
    recipe = train.Recipe.from_dict(pf.runs(args.profile)[0].params["recipe"])
    x, y = load().split("train", 2000)
    print(f"recipe: {recipe.arch} {recipe.model_args}, batch {recipe.batch_size}, {args.steps} steps, "
          f"{torch.get_num_threads()} threads")
    res: dict[str, list[float]] = {"synscale.methods.train.fit": [], "bare loop": []}
    for _ in range(args.repeats):
        res["synscale.methods.train.fit"].append(synscale_fit(recipe, x, y, args.steps))
        res["bare loop"].append(bare_loop(recipe, x, y, args.steps))
    med = {k: statistics.median(v) for k, v in res.items()}
    for k, v in med.items():
        print(f"{k:>20}: {v:7.1f} img/s (runs: {', '.join(f'{r:.1f}' for r in res[k])})")
    print(f"ratio synscale / bare: {med['synscale.methods.train.fit'] / med['bare loop']:.3f} (goal >= 0.9)")
    study_times(args.profile)


if __name__ == "__main__":
    main()
