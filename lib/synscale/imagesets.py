"""Measure synthetic image sets: prompts → cached generation → oracle metrics, for notebooks 01 and 02 (and later).

``Sweep`` holds what stays fixed in a comparison (world, oracle, family and weights, count, steps, seed) and
measures one prompt configuration over CFG scales, reusing cached data sets.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import generate as G
from . import integrity
from . import prompts as P
from .metrics import fid_network, image_metrics, lpips_network
from .models import fingerprint
from .train import eval_preprocess, predict


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
        """The real reference split's features in FID's feature space, computed once."""
        if self._real_features is None:
            x = self.world.split(self.real_split)[0]
            self._real_features = (predict(self.oracle, x, preprocess=self.preprocess(x))[1] if self._fid is None
                                   else self._fid(x))
        return self._real_features

    def prompts(self, config: str) -> P.PromptSet:
        return P.for_world(config, self.world, self.n_per_class, self.seed, self.word2sen)

    def metrics(self, path, ds: G.Synthetic, num_classes: int) -> tuple[dict, dict]:
        """``image_metrics`` of a data set, read from / written to a JSON beside its shards when the oracle is named
        (so 03 and 05 reuse what 01/02 measured on the same files)."""
        cache = None
        if self.oracle_name is not None:
            nets = "".join(f"_{k}-{Path(v).name}" for k, v in (("fid", self.fid_net), ("lpips", self.lpips_net))
                           if v != "oracle")
            cache = path / (f"metrics_oracle@{fingerprint('oracle', self.oracle_name)}_{self.real_split}"
                            f"_{self.world.name}_pairs{self.lpips_pairs}_seed{self.seed}{nets}.json")
            d = integrity.load_json(cache, "cached image metrics")
            if d is not None:
                return d["metrics"], {k: np.asarray(v) for k, v in d["per_class"].items()}
        m, pc = image_metrics(self.oracle, ds.images, ds.labels, self.real_features, num_classes, self.lpips_pairs,
                              self.seed, self.preprocess(ds.images), self._fid, self._lpips)
        if cache is not None:
            integrity.save_json(cache, {"metrics": m, "per_class": {k: np.asarray(v).tolist() for k, v in pc.items()}})
        return m, pc

    def run(self, config: str, cfg_scales: list[float]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
        """Metrics per CFG (one row each), per-class metrics (long), and the data sets by CFG."""
        ps = self.prompts(config)
        classes = list(self.world.classes)
        rows, per_class, sets = [], [], {}
        for g in cfg_scales:
            t0 = time.perf_counter()
            path = G.ensure_set(self.family, ps, g, G.steps_for(self.steps, self.family), self.seed, self.model,
                                batch_size=self.batch_size, store_size=self.store_size)
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
