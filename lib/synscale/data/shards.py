"""(image, caption) webdataset shards: the upstream pools CLIP trains on with open_clip's trainer (paper scale).

LAION-400M comes as img2dataset shards (``00000.tar`` …: ``jpg``, ``txt``, ``json`` per sample); generated sets
are shards too (``synscale.methods.generate``: ``png``, ``txt``, ``cls``, ``json``). This module lists them, reads the
first ``n`` pairs (lazy images + captions), writes the mini world's pool in the same format, and cuts exact
``n``-sample prefixes for open_clip's ``--train-data`` (whole shards, plus a trimmed copy of the last one).
"""
from __future__ import annotations

import glob
import hashlib
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synscale.data.arrays import LazyImages, iter_samples
from synscale.data.samples import Captions, IndexedImages, SampleIndex
from synscale.runtime.paths import cache_dir, expand_path


def brace(urls: Sequence[str]) -> list[str]:
    """Shard paths folded into brace patterns (``d/{00000..00099}.tar``), one per run of consecutive numbers.

    open_clip's ``--train-data`` is one command-line argument ("::"-joined sources), and Linux caps one argument at
    128 kB: LAION-400M's 41k shard paths would not fit, their patterns do."""
    import re

    out: list[list] = []  # [prefix, first, last, width, suffix]
    for u in urls:
        m = re.fullmatch(r"(.*?)(\d+)(\.[^/]*)", str(u))
        if m is None:
            out.append([str(u), None, None, 0, ""])
            continue
        pre, num, suf = m.group(1), m.group(2), m.group(3)
        last = out[-1] if out else None
        if last and last[1] is not None and (last[0], last[3], last[4]) == (pre, len(num), suf) \
                and int(num) == last[2] + 1:
            last[2] = int(num)
        else:
            out.append([pre, int(num), int(num), len(num), suf])
    return [pre if first is None else f"{pre}{first:0{w}d}{suf}" if first == last
            else f"{pre}{{{first:0{w}d}..{last:0{w}d}}}{suf}" for pre, first, last, w, suf in out]


def list_shards(spec: str | Path) -> list[str]:
    """Shard paths of a folder (its ``*.tar``, sorted) or of a brace / glob pattern (``d/{00000..41407}.tar``)."""
    import braceexpand


    spec = expand_path(str(spec))
    if Path(spec).is_dir():
        urls = sorted(str(p) for p in Path(spec).glob("*.tar"))
    else:
        urls = [u for pattern in braceexpand.braceexpand(spec) for u in sorted(glob.glob(pattern)) or [pattern]]
        urls = [u for u in urls if Path(u).is_file()]
    if not urls:
        raise FileNotFoundError(f"no webdataset shards at {spec}: give a folder of .tar shards or a brace pattern "
                                f"such as ~/data/laion400m/{{00000..41407}}.tar")
    return urls


@dataclass
class Pairs:
    """The first ``len(captions)`` (image, caption) pairs of ``urls``: lazy images, lazy captions (a Parquet-backed
    ``Sequence[str]``, :mod:`synscale.data.samples`), samples per shard."""

    urls: list[str]
    sizes: np.ndarray
    images: LazyImages
    captions: Sequence[str]


def read_pairs(spec: str | Path | Sequence[str], n: int) -> Pairs:
    """The first ``n`` pairs of shards (a folder, a pattern or a list of paths). Only the shards holding them are
    indexed (:class:`~synscale.data.samples.SampleIndex`: one pass over their tar headers, the first time only);
    images and captions stay on disk until indexed, so memory does not grow with ``n``."""
    urls = list(spec) if isinstance(spec, (list, tuple)) else list_shards(spec)
    index = SampleIndex(urls, limit=n)
    no_image, no_caption = index.missing("offset", n), index.missing("caption", n)
    if len(index) < n or no_image or no_caption:
        raise ValueError(f"{min(len(index), n) - no_image} images and {min(len(index), n) - no_caption} captions "
                         f"in the first {min(len(index), n)} samples of {len(urls)} shards at {urls[0]}…: need {n} "
                         "pairs (one image and one .txt per sample): lower the scales or add shards")
    used = int(index.locate(n - 1)[0]) + 1
    sizes = index.counts[:used].copy()
    return Pairs(index.urls[:used], sizes, IndexedImages(index, n), Captions(index, 0, n))


def write_pairs(images: np.ndarray, captions: Sequence[str], out: Path | str, shard_size: int = 1000) -> list[str]:
    """Write (uint8 image, caption) pairs as ``png`` + ``txt`` webdataset shards under ``out`` (skipped when the
    shards are there with as many samples); returns their paths."""
    import webdataset as wds

    out = Path(out)
    n = len(images)
    if len(captions) != n:
        raise ValueError(f"{n} images but {len(captions)} captions")
    urls = [str(out / f"{j:05d}.tar") for j in range(-(-n // shard_size))]
    done = out / f"complete-{n}"
    if done.exists():
        return urls
    out.mkdir(parents=True, exist_ok=True)
    for j, url in enumerate(urls):
        tmp = f"{url}.{os.getpid()}.tmp"  # parallel runs never write one temporary file
        with wds.TarWriter(tmp, mtime=0.0) as w:
            for i in range(j * shard_size, min(n, (j + 1) * shard_size)):
                # webdataset encodes the uint8 array as PNG, as generate's shards are written
                w.write({"__key__": f"{i:09d}", "png": np.asarray(images[i]), "txt": str(captions[i])})
        Path(tmp).replace(url)
    done.touch()
    return urls


def mini_pool(images: np.ndarray, captions: Sequence[str], seed: int) -> Pairs:
    """The mini world's first ``len(images)`` pool pairs as (png, txt) shards for open_clip's trainer: written once
    under the cache (``shards/mini_pool_s<seed>_<n>``), read back as :class:`Pairs`."""
    n = len(images)
    return read_pairs(write_pairs(images, captions, cache_dir() / "shards" / f"mini_pool_s{seed}_{n}"), n)


def member_key(m: tarfile.TarInfo) -> str | None:
    """The sample a tar member belongs to, by webdataset's own key rule (``base_plus_ext``: the name up to the first
    dot of its file name, folders and a ``./`` prefix kept: ``./000001.jpg`` -> ``./000001``, ``a.b/000002.jpg``
    -> ``a.b/000002``), counted as :func:`synscale.data.arrays.iter_samples` counts samples (a file without an
    extension is a sample of its own). ``None`` for a member that is not a file (a folder, a link): no sample."""
    from webdataset.tariterators import base_plus_ext

    if not m.isfile():
        return None
    k, _ = base_plus_ext(m.name)
    return m.name if k is None else k


def subset_shards(urls: Sequence[str], sizes: Sequence[int], n: int, scratch: Path | str) -> list[str]:
    """Shards holding exactly the first ``n`` samples of ``urls`` (``sizes[i]`` samples in shard ``i``): the whole
    shards before the ``n``-th sample, then, unless ``n`` ends on a shard boundary, a copy of the last one trimmed
    to the samples needed (written once under ``scratch``). open_clip trains on them with ``--train-num-samples n``.
    """
    ends = np.cumsum(np.asarray(sizes, dtype=np.int64))
    if n <= 0 or not len(ends) or n > ends[-1]:
        raise ValueError(f"cannot take {n} samples from shards holding {int(ends[-1]) if len(ends) else 0}")
    k = int(np.searchsorted(ends, n))
    if ends[k] == n:
        return list(urls[:k + 1])
    keep = n - (int(ends[k - 1]) if k else 0)
    tag = hashlib.sha1(str(Path(urls[k]).resolve()).encode()).hexdigest()[:10]  # one scratch for many pools
    cut = Path(scratch) / f"{Path(urls[k]).stem}-{tag}-first{keep}.tar"
    if not cut.exists():
        cut.parent.mkdir(parents=True, exist_ok=True)
        tmp = cut.with_name(f".{cut.name}.{os.getpid()}.tmp")
        with tarfile.open(urls[k]) as src, tarfile.open(tmp, "w") as dst:
            key, count = None, 0
            for m in src:  # a sample is the consecutive members sharing a key (member_key)
                mk = member_key(m)  # not k: that is the shard index
                if mk is not None and mk != key:
                    key, count = mk, count + 1
                    if count > keep:
                        break
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        tmp.replace(cut)
    return list(urls[:k]) + [str(cut)]


def reshard(urls: Sequence[str], k: int, scratch: Path | str) -> list[str]:
    """``urls`` as at least ``k`` shards (their samples in order, bytes as they are, under ``scratch/k<k>/…``):
    open_clip gives each of its ranks × workers whole shards, so a small set (the rehearsal's) needs as many.
    ``urls`` when it has enough already."""
    if len(urls) >= k:
        return list(urls)
    total = sum(1 for _ in iter_samples([str(u) for u in urls]))
    return select_pairs(urls, range(total), Path(scratch) / f"k{k}", shard_size=max(1, -(-total // k)))


def select_pairs(urls: Sequence[str], rows: Sequence[int], scratch: Path | str, shard_size: int = 10000
                 ) -> list[str]:
    """Copy the samples at positions ``rows`` of ``urls`` (every member of each, bytes as they are) into new
    shards under ``scratch/<hash of urls and rows>``, in source order: a subset that is not a prefix (SynthCLIP's
    balanced samples of one generated caption pool) as open_clip's ``--train-data``. Written once."""
    want = np.unique(np.asarray(rows, dtype=np.int64))
    h = hashlib.sha1("\n".join(str(Path(u).resolve()) for u in urls).encode() + want.tobytes()).hexdigest()[:16]
    out = Path(scratch) / h
    urls_out = [str(out / f"{j:05d}.tar") for j in range(-(-len(want) // shard_size))]
    done = out / f"complete-{len(want)}"
    if done.exists():
        return urls_out
    out.mkdir(parents=True, exist_ok=True)
    wanted, pos, written, dst = set(want.tolist()), -1, 0, None
    for url in urls:
        with tarfile.open(url) as src:
            key = None  # samples never span shards (iter_samples, which numbers the rows)
            for m in src:
                k = member_key(m)
                if k is not None and k != key:
                    key, pos = k, pos + 1
                    if pos in wanted:
                        if written % shard_size == 0:
                            if dst is not None:
                                dst.close()
                            dst = tarfile.open(out / f".{written // shard_size:05d}.tar.{os.getpid()}.tmp", "w")
                        written += 1
                if pos in wanted:
                    dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        if written == len(want) and pos >= want[-1]:
            break
    if dst is not None:
        dst.close()
    if written != len(want):
        raise ValueError(f"rows up to {int(want[-1])} asked, but the shards hold {pos + 1} samples")
    for j in range(len(urls_out)):
        (out / f".{j:05d}.tar.{os.getpid()}.tmp").replace(urls_out[j])
    done.touch()
    return urls_out
