"""Measure synthetic image sets: prompts → cached generation → oracle metrics, for notebooks 01 and 02 (and later).

``Sweep`` holds what stays fixed in a comparison (world, oracle, family and weights, count, steps, seed) and
measures one prompt configuration over CFG scales, reusing cached data sets and their cached metrics. Under a
launcher (:mod:`synscale.runtime.launch`) the metrics are the job ``synscale metrics --spec …``.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from synscale.data import prompts as P
from synscale.data.world import open_args, open_world
from synscale.methods import generate as G
from synscale.methods.metrics import METRICS, fid_network, image_metrics, lpips_network
from synscale.methods.models import fingerprint, oracle
from synscale.methods.train import eval_preprocess, predict
from synscale.runtime import integrity, logs
from synscale.runtime.distributed import dist_env
from synscale.runtime.launch import Launcher, LaunchError, run_spec
from synscale.runtime.paths import cache_dir
from synscale.runtime.progress import bar

log = logs.logger(__name__)


@dataclass
class Sweep:
    world: object
    oracle: object
    family: str
    model: str = "mini"
    n_per_class: int = 50
    steps: int | dict = 25  # sampler steps, or a mapping family -> steps (generate.steps_for)
    seed: int = 0
    lpips_pairs: int = 250
    batch_size: int = 64
    real_split: str = "val"
    paper_cfg: object = None  # mini CFG -> the paper's CFG scale (or None where no exact mapping exists)
    oracle_name: str | None = None  # names the oracle's weights: metrics are then cached beside each data set
    fid_net: str = "oracle"    # FID's feature space: "oracle" (mini) or the Inception weights' path (paper)
    lpips_net: str = "oracle"  # "oracle" (oracle-LPIPS, mini) or the LPIPS network "alex" (paper)
    store_size: int | None = None  # generated images stored at this side (paper: 512 -> 256); None keeps them
    keep_per_class: int | None = None  # run() returns only the first k images per class of each set (grids)
    word2sen: str = "offline"  # the Word2Sen writer (prompts.word2sen_writer; paper: paper:word2sen)
    _real_features: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        if len(self.world.classes) != self.oracle.num_classes:
            raise ValueError(f"the oracle has {self.oracle.num_classes} outputs but the world "
                             f"{len(self.world.classes)} classes: give an oracle trained on this world's classes "
                             "(in its classes.txt order)")
        self._fid = fid_network(self.fid_net)  # one-line errors for missing weights before any generation
        self._lpips = lpips_network(self.lpips_net)

    def preprocess(self, images):
        """The oracle's input transform for images of this side (``train.eval_preprocess``)."""
        return eval_preprocess(self.oracle, images.shape[1])

    @property
    def real_features(self) -> np.ndarray:
        """The real reference split's features in FID's feature space, computed once: in this process, and — the
        oracle named — for every process, in the shared cache (``real_features/``), so neither each notebook nor each
        rank of a metrics job reads ImageNet-val again."""
        if self._real_features is None:
            x = self.world.split(self.real_split)[0]
            net = f"fid-{Path(self.fid_net).name}" if self._fid is not None else (
                None if self.oracle_name is None else f"oracle@{fingerprint('oracle', self.oracle_name)}")
            cache = net and (cache_dir() / "real_features"
                             / f"{self.world.name}_{self.real_split}_n{len(x)}_s{x.shape[1]}_{net}.npy")
            feats = cache and integrity.load(cache, np.load, "cached real features")
            if feats is None:
                feats = predict(self.oracle, x, preprocess=self.preprocess(x))[1] if self._fid is None else self._fid(x)
                if cache:
                    integrity.save(cache, lambda tmp: np.save(tmp, feats))
            self._real_features = feats
        return self._real_features

    def prompts(self, config: str) -> P.PromptSet:
        return P.for_world(config, self.world, self.n_per_class, self.seed, self.word2sen)

    def metrics_file(self, path: Path | str) -> Path:
        """Where the metrics of the set at ``path`` are cached (beside its shards): named by the oracle's weights,
        the real reference split, the world, the LPIPS pairs and seed, and the paper's networks where they are used."""
        nets = "".join(f"_{k}-{Path(v).name}" for k, v in (("fid", self.fid_net), ("lpips", self.lpips_net))
                       if v != "oracle")
        return Path(path) / (f"metrics_oracle@{fingerprint('oracle', self.oracle_name)}_{self.real_split}"
                             f"_{self.world.name}_pairs{self.lpips_pairs}_seed{self.seed}{nets}.json")

    def metrics(self, path, ds: G.Synthetic, num_classes: int) -> tuple[dict, dict]:
        """``image_metrics`` of a data set, read from / written to a JSON beside its shards when the oracle is named
        (so 03 and 05 reuse what 01/02 measured on the same files)."""
        cache = None if self.oracle_name is None else self.metrics_file(path)
        if cache is not None and (d := integrity.load_json(cache, "cached image metrics")) is not None:
            return ({k: d["metrics"][k] for k in METRICS},  # in image_metrics' order (the file's is sorted)
                    {k: np.asarray(d["per_class"][k], dtype=np.float64) for k in METRICS if k in d["per_class"]})
        m, pc = image_metrics(self.oracle, ds.images, ds.labels, self.real_features, num_classes, self.lpips_pairs,
                              self.seed, self.preprocess(ds.images), self._fid, self._lpips)
        pc = {k: np.asarray(v, dtype=np.float64) for k, v in pc.items()}  # as a cached file reads back
        if cache is not None:
            integrity.save_json(cache, {"metrics": m, "per_class": {k: v.tolist() for k, v in pc.items()}})
        return m, pc

    def ensure_metrics(self, paths: list[Path], launcher: Launcher | None = None) -> float:
        """The cached metrics of every set in ``paths`` (the oracle named): those missing are measured in this
        process, or — with a launcher other than ``inprocess`` (default ``SYNSCALE_LAUNCHER``) — by one job
        ``synscale metrics --spec …`` whose ranks share out the sets (each set on one rank, so the
        numbers
        do not depend on the launcher). Seconds taken."""
        if self.oracle_name is None:
            raise ValueError("ensure_metrics caches metrics by the oracle's weights: give Sweep an oracle_name")
        launcher = launcher or Launcher.from_env()
        todo = [Path(p) for p in paths if not self._measured(p)]
        t0 = time.perf_counter()
        if launcher.inprocess:  # a kernel, or a launched job's rank with its share of the sets
            for p in bar(todo, desc="image metrics", unit="set"):
                self.metrics(p, G.read_dataset(p, lazy=True), len(self.world.classes))
            return time.perf_counter() - t0
        if not todo:
            return 0.0
        self.real_features  # noqa: B018 -- computed once here, into the shared cache the job's ranks then read
        files = [str(self.metrics_file(p)) for p in todo]
        job = todo[0].parent / f".metrics_{hashlib.sha256(' '.join(files).encode()).hexdigest()[:8]}.job"
        with integrity.exclusive(job):  # two runs that need the same metrics: one launches, the other finds them
            spec = {"world": open_args(self.world), "num_classes": len(self.world.classes),
                    "sweep": {f.name: getattr(self, f.name) for f in fields(self) if f.name in JOB_FIELDS},
                    "sets": [str(p) for p in todo], "files": files}
            seconds = run_spec("synscale.methods.imagesets", job, spec, "metrics", launcher)
        missing = [f for p, f in zip(todo, files) if not self._measured(p)]
        if missing:
            raise LaunchError(f"job metrics ended without {len(missing)} of its {len(files)} results, e.g. "
                              f"{missing[0]} (logs in {job})")
        log.info(f"[{launcher}] measured {len(todo)} set(s) in {seconds:.0f} s")
        return time.perf_counter() - t0

    def _measured(self, path: Path) -> bool:
        """Whether the set at ``path`` has its checked metrics file (a damaged one is moved aside: not measured)."""
        return integrity.load_json(self.metrics_file(path), "cached image metrics") is not None

    def _set(self, ps: P.PromptSet, g: float) -> Path:
        return G.ensure_set(self.family, ps, g, G.steps_for(self.steps, self.family), self.seed, self.model,
                            batch_size=self.batch_size, store_size=self.store_size)

    def run(self, config: str, cfg_scales: list[float]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
        """Metrics per CFG (one row each), per-class metrics (long), and the data sets by CFG.

        In this process each set is generated, then measured, in turn; under a launcher (the oracle named) every
        set is generated first (a job each), then the missing metrics are measured by one job
        (:meth:`ensure_metrics`), and the rows' ``seconds`` are this process's time reading them."""
        ps = self.prompts(config)
        classes = list(self.world.classes)
        paths = {}
        if self.oracle_name is not None and not (launcher := Launcher.from_env()).inprocess:
            paths = {g: self._set(ps, g) for g in cfg_scales}
            self.ensure_metrics(list(paths.values()), launcher)
        rows, per_class, sets = [], [], {}
        for g in cfg_scales:
            t0 = time.perf_counter()
            path = paths.get(g) or self._set(ps, g)
            ds = G.read_dataset(path, lazy=True)  # decoded as the metrics read it (paper sets: ~10 GB each)
            m, pc = self.metrics(path, ds, len(classes))
            rows.append({"family": self.family, "config": config, "cfg": g,
                         "paper_cfg": self.paper_cfg(g) if self.paper_cfg else None, **m,
                         "images_per_s": ds.index.get("images_per_s_last_rank"),
                         "seconds": time.perf_counter() - t0})
            per_class += [{"family": self.family, "config": config, "cfg": g, "class": classes[k],
                           **{name: v[k] for name, v in pc.items()}} for k in range(len(classes))]
            sets[g] = ds if self.keep_per_class is None else G.head_per_class(ds, self.keep_per_class)
        return pd.DataFrame(rows), pd.DataFrame(per_class), sets


#: the Sweep fields a metrics job's spec carries (the rest — the world, the oracle itself, the paper's CFG mapping,
#: the grid's image count — are reopened from the spec or do not bear on the metrics)
JOB_FIELDS = ("family", "model", "n_per_class", "steps", "seed", "lpips_pairs", "batch_size", "real_split",
              "oracle_name", "fid_net", "lpips_net", "store_size", "word2sen")


def _from_spec(path: Path) -> Path:
    """The metrics a launched job's spec describes (:meth:`Sweep.ensure_metrics`), this rank's every
    world-size-th set; the job's folder."""
    spec = json.loads(Path(path).read_text())
    world = open_world(**spec["world"])
    sweep = Sweep(world, oracle(spec["sweep"]["oracle_name"], world), **spec["sweep"])
    sets = [Path(p) for p in spec["sets"]]
    if [str(sweep.metrics_file(p)) for p in sets] != spec["files"] or len(world.classes) != spec["num_classes"]:
        raise LaunchError(f"job spec {path}: it names other metrics files than this process would write (the oracle's "
                          f"weights or the world changed since it was written); delete {Path(path).parent} and run "
                          "again")
    rank, world_size = dist_env()
    sweep.ensure_metrics(sets[rank::world_size], Launcher())
    return Path(path).parent


def main(argv: list[str] | None = None, prog: str = "synscale metrics") -> int:
    """``synscale metrics``: measure generated sets, from flags (a person) or a launched job's spec (a notebook)."""
    import argparse

    ap = argparse.ArgumentParser(
        prog=prog, description="Recognizability, diversity, FID and LPIPS (Fan sec. 3.2) of generated sets, each "
        "written to a JSON file beside the set's shards, named by the oracle's weights, the real split, the world, "
        "the LPIPS pairs, the seed and the networks (notebooks 01-05 read the same files; a measured set is not "
        "measured again). Under SYNSCALE_LAUNCHER the sets are shared out over a job's ranks. Prints the metrics.")
    ap.add_argument("sets", nargs="*", type=Path, help="generated sets' folders (synscale generate prints them)")
    ap.add_argument("--spec", type=Path, metavar="JSON",
                    help="the job a notebook launched (written by Sweep.ensure_metrics); no other flag is read")
    ap.add_argument("--world", default="mini", help="'mini' or an ImageNet-style folder: the real reference split")
    ap.add_argument("--oracle", default="mini", help="the oracle's weights: 'mini' or paper:oracle (ViT-B/16)")
    ap.add_argument("--real-split", default="val", help="FID's real reference split")
    ap.add_argument("--lpips-pairs", type=int, default=250, help="LPIPS pairs per class")
    ap.add_argument("--fid-net", default="oracle", help="'oracle' (mini) or the Inception weights' path (paper)")
    ap.add_argument("--lpips-net", default="oracle", help="'oracle' (mini) or 'alex' (paper)")
    ap.add_argument("--store-size", type=int, help="the side the sets' images are stored at (paper: 256)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.spec is not None:
        out = _from_spec(a.spec)
        if dist_env()[0] == 0:
            print(out)
        return 0
    if not a.sets:
        ap.error("name the sets to measure (or --spec JSON)")
    world = open_world(a.world, a.seed, a.store_size)
    sweep = Sweep(world, oracle(a.oracle, world), family="", seed=a.seed, lpips_pairs=a.lpips_pairs,
                  real_split=a.real_split, oracle_name=a.oracle, fid_net=a.fid_net, lpips_net=a.lpips_net,
                  store_size=a.store_size)
    sweep.ensure_metrics(a.sets)
    if dist_env()[0] == 0:
        for p in a.sets:
            print(f"{p}: {json.dumps(integrity.load_json(sweep.metrics_file(p), 'image metrics')['metrics'])}")
    return 0


if __name__ == "__main__":  # a launched job: its lines go to its log
    logs.route()
    raise SystemExit(main())
