"""Supervised scaling experiments (Fan et al. sec. 4, notebooks 03–05): data configuration × size → classifier →
metrics.

A training-data configuration is written ``real`` or ``<family>/<prompt config>/<cfg>`` (e.g. ``sd/classnames/7.5``).
Synthetic training sets grow in **chunks**: chunk k is the cached data set generated with ``seed + k`` and
``n_per_class`` images per class (chunk 0 is exactly the set notebooks 01/02 measured), and a training set of size
D is the first D of ``arrays.nested_order`` over the concatenated chunks — balanced, and nested across sizes. Real
training sets are prefixes of the world's ``train`` split in the same order.

Classifiers are cached per (data, recipe, size, seed) by ``train.ensure_classifier``, so 03 (all configurations at
D_I), 04 (curves) and 05 (OOD, probes, per class) share what they have in common; each model's logits on an
evaluation split are cached beside it, keyed by the split images' hash, so 05 re-reads 04's evaluation on val.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synscale.analysis.scaling import fit_power_law
from synscale.data import prompts as P
from synscale.data.arrays import Concat
from synscale.data.prompts import CONFIGS
from synscale.data.world import open_args, open_world
from synscale.methods import evaluate, train
from synscale.methods import generate as G
from synscale.methods.generate import steps_for
from synscale.methods.models import PIPELINES
from synscale.runtime import integrity, logs
from synscale.runtime.launch import Launcher, LaunchError, run_spec

log = logs.logger(__name__)

FAMILIES = tuple(PIPELINES)  # the text-to-image families


@dataclass(frozen=True)
class DataSpec:
    family: str                 # "real" or a text-to-image family
    config: str | None = None   # prompt configuration (synscale.data.prompts.CONFIGS)
    cfg: float | None = None    # guidance scale

    @classmethod
    def parse(cls, text: str) -> DataSpec:
        """``real`` or ``<family>/<prompt config>/<cfg>``; a one-line error otherwise."""
        if text == "real":
            return cls("real")
        parts = text.split("/")
        if len(parts) != 3 or parts[0] not in FAMILIES or parts[1] not in CONFIGS:
            raise ValueError(f"bad training-data spec {text!r}: write 'real' or "
                             f"'<{'|'.join(FAMILIES)}>/<prompt config>/"
                             f"<cfg>' with a prompt config from {list(CONFIGS)}, e.g. 'sd/classnames/7.5'")
        try:
            return cls(parts[0], parts[1], float(parts[2]))
        except ValueError:
            raise ValueError(f"bad guidance scale in {text!r}: {parts[2]!r} is not a number") from None

    def __str__(self) -> str:
        return "real" if self.family == "real" else f"{self.family}/{self.config}/{self.cfg:g}"


def check_specs(specs: list[str], gen_steps: int | dict | None = None) -> list[DataSpec]:
    """Parse every spec (and find each synthetic one's sampler steps in ``gen_steps``) before any work starts."""
    parsed = [DataSpec.parse(s) for s in specs]
    for s in parsed:
        if s.family != "real" and gen_steps is not None:
            steps_for(gen_steps, s.family)
    return parsed


PAPER_SPEC = str(DataSpec.parse("sd/in_captions/2.0"))  # Fan et al.'s per-class and OOD analyses: SD, IN-Captions, 2


def curve_sizes(family: str, sizes, max_sizes: dict | None, n_real: int) -> list[int]:
    """A curve's training-set sizes (:meth:`Study.sizes_for`; the costs and the ledger count the same): a synthetic
    family's stop at its ``max_sizes`` entry; the real curve's sizes beyond the real set become the whole set."""
    if family != "real":
        cap = (max_sizes or {}).get(family)
        return [int(d) for d in sizes if cap is None or d <= cap]
    return sorted({min(int(d), n_real) for d in sizes})


@dataclass
class Study:
    """What stays fixed across a study: world, recipe, generator weights, chunk size, sampler steps, seed."""

    world: object
    recipe: train.Recipe
    model: str | dict = "mini"  # the generators' weights: one name, or a mapping family -> name (paper: SD, IF, aMUSEd)
    n_per_class: int = 20
    gen_steps: int | dict = 15  # sampler steps, or a mapping family -> steps (generate.steps_for)
    seed: int = 0
    gen_batch_size: int = 64
    store_size: int | None = None  # generated images stored at this side (paper: 512 -> 256, as 01/02 store them)
    eval_splits: tuple[str, ...] = ("val",)
    eval_n: int | None = None  # a prefix of each evaluation split (None: all of it)
    workers: int = 0           # DataLoader processes decoding and augmenting training batches (paper scale)
    word2sen: str = "offline"  # the Word2Sen writer (prompts.word2sen_writer; paper: paper:word2sen)
    progress: bool = False
    train_seeds: tuple[int, ...] = ()  # classifiers trained per point (init, data order, augmentation); () = (seed,)
    max_sizes: dict | None = None  # family -> its curve's largest size (paper: SD to 64M, Imagen and Muse to 8M)
    _data: dict = field(default_factory=dict, repr=False)
    _splits: dict = field(default_factory=dict, repr=False)
    #: per-image evaluation losses of every model evaluated: (data, size, split, train seed) -> float32 [images]
    losses: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.eval_n is not None and self.eval_n < 1:
            raise ValueError(f"eval_n must be a positive number of images per split (or None for all), "
                             f"got {self.eval_n}")

    @property
    def num_classes(self) -> int:
        return len(self.world.classes)

    def weights(self, family: str) -> str:
        return self.model.get(family, "mini") if isinstance(self.model, dict) else self.model

    def chunk_size(self) -> int:
        return self.n_per_class * self.num_classes

    def data(self, spec: DataSpec, size: int) -> tuple[str, np.ndarray, np.ndarray]:
        """(data id, images, labels) holding at least ``size`` images, generating chunks on first use. Synthetic
        images stay in their shards (``arrays.Concat`` of ``arrays.ShardImages``) and the folder world's real ones
        on disk: batches are decoded as training reads them, so paper-scale sets never sit in memory."""
        if spec.family == "real":
            x, y = self.world.split("train")
            if size > len(y):
                raise ValueError(f"real training set has {len(y)} images, asked for {size}")
            return f"real:{self.world.name}:train", x, y  # worlds never share a cached model
        chunks = math.ceil(size / self.chunk_size())
        ids, xs, ys = [], [], []
        for k in range(chunks):
            key = (str(spec), k)
            if key not in self._data:
                ps = P.for_world(spec.config, self.world, self.n_per_class, self.seed + k, self.word2sen)
                path = G.ensure_set(spec.family, ps, spec.cfg, G.steps_for(self.gen_steps, spec.family),
                                    self.seed + k, self.weights(spec.family), batch_size=self.gen_batch_size,
                                    store_size=self.store_size)
                ds = G.read_dataset(path, lazy=True)
                self._data[key] = (str(Path(path).relative_to(Path(path).parents[2])), ds.images, ds.labels)
            i, x, y = self._data[key]
            ids.append(i), xs.append(x), ys.append(y)
        return "+".join(ids), (xs[0] if len(xs) == 1 else Concat(xs)), np.concatenate(ys)

    @property
    def seeds(self) -> tuple[int, ...]:
        """The training seeds of every point (``train_seeds``, or the study's seed)."""
        return tuple(self.train_seeds) or (self.seed,)

    def classifier(self, spec: DataSpec, size: int, recipe: train.Recipe | None = None, train_seed: int | None = None):
        """The cached classifier of (spec, size) trained with ``train_seed`` (default: the study's seed); the data
        set is the same for every training seed."""
        data_id, x, y = self.data(spec, size)
        seed = self.seed if train_seed is None else train_seed
        recipe = recipe or self.recipe
        launcher = Launcher.from_env()
        out = train.classifier_dir(recipe, data_id, size, seed)
        if not launcher.inprocess:  # a job trains it, unless it is cached: its files are checked once either way
            stats = train.cached_model_stats(out) or self._launch_classifier(spec, size, recipe, seed, data_id, out,
                                                                             launcher)
            return train.load_cached(out, stats)
        return train.ensure_classifier(recipe, data_id, x, y, self.num_classes, size, seed,
                                       progress=self.progress, workers=self.workers)

    def _launch_classifier(self, spec: DataSpec, size: int, recipe: train.Recipe, seed: int, data_id: str,
                           out: Path, launcher: Launcher) -> dict:
        """Train (spec, size, seed) as the job ``synscale train --spec …`` (DDP over its ranks):
        the study's settings and the world's name in a spec beside the model's folder; wait; the model's checked
        stats."""
        job = out.with_name(f".{out.name}.job")
        with integrity.exclusive(job):  # two runs that need the same model: one launches, the other finds it
            if (stats := train.cached_model_stats(out)) is not None:
                return stats
            study = {k: getattr(self, k) for k in ("model", "n_per_class", "gen_steps", "seed", "gen_batch_size",
                                                   "store_size", "word2sen", "workers")}
            seconds = run_spec("synscale.studies.supervised", job, {"world": open_args(self.world), "study": study,
                                                            "recipe": asdict(recipe), "data": str(spec), "size": size,
                                                            "train_seed": seed, "data_id": data_id, "out": str(out)},
                               "classifier", launcher)
        if (stats := train.cached_model_stats(out)) is None:
            raise LaunchError(f"job classifier for {out} ended without a model (logs in {job})")
        log.info(f"[{launcher}] trained {spec} at {size} (seed {seed}) in {seconds:.0f} s")
        return stats

    def evaluate(self, spec: DataSpec, size: int, recipe: train.Recipe | None = None, train_seed: int | None = None,
                 label: str = "") -> tuple[list[dict], pd.DataFrame, dict]:
        """Rows (split, loss, top1) and per-class rows of the classifier of (spec, size, seed) on ``eval_splits``;
        its per-image losses go to :attr:`losses` under ``"<label>:<spec>"`` (just the spec without a label: the
        study's recipe), the input of ``scaling.bootstrap_fits``."""
        seed = self.seed if train_seed is None else train_seed
        model, stats = self.classifier(spec, size, recipe, seed)
        rows, per = [], []
        for split in self.eval_splits:
            if split not in self._splits:  # OOD analogs are rendered on each world.split call: once is enough
                self._splits[split] = self.world.split(split, self.eval_n)
            x, y = self._splits[split]
            logits = cached_logits(model, stats["dir"], x)
            present = self._present(split)
            res, pc = subset_classification(logits, y, self.num_classes, present)
            self.losses[(f"{label}:{spec}" if label else str(spec), size, split, seed)] = per_image_loss(logits, y,
                                                                                                        present)
            rows.append({"data": str(spec), "size": size, "split": split, "seed": seed, **res})
            pc.insert(0, "split", split)
            per.append(pc.assign(data=str(spec), size=size, seed=seed,
                                 **{"class": [self.world.classes[i] for i in pc.class_id]}))
        return rows, pd.concat(per, ignore_index=True), {"data": str(spec), "size": size, "seed": seed, **stats}

    def split_losses(self, split: str = "val", data: list[str] | None = None) -> dict[tuple[str, int, int], np.ndarray]:
        """``{(data, size, seed): per-image losses}`` of one evaluation split (input of ``bootstrap_fits``)."""
        return {(d, s, sd): v for (d, s, sp, sd), v in self.losses.items()
                if sp == split and (data is None or d in data)}

    def size_for(self, spec: DataSpec, size: int) -> int:
        """The training-set size a spec has at ``size``: the real set stops at its own size (ImageNet-train's
        1.28M where the paper's D_I is 1.3M and the synthetic curves go on to 4M), synthetic sets have every size."""
        return min(size, len(self.world.split("train")[1])) if spec.family == "real" else size

    def _present(self, split: str) -> list[int] | None:
        """The classes a split has images of, where that is a subset of the world's (ImageNet-R/-A), else None."""
        if not hasattr(self.world, "split_classes"):
            return None
        present = self.world.split_classes(split)
        return present if len(present) < self.num_classes else None

    def sizes_for(self, spec: DataSpec, sizes: list[int]) -> list[int]:
        """The sizes a spec's curve has: a family's stop at its ``max_sizes`` entry (the paper follows SD to 64M,
        Imagen and Muse to 8M); the real curve ends with the whole real training set where the sizes go beyond it
        (ImageNet-train's 1.28M: the paper's last real point, "1.3M")."""
        return curve_sizes(spec.family, sizes, self.max_sizes, len(self.world.split("train")[1]))

    def run(self, specs: list[DataSpec], sizes: list[int], recipe: train.Recipe | None = None, label: str = ""
            ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Every (spec, size, training seed) of :meth:`sizes_for`: metrics (long), per-class metrics (long), training
        stats; ``label`` names another recipe's losses (:meth:`evaluate`)."""
        rows, per, stats = [], [], []
        for spec in specs:
            todo = self.sizes_for(spec, sizes)
            if len(todo) < len(sizes):
                log.info(f"{spec}: sizes {todo} of {sorted(sizes)} (its curve's end: max_sizes or the real set)")
            for size in todo:
                for seed in self.seeds:
                    r, p, s = self.evaluate(spec, size, recipe, seed, label)
                    rows += r
                    per.append(p)
                    stats.append(s)
        return pd.DataFrame(rows), pd.concat(per, ignore_index=True), pd.DataFrame(stats)


def subset_classification(logits: np.ndarray, labels: np.ndarray, num_classes: int, present: list[int] | None
                          ) -> tuple[dict, pd.DataFrame]:
    """``evaluate.classification``, over the outputs of the ``present`` classes only when a split covers a subset
    of the classes (ImageNet-R/-A: their 200 of 1000, the protocol of Hendrycks et al.); per-class rows keep the
    world's class ids."""
    if present is None:
        return evaluate.classification(logits, labels, num_classes)
    index = {c: i for i, c in enumerate(present)}
    res, pc = evaluate.classification(np.asarray(logits)[:, present], np.array([index[int(v)] for v in labels]),
                                      len(present))
    return res, pc.assign(class_id=[present[i] for i in pc["class_id"]])


def per_image_loss(logits: np.ndarray, labels: np.ndarray, present: list[int] | None = None) -> np.ndarray:
    """Cross-entropy of each image (over the ``present`` classes' outputs when given), float32."""
    import torch
    import torch.nn.functional as F

    z = torch.as_tensor(np.asarray(logits), dtype=torch.float32)
    y = np.asarray(labels)
    if present is not None:
        index = {c: i for i, c in enumerate(present)}
        z, y = z[:, present], np.array([index[int(v)] for v in y])
    return F.cross_entropy(z, torch.as_tensor(y, dtype=torch.long), reduction="none").numpy().astype(np.float32)


def cached_logits(model, model_dir: str | Path, images: np.ndarray) -> np.ndarray:
    """``model``'s logits on ``images``, stored in ``model_dir`` under the images' hash (a changed split is a new
    file, never a stale hit)."""
    f = Path(model_dir) / f"logits_{evaluate.content_key(images)}.npy"
    logits = integrity.load(f, np.load, "cached logits")
    if logits is None:
        logits = _predict(model, images)[0]
        integrity.save(f, lambda tmp: np.save(tmp, logits))
    return logits


def _predict(model, images) -> tuple[np.ndarray, np.ndarray]:
    """Logits and features through the model's eval transform for images of this size (``train.eval_preprocess``:
    the 32 px mini models see their images as they are; a paper ViT-B/16 sees 256 px images resized and cropped)."""
    return train.predict(model, images, preprocess=train.eval_preprocess(model, images.shape[1]))


def features(model, images: np.ndarray) -> np.ndarray:
    """Pre-logit features (the classification head removed), no augmentation: the linear-probe input (A.3)."""
    return _predict(model, images)[1]


def probes(model, tasks: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> list[dict]:
    """Linear probes of ``model``'s features on each task's (train, test) split (``evaluate.linear_probe``): top-1,
    ``score`` (Table A2's metric of the task: mean per-class accuracy for ``evaluate.MEAN_PER_CLASS`` sets, else
    top-1) and ``items`` (each test image's share of it, ``evaluate.table_a2_items``); features of image arrays
    shared between tasks are computed once."""
    feats = evaluate.FeatureCache(lambda x: features(model, x))
    out = []
    for t, (xtr, ytr, xte, yte) in tasks.items():
        r = evaluate.linear_probe(feats(xtr), ytr, feats(xte), yte)
        items = evaluate.table_a2_items(t, r["hits"], yte)
        out.append({"task": t, **r, "score": float(items.mean()), "items": items})
    return out


def trained_seconds(stats: pd.DataFrame) -> float:
    """Seconds spent training in this run (cached models cost nothing here)."""
    return float(stats.loc[~stats["cached"].astype(bool), "seconds"].sum()) if len(stats) else 0.0


def gap_to_real(metrics: pd.DataFrame, splits: list[str]) -> tuple[pd.DataFrame, int]:
    """Synthetic minus real top-1 per split (rows: synthetic data specs) at the largest size every curve has,
    real included (the real set stops at its own size, e.g. ImageNet-train's 1.28M), and that size."""
    sizes = metrics.groupby("data")["size"].max()
    common = int(sizes.min())
    at = metrics[metrics["size"] == common].pivot_table(index="data", columns="split", values="top1")
    return (at.drop(index="real") - at.loc["real"])[splits], common


def fits(metrics: pd.DataFrame, ref_size: float, by: list[str], fit_range: tuple[float, float] | None = None
         ) -> pd.DataFrame:
    """Power-law fit of loss vs size per group of ``by`` columns: k, performance at ``ref_size``, their CIs."""
    rows = []
    for key, g in metrics.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        g = g[np.isfinite(g["loss"]) & (g["loss"] > 0)]
        if g["size"].nunique() < 2:
            continue
        f = fit_power_law(g["size"].to_numpy(), g["loss"].to_numpy(), ref_size, fit_range)
        rows.append({**dict(zip(by, key)), "k": f.k, "k_lo": f.k_ci[0], "k_hi": f.k_ci[1],
                     "performance": f.performance, "perf_lo": f.performance_ci[0], "perf_hi": f.performance_ci[1],
                     "r2": f.r2, "n_points": f.n_points})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None, prog: str = "synscale train") -> int:
    """``synscale train``: one classifier, from flags (a person) or from a launched job's spec (a notebook)."""
    ap = argparse.ArgumentParser(
        prog=prog, description="Train one classifier on real or synthetic images into the shared cache, "
        "<cache>/classifiers/<data>/<recipe key>/n<size>_seed<seed>/ (its synthetic images are generated first "
        "when missing, into <cache>/synthetic/); prints the model's folder. A finished model is found, not trained "
        "again; a killed run resumes. Under SYNSCALE_LAUNCHER (torchrun:N, slurm:NxM) the training runs as a job "
        "on N ranks.")
    ap.add_argument("--spec", type=Path, metavar="JSON",
                    help="the job a notebook launched (written by Study.classifier); no other flag is read")
    ap.add_argument("--world", default="mini", help="'mini' or an ImageNet-style folder (default: mini)")
    ap.add_argument("--data", default="real", help="'real' or '<family>/<prompt config>/<cfg>', "
                                                                 "e.g. sd/classnames/2")
    ap.add_argument("--size", type=int, help="training images (a prefix of the data; synthetic: whole chunks)")
    ap.add_argument("--recipe", default="paper",
                    help="'paper' (Fan Table A1: ViT-B/16, batch 4096) or a JSON object or file of train.Recipe fields")
    ap.add_argument("--model", default="mini", help="generator weights: 'mini', 'paper:<family>', a repo id or folder")
    ap.add_argument("--n-per-class", type=int, default=20, help="synthetic images per class in one chunk")
    ap.add_argument("--gen-steps", type=int, default=15, help="sampler steps of the generator")
    ap.add_argument("--seed", type=int, default=0, help="the study's seed (data, prompts, generation)")
    ap.add_argument("--train-seed", type=int, help="the classifier's seed (default: --seed)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader processes decoding training batches")
    ap.add_argument("--store-size", type=int, help="generated images stored at this side (paper: 256)")
    ap.add_argument("--word2sen", default="offline", help="the Word2Sen writer: 'offline' or paper:word2sen")
    a = ap.parse_args(argv)
    if a.spec is None:
        if a.size is None:
            ap.error("--size is required (or --spec JSON)")
        text = a.recipe if a.recipe.lstrip().startswith("{") or a.recipe == "paper" else Path(a.recipe).read_text()
        recipe = train.Recipe.paper() if text == "paper" else train.Recipe.from_dict(json.loads(text))
        world = open_world(a.world, a.seed, a.store_size)  # as notebooks 03-05 open it
        study = Study(world, recipe, a.model, a.n_per_class, a.gen_steps, a.seed, store_size=a.store_size,
                      workers=a.workers, word2sen=a.word2sen, progress=True)
        _, stats = study.classifier(DataSpec.parse(a.data), a.size, None,
                                    a.seed if a.train_seed is None else a.train_seed)
        print(stats["dir"])
        return 0
    spec = json.loads(a.spec.read_text())
    study = Study(open_world(**spec["world"]), train.Recipe.from_dict(spec["recipe"]), **spec["study"])
    data = DataSpec.parse(spec["data"])
    data_id = study.data(data, spec["size"])[0]
    if data_id != spec["data_id"]:
        raise LaunchError(f"job spec {a.spec}: it names data {spec['data_id']} but this process builds {data_id}; "
                          f"delete {a.spec.parent} and run again")
    _, stats = study.classifier(data, spec["size"], None, spec["train_seed"])
    if stats["dir"] != spec["out"]:
        raise LaunchError(f"job spec {a.spec}: the model went to {stats['dir']}, not {spec['out']}")
    return 0


if __name__ == "__main__":  # a launched job: its lines go to its log
    logs.route()
    raise SystemExit(main())
