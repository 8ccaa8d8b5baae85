"""Training data of the CLIP studies (notebooks 06 and 08) in the form their trainer takes: image arrays in memory for
synscale's own trainer (``trainer: synscale``, mini world), exact-sample webdataset shards for open_clip's
(``trainer: open_clip``, the paper path). A notebook picks its trainer once; every ``take`` below answers
``(images or shard paths, captions)`` for it, so no notebook cell branches on the trainer."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synscale.data.shards import Pairs, mini_pool, read_pairs, select_pairs, subset_shards
from synscale.methods import generate
from synscale.runtime.paths import cache_dir

TRAINERS = ("synscale", "open_clip")


def _check(trainer: str) -> None:
    if trainer not in TRAINERS:
        raise ValueError(f"trainer must be 'synscale' (in memory, mini world) or 'open_clip' (shards), got {trainer!r}")


def _scratch() -> Path:
    return cache_dir() / "open_clip" / "subsets"


@dataclass
class CaptionPool:
    """The first pairs of a real captioned pool: the mini world's (``world.split("pool")``) or (jpg, txt) shards
    (LAION-400M, CC3M/CC12M)."""

    captions: list[str]
    images: Any                       # uint8 array (mini world) or lazy shard images: what figures show
    labels: np.ndarray | None = None  # the mini world's class of each pool image (None for a shard pool)
    pairs: Pairs | None = None        # the shards open_clip reads (the mini pool written once); None: in memory

    def take(self, n: int) -> tuple[Any, Sequence[str]]:
        """The first ``n`` pairs: ``(images, captions)`` in memory, or ``(shard paths, captions)`` holding exactly
        them (open_clip trains with ``--train-num-samples n``; the captions stay a lazy view of the shards')."""
        if self.pairs is None:
            return self.images[:n], list(self.captions[:n])
        return subset_shards(self.pairs.urls, self.pairs.sizes, n, _scratch()), self.captions[:n]


def caption_pool(world, n: int, trainer: str, shards: str = "", seed: int = 0) -> CaptionPool:
    """The first ``n`` pairs of ``shards`` (a folder or brace pattern; only the shards holding them are read), or of
    the mini world's pool when ``shards`` is empty (written once as (png, txt) shards for ``trainer: open_clip``)."""
    _check(trainer)
    if shards:
        pairs = read_pairs(shards, n)
        return CaptionPool(pairs.captions, pairs.images, None, pairs)
    x, y = world.split("pool", n)
    captions = world.captions("pool", n)
    return CaptionPool(captions, x, y, mini_pool(x, captions, seed) if trainer == "open_clip" else None)


@dataclass
class GeneratedSet:
    """A generated set of one image per caption (``generate.ensure_set``'s folder) read for the trainer: decoded
    into memory for synscale's trainer, left in its shards for open_clip's. The shards' sample counts come from the
    set's index (written with it), so taking a prefix reads no tar header; images for figures are indexed lazily."""

    out: Path
    trainer: str
    prefix_n: int = 0
    _images: Any = field(default=None, repr=False)

    @classmethod
    def read(cls, out: Path, trainer: str, prefix_n: int = 0) -> GeneratedSet:
        """``prefix_n`` > 0 (open_clip): the first ``prefix_n`` samples are what :meth:`take` may cut."""
        _check(trainer)
        images = generate.read_dataset(out).images if trainer == "synscale" else None
        if trainer == "open_clip":
            generate.shard_urls(out)  # a damaged set is a one-line error now, not when a job reads it
        return cls(Path(out), trainer, prefix_n if trainer == "open_clip" else 0, images)

    @property
    def images(self) -> Any:
        """In memory, or lazy (the prefix's, else the whole set's; indexed on first use): what figures show."""
        if self._images is None:
            urls = generate.shard_urls(self.out)
            self._images = read_pairs(urls, self.prefix_n or sum(self._sizes())).images
        return self._images

    def _sizes(self) -> list[int]:
        return [int(r["samples"]) for r in generate.read_index(self.out)["shard_records"]]

    def take(self, n: int) -> Any:
        """The images of the first ``n`` captions: an array, or shard paths holding exactly those samples."""
        if self.trainer == "synscale":
            return self.images[:n]
        if n > self.prefix_n:
            raise ValueError(f"{self.out}: read with prefix_n >= {n} to take its first {n} samples for open_clip")
        return subset_shards(generate.shard_urls(self.out), self._sizes(), n, _scratch())

    def rows(self, rows: Sequence[int]) -> Any:
        """The images at sample positions ``rows`` (a subset that is not a prefix): an array, or shards holding
        them in sample order (written once)."""
        if self.trainer == "synscale":
            return self.images[list(rows)]
        return select_pairs(generate.shard_urls(self.out), rows, cache_dir() / "shards" / "select")

    def all(self) -> Any:
        """Every image: the array, or the set's shards."""
        return self.images if self.trainer == "synscale" else generate.shard_urls(self.out)


def concat(a: Any, b: Any) -> Any:
    """Two training sets' images one after the other: arrays stacked, shard lists joined."""
    return np.concatenate([a, b]) if isinstance(a, np.ndarray) else list(a) + list(b)
