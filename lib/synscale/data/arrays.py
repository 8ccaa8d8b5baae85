"""Lazy, read-only image arrays: images are decoded when indexed, so paper-scale sets never sit in memory.

At paper scale a training set is up to 4M generated images (256 px RGB, ~0.8 TB decoded) or ImageNet-train; the
trainer only ever needs a batch. Every array here answers ``len(x)``, ``x.shape``, ``x[i]`` (one uint8 image),
``x[a:b]`` and ``x[index_array]`` (stacked uint8), ``x.key()`` (names the images for caches keyed by content,
:func:`content_key`) and ``x.take(idx)`` (a lazy selection), and pickles small (DataLoader workers).

- :func:`iter_samples` / :func:`scan_shards`: one pass over shard headers (sample by sample, or all at once).
- :class:`ShardImages`: the images of a generated set's webdataset shards, read by random access at their tar
  offsets (one scan of the tar headers; the shards stay webdataset's format, written by ``webdataset.TarWriter``).
  webdataset's own random-access reader, ``wids``, prints on every open and copies shards into a cache folder;
  the 40 lines here do what this study needs without either.
- :class:`Concat`: several arrays end to end (the chunks of a synthetic training set).
- :class:`Take`: a selection of another array (a nested training subset).
- :class:`Squared`: another array's images resized and centre-cropped to one square size (web images).
- ``synscale.data.world.folder.ImageFiles``: image files on disk (ImageNet by folder).
"""
from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np


class LazyImages:
    """Base class: subclasses give ``__len__``, ``_read(i)`` (one uint8 image), ``item_shape`` and ``key()``."""

    item_shape: tuple[int, ...]

    def __len__(self) -> int:
        raise NotImplementedError

    def _read(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def key(self) -> str:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.item_shape)

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)):
            i = int(idx) + (len(self) if idx < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"index {int(idx)} out of range for {len(self)} images")
            return self._read(i)
        if isinstance(idx, slice):
            picked = range(len(self))[idx]
        else:
            picked = np.asarray(idx)
            picked = np.flatnonzero(picked) if picked.dtype == bool else picked.reshape(-1)
        if len(picked) == 0:
            return np.zeros((0, *self.item_shape), np.uint8)
        return np.stack([self[int(i)] for i in picked])

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out.astype(dtype) if dtype is not None else out

    def take(self, idx) -> Take:
        return Take(self, np.asarray(idx, dtype=np.int64))


def take(images, idx):
    """``images[idx]``, lazily for a lazy array (a view), eagerly for a numpy array."""
    return images.take(idx) if isinstance(images, LazyImages) else images[idx]


def _hash(*parts: str) -> str:
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


class Take(LazyImages):
    def __init__(self, base, idx: np.ndarray):
        self.base, self.idx = base, idx
        self.item_shape = tuple(base.shape[1:])

    def __len__(self) -> int:
        return len(self.idx)

    def _read(self, i: int) -> np.ndarray:
        return self.base[int(self.idx[i])]

    def key(self) -> str:
        return _hash(self.base.key(), hashlib.sha1(self.idx.tobytes()).hexdigest())


class Concat(LazyImages):
    def __init__(self, parts: list):
        shapes = {tuple(p.shape[1:]) for p in parts}
        if len(shapes) != 1:
            raise ValueError(f"cannot concatenate image arrays of different image shapes {sorted(shapes)}")
        self.parts = list(parts)
        self.item_shape = shapes.pop()
        self.ends = np.cumsum([len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def _read(self, i: int) -> np.ndarray:
        k = int(np.searchsorted(self.ends, i, side="right"))
        return self.parts[k][i - (int(self.ends[k - 1]) if k else 0)]

    def key(self) -> str:
        return _hash(*(content_key(p) for p in self.parts))


def square(im, size: int) -> np.ndarray:
    """A PIL image as uint8 RGB ``[size, size, 3]``: shorter side resized bicubically to ``size``, centre crop."""
    from PIL import Image

    im = im.convert("RGB")
    w, h = im.size
    s = size / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BICUBIC)
    left, top = (im.width - size) // 2, (im.height - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)))


class Squared(LazyImages):
    """Another array's images at one size (:func:`square`): web images of any shape (LAION) stack into batches."""

    def __init__(self, base, size: int):
        self.base, self.size = base, int(size)
        self.item_shape = (self.size, self.size, 3)

    def __len__(self) -> int:
        return len(self.base)

    def _read(self, i: int) -> np.ndarray:
        from PIL import Image

        return square(Image.fromarray(self.base[i]), self.size)

    def key(self) -> str:
        return _hash(content_key(self.base), f"square{self.size}")


IMAGE_EXTS = ("png", "jpg", "jpeg", "webp")


def iter_samples(urls: list[str]):
    """One pass over the tar headers of webdataset shards, one item per sample (consecutive members sharing a key):
    ``(shard, image, small)`` with ``image`` = (byte offset, size) of its ``png``/``jpg``/``jpeg``/``webp`` member
    (None if it has none) and ``small[ext]`` the raw bytes of its other members (``cls``, ``txt``, ``json``).
    Images are never read: a caller streaming over LAION keeps what it needs of each sample and drops the rest.
    Members are grouped into samples by webdataset's own key rule (``base_plus_ext``: the extension starts at the
    file name's first dot), as webdataset and open_clip read the same shards."""
    for s, _, image, small in iter_keyed_samples(urls):
        yield s, image, small


def iter_keyed_samples(urls: list[str]):
    """:func:`iter_samples` with each sample's key: ``(shard, key, image, small)``."""
    from webdataset.tariterators import base_plus_ext

    for s, url in enumerate(urls):
        with tarfile.open(url) as tf:
            key, image, small = None, None, {}
            for m in tf:
                if not m.isfile():
                    continue
                k, ext = base_plus_ext(m.name)
                k, ext = (m.name, "") if k is None else (k, ext.lower())  # no extension: a sample of its own
                if k != key:
                    if key is not None:
                        yield s, key, image, small
                    key, image, small = k, None, {}
                if ext in IMAGE_EXTS:
                    image = (m.offset_data, m.size)
                else:
                    small[ext] = tf.extractfile(m).read()
            if key is not None:
                yield s, key, image, small


def scan_shards(urls: list[str], limit: int | None = None) -> tuple[np.ndarray, dict[str, list[bytes]]]:
    """All samples of webdataset shards (:func:`iter_samples`): ``(offsets, small)`` where ``offsets[k]`` = (shard,
    byte offset, size) of sample k's image (generated sets and LAION's img2dataset shards alike) and ``small[ext]``
    the raw bytes of the samples' other members, in sample order. ``limit``: stop after the shard in which the
    ``limit``-th image lies."""
    offsets, small = [], {}
    for s, image, parts in iter_samples(urls):
        if limit is not None and len(offsets) >= limit and (not offsets or s != offsets[-1][0]):
            break
        if image is not None:
            offsets.append((s, *image))
        for ext, data in parts.items():
            small.setdefault(ext, []).append(data)
    return np.asarray(offsets, dtype=np.int64).reshape(-1, 3), small


class EncodedImages(LazyImages):
    """Base of arrays of encoded images (PNG, JPEG members of shards): the image shape is the first image's, read
    once; :meth:`decode` turns a member's bytes into uint8 (greyscale or RGB)."""

    _item_shape: tuple[int, ...] | None = None

    @property
    def item_shape(self) -> tuple[int, ...]:
        if self._item_shape is None:
            self._item_shape = self._read(0).shape if len(self) else (0, 0)
        return self._item_shape

    @staticmethod
    def decode(data: bytes) -> np.ndarray:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im if im.mode in ("L", "RGB") else im.convert("RGB"))


class ShardImages(EncodedImages):
    """The images of webdataset shards in sample order, decoded (uint8, greyscale or RGB) on access."""

    def __init__(self, urls: list[str], offsets: np.ndarray):
        self.urls, self.offsets = [str(u) for u in urls], offsets

    def __len__(self) -> int:
        return len(self.offsets)

    def _read(self, i: int) -> np.ndarray:
        s, off, size = (int(v) for v in self.offsets[i])
        with open(self.urls[s], "rb") as f:
            f.seek(off)
            return self.decode(f.read(size))

    def key(self) -> str:
        return _hash(*self.urls, str(len(self)))


def content_key(images: np.ndarray) -> str:
    """16 hex digits naming an array's bytes: caches keyed by it never serve stale results for other images.
    A lazy image array (``synscale.data.arrays``) names itself by its files instead of decoding them."""
    if hasattr(images, "key"):
        return images.key()
    return hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]


def nested_order(labels: np.ndarray) -> np.ndarray:
    """An order of the samples whose every prefix is class-balanced and contains every shorter prefix.

    Round-robin over classes in each class's own sample order, so a training set of size n is the first n of this
    order and the sets of a scaling curve are nested (each smaller set is a subset of the larger)."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(len(idx))
    return np.lexsort((labels, rank))
