"""The mini world's real images: Fashion-MNIST from Debian's ``dataset-fashion-mnist``, split into the papers' roles.

Images are greyscale uint8 ``[N, 32, 32]`` (28×28 padded by 2 px of background), labels int64 — one array for all
70,000 images (the 60k train file first, then the 10k t10k file); splits are index arrays into it.

| split     | from        | size (default) | paper role |
|-----------|-------------|----------------|------------|
| pool      | train file  | 40,000 | LAION: image–caption pairs the text-to-image models and upstream CLIP learn from |
| train     | train file  | 10,000 | ImageNet-train ("1.3M", D_I): curated labelled real set, disjoint from the pool |
| heldout   | train file  | 10,000 | source of the OOD analogs (never trained on) |
| val       | t10k file   |  5,000 | ImageNet-val |
| v2        | t10k file   |  5,000 | ImageNet-V2: a fresh held-out real split |

Smaller training sets are prefixes of ``train`` (nested subsets), so scaling curves add data, not swap it.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SIZE = 32
PAD = (IMAGE_SIZE - 28) // 2


def fmnist_dir() -> Path:
    return Path(os.environ.get("SYNSCALE_FMNIST_DIR", FMNIST_DIR))


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


@lru_cache(maxsize=2)
def _load(root: str) -> tuple[np.ndarray, np.ndarray]:
    d = Path(root)
    files = [d / f"{p}-{k}" for p in ("train", "t10k") for k in ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz")]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST not found at {d} (missing {', '.join(missing)}): install the Debian package "
            "dataset-fashion-mnist (sudo apt-get install dataset-fashion-mnist) or set SYNSCALE_FMNIST_DIR"
        )
    imgs = [_read_idx(files[i], 16).reshape(-1, 28, 28) for i in (0, 2)]
    labels = [_read_idx(files[i], 8).astype(np.int64) for i in (1, 3)]
    x = np.pad(np.concatenate(imgs), ((0, 0), (PAD, PAD), (PAD, PAD)))
    x.setflags(write=False)
    y = np.concatenate(labels)
    y.setflags(write=False)
    return x, y


def load_fmnist() -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 images (uint8 [N, 32, 32], read-only) and labels (int64 [N])."""
    return _load(str(fmnist_dir()))


@dataclass(frozen=True)
class SplitSizes:
    pool: int = 40_000
    train: int = 10_000
    heldout: int = 10_000
    val: int = 5_000
    v2: int = 5_000

    def check(self) -> None:
        if self.pool + self.train + self.heldout > 60_000 or self.val + self.v2 > 10_000:
            raise ValueError(f"split sizes {self} exceed Fashion-MNIST (pool+train+heldout <= 60000, val+v2 <= 10000)")


def make_splits(seed: int = 0, sizes: SplitSizes = SplitSizes()) -> dict[str, np.ndarray]:
    """Deterministic, disjoint index arrays per split (same seed ⇒ same indices)."""
    sizes.check()
    rng = np.random.default_rng(seed)
    tr = rng.permutation(60_000)
    te = 60_000 + rng.permutation(10_000)
    a, b = sizes.pool, sizes.pool + sizes.train
    return {
        "pool": tr[:a],
        "train": tr[a:b],
        "heldout": tr[b : b + sizes.heldout],
        "val": te[: sizes.val],
        "v2": te[sizes.val : sizes.val + sizes.v2],
    }


# -- OOD constructions --------------------------------------------------------------------------------------
def _sobel(x: np.ndarray) -> np.ndarray:
    """Gradient magnitude of float images [N, H, W] (3×3 Sobel, edge-padded)."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
    gx = (p[:, :-2, 2:] + 2 * p[:, 1:-1, 2:] + p[:, 2:, 2:]) - (p[:, :-2, :-2] + 2 * p[:, 1:-1, :-2] + p[:, 2:, :-2])
    gy = (p[:, 2:, :-2] + 2 * p[:, 2:, 1:-1] + p[:, 2:, 2:]) - (p[:, :-2, :-2] + 2 * p[:, :-2, 1:-1] + p[:, :-2, 2:])
    return np.hypot(gx, gy)


def sketch(images: np.ndarray) -> np.ndarray:
    """ImageNet-Sketch analog: outline drawings. Edges of the image (Sobel magnitude, per-image normalised,
    thresholded to strokes), bright lines on the dark background: shape survives, fill and texture are gone."""
    g = _sobel(images.astype(np.float32) / 255.0)
    g /= g.max(axis=(1, 2), keepdims=True) + 1e-6
    strokes = np.clip((g - 0.15) / 0.35, 0.0, 1.0)
    return (strokes * 255).round().astype(np.uint8)


RENDITION_STYLES = ("negative", "cartoon", "silhouette", "stripes", "painting")


def _blur(x: np.ndarray) -> np.ndarray:
    k = np.array([1, 4, 6, 4, 1], np.float32) / 16
    x = np.pad(x, ((0, 0), (2, 2), (0, 0)), mode="edge")
    x = sum(k[i] * x[:, i : i + x.shape[1] - 4] for i in range(5))
    x = np.pad(x, ((0, 0), (0, 0), (2, 2)), mode="edge")
    return sum(k[i] * x[:, :, i : i + x.shape[2] - 4] for i in range(5))


def rendition(images: np.ndarray, styles: np.ndarray, seed: int = 0) -> np.ndarray:
    """ImageNet-R analog: the same objects in other renditions. ``styles[i]`` indexes RENDITION_STYLES:
    negative (inverted tones), cartoon (3 flat tones + dark outline), silhouette (flat fill of the shape),
    stripes (the shape filled with a stripe texture, like embroidery/graffiti), painting (blurred, noisy strokes)."""
    x = images.astype(np.float32) / 255.0
    mask = (x > 0.08).astype(np.float32)
    out = np.empty_like(x)
    rng = np.random.default_rng(seed)
    yy = np.arange(x.shape[1], dtype=np.float32)[None, :, None]
    xx = np.arange(x.shape[2], dtype=np.float32)[None, None, :]
    for s, name in enumerate(RENDITION_STYLES):
        sel = styles == s
        if not sel.any():
            continue
        xi, mi = x[sel], mask[sel]
        if name == "negative":
            r = 1.0 - xi
        elif name == "cartoon":
            flat = np.round(xi * 2) / 2
            edges = _sobel(mi) > 0.5
            r = np.where(edges, 0.15, flat)
        elif name == "silhouette":
            r = 0.85 * mi
        elif name == "stripes":
            stripes = 0.5 + 0.5 * np.sign(np.sin((yy + xx) * 1.2))
            r = mi * (0.35 + 0.6 * stripes)
        else:  # painting
            noise = rng.normal(0, 0.08, xi.shape).astype(np.float32)
            r = _blur(_blur(xi)) + noise * mi
        out[sel] = r
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
