"""The embedded mini world: real splits, captions, OOD analogs and the shipped mini models, by name.

    from synscale.data import world
    w = world.load()                       # shipped artifacts in <repo>/mini_world (checksums verified)
    x, y = w.split("train")                # uint8 [N, 32, 32], int64 [N]
    caps = w.captions("pool")              # web-like captions of the upstream pool
    x, y = w.split("sketch")               # OOD analogs: sketch, rendition, a, v2

    w = world.open_world("~/data/imagenet")  # paper profile: an ImageNet-style folder, same interface
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from synscale.data.arrays import take
from synscale.data.world import data, downstream
from synscale.data.world.captions import build_captions
from synscale.data.world.classes import NAMES
from synscale.data.world.folder import FolderWorld
from synscale.runtime.paths import expand_path
from synscale.runtime.paths import world_dir as default_dir

MANIFEST = "MANIFEST.json"
OOD_SPLITS = ("sketch", "rendition", "a", "v2")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(root: Path) -> dict:
    p = Path(root) / MANIFEST
    return json.loads(p.read_text()) if p.exists() else {"components": {}}


def verify(root: Path, component: str) -> Path:
    """The component's folder after checking every file against the manifest's sha256; one-line errors."""
    root = Path(root)
    entry = read_manifest(root)["components"].get(component)
    if entry is None:
        raise FileNotFoundError(
            f"mini-world artifact '{component}' is not built in {root}: run `./run_all.sh 00 --profile rebuild` "
            f"(or set SYNSCALE_WORLD to a built world)"
        )
    for rel, digest in entry["files"].items():
        f = root / rel
        if not f.exists():
            raise FileNotFoundError(f"mini-world file {f} is missing: restore it from git or rebuild "
                                    "(`./run_all.sh 00 --profile rebuild`)")
        if sha256(f) != digest:
            raise ValueError(f"mini-world file {f} does not match its checksum in {root / MANIFEST}: restore it from "
                             "git or rebuild")
    return root / component


@dataclass
class World:
    root: Path
    seed: int = 0
    sizes: data.SplitSizes = field(default_factory=data.SplitSizes)
    classes: list[str] = field(default_factory=lambda: list(NAMES))
    _tasks: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        """Names the world's real splits in cache keys (the splits are a function of the seed)."""
        return f"world{self.seed}"

    @cached_property
    def _xy(self) -> tuple[np.ndarray, np.ndarray]:
        return data.load_fmnist()

    @cached_property
    def indices(self) -> dict[str, np.ndarray]:
        idx = data.make_splits(self.seed, self.sizes)
        h = idx["heldout"]
        q = len(h) // 4
        idx["a_candidates"], idx["sketch"], idx["rendition"] = h[: 2 * q], h[2 * q : 3 * q], h[3 * q :]
        return idx

    def split(self, name: str, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of a split; ``n`` takes a prefix (nested subsets for scaling)."""
        x, y = self._xy
        if name == "a":
            idx = self.indices["a_candidates"][self.a_mask()]
        elif name in self.indices:
            idx = self.indices[name]
        else:
            raise KeyError(f"unknown split '{name}'; known: {', '.join([*self.indices, 'a'])}")
        idx = idx[:n] if n is not None else idx
        images = x[idx]
        if name == "sketch":
            images = data.sketch(images)
        elif name == "rendition":
            images = data.rendition(images, self.rendition_styles()[: len(idx)], seed=self.seed)
        return images, y[idx]

    def rendition_styles(self) -> np.ndarray:
        return np.arange(len(self.indices["rendition"])) % len(data.RENDITION_STYLES)

    def captions(self, name: str, n: int | None = None) -> list[str]:
        """Web-like captions of a split's real images (seeded per split; see ``captions.build_captions``)."""
        x, y = self.split(name, n)
        return build_captions(x, y, seed=self.seed * 1000 + sorted(self.indices).index(name))[0]

    def downstream(self, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(train images, train labels, test images, test labels) of a linear-probe task (``world.downstream``);
        rendered once per world (every CLIP of 08 is probed on the same five tasks)."""
        if task in self._tasks:
            return self._tasks[task]
        x, y = self._xy
        fresh = self.indices["a_candidates"][~self.a_mask()]  # never in the `a` split, never trained on
        half = len(fresh) // 2
        out = []
        for part, s in ((fresh[:half], 0), (fresh[half:], 1)):
            out += list(downstream.make(task, x[part], y[part], seed=self.seed * 10 + s))
        self._tasks[task] = tuple(out)
        return self._tasks[task]

    def a_mask(self) -> np.ndarray:
        """ImageNet-A analog: which held-out candidates the oracle gets wrong (computed at build, shipped)."""
        verify(self.root, "ood_a")
        return np.load(self.root / "ood_a" / "misclassified.npy")

    def path(self, component: str) -> Path:
        return verify(self.root, component)


def load(root: Path | str | None = None, seed: int = 0) -> World:
    """The mini world (shipped artifacts unless ``root`` names another built world)."""
    return World(Path(root) if root else default_dir(), seed=seed)


def open_world(name: str = "mini", seed: int = 0, image_size: int | None = None):
    """The world a notebook's ``world`` parameter names: ``"mini"`` (the shipped mini world) or a folder laid out
    as :mod:`synscale.data.world.folder` describes (ImageNet at paper scale; ``~`` and ``${VAR:-default}`` expand),
    whose images are read at ``image_size`` (default 256: the side generated images are stored at, so real and
    synthetic sets reach the oracle alike). The mini world's images are 32 px whatever ``image_size`` says."""
    if name == "mini":
        return load(seed=seed)
    return FolderWorld(Path(expand_path(name)), seed=seed, image_size=image_size or 256)


def open_args(world) -> dict:
    """The :func:`open_world` arguments that open ``world`` again (in a launched job's processes)."""
    if isinstance(world, FolderWorld):
        return {"name": str(world.root), "seed": world.seed, "image_size": world.image_size}
    return {"name": "mini", "seed": world.seed}


def class_ids(world, names: list[str] | tuple[str, ...]) -> list[int]:
    """The world's label ids of ``names`` (all of its classes when empty), one clear error for an unknown one."""
    if not names:
        return list(range(len(world.classes)))
    unknown = [n for n in names if n not in world.classes]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"task classes must be distinct names of the world's classes; unknown or repeated: "
                         f"{unknown or list(names)} (known: {', '.join(world.classes)})")
    return [list(world.classes).index(n) for n in names]


def relabel(labels: np.ndarray, keep: list[int]) -> np.ndarray:
    """World labels → a task's labels: the position of each label in ``keep``, −1 for a label outside it."""
    table = np.full(max(int(np.max(labels, initial=0)), *keep) + 1, -1, dtype=np.int64)
    table[np.asarray(keep)] = np.arange(len(keep))
    return table[np.asarray(labels, dtype=np.int64)]


def class_subset(images, labels: np.ndarray, keep: list[int], n: int | None = None) -> tuple:
    """The images of classes ``keep`` (in split order, a prefix of ``n``), labelled by position in ``keep``: a
    downstream task on some of a world's classes (lazy images stay lazy)."""
    task = relabel(labels, keep)
    idx = np.flatnonzero(task >= 0)[:n]
    return take(images, idx), task[idx]
