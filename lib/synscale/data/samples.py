"""The sample index of webdataset shards, in Parquet: what a pool of 371M or 2B samples needs to be read lazily.

A pool's shards are read once, shard by shard, and each shard's samples become one small Parquet file: the sample
``key``, the byte ``offset`` and ``size`` of its image member (``-1`` when it has none) and its caption (``txt``;
null when it has none). The file lives under the cache (``<cache>/sample_index/``), named by the shard's resolved
path, size and modification time, so a read-only LAION folder stays untouched and a rewritten shard is indexed
again. From then on nothing reads the tar headers again:

- :class:`SampleIndex` knows every shard's sample count from the Parquet footers alone (no data read) and reads a
  shard's columns only when a sample of it is asked for (one shard's columns are kept, the last one read).
- :class:`Captions` is a lazy ``Sequence[str]`` over it: slices are views, iteration streams shard by shard, and
  :meth:`Captions.fingerprint` hashes in chunks. A caption pool is never a Python list of the whole.
- :class:`IndexedImages` decodes a sample's image at its offset (``arrays.LazyImages``): images of a 371M pool are
  read only when indexed, and their offsets stay in the Parquet files, not in one ``[N, 3]`` array.

Memory is one shard's columns at a time, whatever the pool's size (``benchmarks/scale.py`` measures it at N and
16·N). Building an index is one pass over the tar headers (what ``arrays.iter_samples`` reads); img2dataset shards of
10,000 samples give files of about 1 MB.
"""
from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from synscale.data.arrays import EncodedImages, _hash, iter_keyed_samples
from synscale.runtime.paths import cache_dir

VERSION = 1
COLUMNS = ("key", "offset", "size", "caption")


def _release() -> None:
    """Hand Arrow's freed buffers back to the system: its allocator otherwise keeps the high-water mark of every
    shard read, and a pass over 41k shards would look like growth (measured in ``benchmarks/scale.py``)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def index_file(url: str | Path) -> Path:
    """Where shard ``url``'s sample index is (or will be): keyed by its resolved path, size and mtime."""
    p = Path(url).resolve()
    st = p.stat()
    h = hashlib.sha1(f"{VERSION}\n{p}\n{st.st_size}\n{st.st_mtime_ns}".encode()).hexdigest()[:20]
    return cache_dir() / "sample_index" / h[:2] / f"{h}.parquet"


def index_shard(url: str | Path) -> Path:
    """Shard ``url``'s sample index, written the first time (one pass over its tar headers, written atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = index_file(url)
    if out.exists():
        return out
    keys, offsets, sizes, captions = [], [], [], []
    for _, key, image, small in iter_keyed_samples([str(url)]):
        keys.append(key)
        offsets.append(image[0] if image else -1)
        sizes.append(image[1] if image else -1)
        txt = small.get("txt")
        captions.append(None if txt is None else txt.decode("utf-8", errors="replace").strip())
    table = pa.table({"key": pa.array(keys, pa.string()), "offset": pa.array(offsets, pa.int64()),
                      "size": pa.array(sizes, pa.int64()), "caption": pa.array(captions, pa.string())})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.parquet")
    pq.write_table(table, tmp, row_group_size=max(1, len(keys)))
    os.replace(tmp, out)
    return out


class SampleIndex:
    """The samples of shards ``urls`` in order, known from their Parquet indexes (:func:`index_shard`).

    ``limit``: index shards only until ``limit`` samples are covered (a prefix of a 41k-shard pool reads only the
    shards it needs). ``counts[s]`` is shard ``s``'s sample count, from its file's footer."""

    def __init__(self, urls: Sequence[str | Path], limit: int | None = None):
        import pyarrow.parquet as pq

        self.urls, self.files, counts = [], [], []
        for u in urls:
            if limit is not None and sum(counts) >= limit:
                break
            f = index_shard(u)
            self.urls.append(str(u))
            self.files.append(str(f))
            counts.append(pq.read_metadata(f).num_rows)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.ends = np.cumsum(self.counts)
        self._shard, self._cols = -1, {}

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def __getstate__(self) -> dict:  # DataLoader workers get the file names, not the columns held
        return {**self.__dict__, "_shard": -1, "_cols": {}}

    def locate(self, i: int) -> tuple[int, int]:
        """(shard, row in it) of sample ``i``."""
        s = int(np.searchsorted(self.ends, i, side="right"))
        return s, i - (int(self.ends[s - 1]) if s else 0)

    def shard_columns(self, s: int, names: Sequence[str] = COLUMNS) -> dict[str, np.ndarray | list]:
        """Shard ``s``'s columns ``names`` (``key`` and ``caption`` as lists, ``offset`` and ``size`` as arrays),
        each read once and kept until another shard is read."""
        if s != self._shard:
            self._shard, self._cols = s, {}
        missing = [n for n in names if n not in self._cols]
        if missing:
            import pyarrow.parquet as pq

            t = pq.read_table(self.files[s], columns=missing, use_threads=False)  # one shard: threads only add arenas
            for n in missing:
                col = t.column(n)
                self._cols[n] = col.to_numpy() if n in ("offset", "size") else col.to_pylist()
            del t, col
            _release()
        return self._cols

    def column_batches(self, name: str, start: int = 0, stop: int | None = None) -> Iterator[list | np.ndarray]:
        """Column ``name`` of samples ``start:stop``, one shard's part at a time (never the whole)."""
        stop = len(self) if stop is None else min(stop, len(self))
        i = start
        while i < stop:
            s, r = self.locate(i)
            take = min(int(self.counts[s]) - r, stop - i)
            yield self.shard_columns(s, (name,))[name][r:r + take]
            i += take

    def missing(self, name: str, stop: int | None = None) -> int:
        """How many of the first ``stop`` samples have no ``name`` (image: offset -1; caption: null). Shards whose
        footer statistics say none is missing (every img2dataset shard) are not read."""
        import pyarrow.parquet as pq

        stop = len(self) if stop is None else min(stop, len(self))
        n, start = 0, 0
        for s, f in enumerate(self.files):
            if start >= stop:
                break
            rows = min(int(self.counts[s]), stop - start)
            meta = pq.read_metadata(f)
            col = meta.schema.names.index(name)
            stats = [meta.row_group(g).column(col).statistics for g in range(meta.num_row_groups)]
            clean = all(st is not None and st.has_null_count and st.null_count == 0
                        and (name not in ("offset", "size") or (st.has_min_max and st.min >= 0)) for st in stats)
            if not clean:
                part = self.shard_columns(s, (name,))[name][:rows]
                n += int((np.asarray(part) < 0).sum()) if name in ("offset", "size") else sum(c is None for c in part)
            start += rows
        return n


class Captions(Sequence):
    """Captions ``start:stop`` of a :class:`SampleIndex`, read lazily: ``c[i]`` reads shard of ``i``'s column once,
    ``c[a:b]`` is a view, ``iter(c)`` streams shard by shard, :meth:`fingerprint` hashes in chunks."""

    def __init__(self, index: SampleIndex, start: int = 0, stop: int | None = None):
        self.index, self.start = index, start
        self.stop = len(index) if stop is None else min(stop, len(index))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i):
        if isinstance(i, slice):
            a, b, step = i.indices(len(self))
            if step != 1:
                return [self[j] for j in range(a, b, step)]
            return Captions(self.index, self.start + a, self.start + max(a, b))
        i = int(i) + (len(self) if i < 0 else 0)
        if not 0 <= i < len(self):
            raise IndexError(f"caption {i} out of range for {len(self)}")
        s, r = self.index.locate(self.start + i)
        return self.index.shard_columns(s, ("caption",))["caption"][r]

    def __iter__(self) -> Iterator[str]:
        for part in self.index.column_batches("caption", self.start, self.stop):
            yield from part

    def __repr__(self) -> str:
        return f"Captions({len(self):,} of {len(self.index.urls)} shards)"

    def __add__(self, other: Sequence[str]) -> list[str]:  # a run's captions joined with others (08's mixed run):
        return [*self, *other]                               # a list of those two, as with lists before

    def __radd__(self, other: Sequence[str]) -> list[str]:
        return [*other, *self]

    def fingerprint(self) -> str:
        """sha256 of the captions joined by newlines (the digest of ``"\\n".join(captions)``), in chunks."""
        return chunked_sha256(self)


def chunked_sha256(texts: Sequence[str] | Iterator[str]) -> str:
    """``hashlib.sha256("\\n".join(texts).encode()).hexdigest()`` without building the joined string."""
    h = hashlib.sha256()
    first = True
    buf = io.StringIO()
    for t in texts:
        if not first:
            buf.write("\n")
        buf.write(t)
        first = False
        if buf.tell() > 1 << 20:
            h.update(buf.getvalue().encode())
            buf = io.StringIO()
    h.update(buf.getvalue().encode())
    return h.hexdigest()


class IndexedImages(EncodedImages):
    """The images of samples ``rows`` (default: all) of a :class:`SampleIndex`, decoded at their tar offsets when
    indexed; offsets are read from the index's Parquet files, a shard at a time."""

    def __init__(self, index: SampleIndex, stop: int | None = None):
        self.index = index
        self.n = len(index) if stop is None else min(stop, len(index))
        self._file = (-1, None)  # the open shard (read in order, one shard after another: one open per shard)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": (-1, None)}

    def __len__(self) -> int:
        return self.n

    def _read(self, i: int) -> np.ndarray:
        s, r = self.index.locate(i)
        cols = self.index.shard_columns(s, ("offset", "size"))
        off, size = int(cols["offset"][r]), int(cols["size"][r])
        if off < 0:
            raise ValueError(f"sample {r} of {self.index.urls[s]} has no image")
        if self._file[0] != s:
            if self._file[1] is not None:
                self._file[1].close()
            self._file = (s, open(self.index.urls[s], "rb"))
        f = self._file[1]
        f.seek(off)
        return self.decode(f.read(size))

    def key(self) -> str:  # as ShardImages names the same shards' images: caches keyed by it stay valid
        return _hash(*self.index.urls, str(self.n))


class ParquetColumn(Sequence):
    """One column of a Parquet file as a lazy sequence: ``c[i]`` and ``c[a:b]`` read only the row groups they
    touch (the last one read is kept), iteration streams row group by row group. Slices of a numeric column are
    numpy arrays, of a string column lists. A generation rank reading its shards' prompts reads only their rows."""

    def __init__(self, path: str | Path, name: str, start: int = 0, stop: int | None = None):
        import pyarrow.parquet as pq

        self.path, self.name = str(path), name
        meta = pq.read_metadata(self.path)
        self.group_ends = np.cumsum([meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
        total = int(self.group_ends[-1]) if len(self.group_ends) else 0
        self.start, self.stop = start, total if stop is None else min(stop, total)
        self._group, self._values = -1, None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_group": -1, "_values": None}

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def _read_group(self, g: int):
        if g != self._group:
            import pyarrow.parquet as pq

            col = pq.ParquetFile(self.path).read_row_group(g, columns=[self.name], use_threads=False).column(0)
            self._values = col.to_numpy() if col.type.num_fields == 0 and not _is_text(col.type) else col.to_pylist()
            self._group = g
            del col
            _release()
        return self._values

    def _rows(self, a: int, b: int):
        """Rows ``a:b`` of the file (absolute), concatenated across row groups."""
        parts = []
        while a < b:
            g = int(np.searchsorted(self.group_ends, a, side="right"))
            first = int(self.group_ends[g - 1]) if g else 0
            take = min(int(self.group_ends[g]), b) - a
            parts.append(self._read_group(g)[a - first:a - first + take])
            a += take
        if not parts:
            return []
        return np.concatenate(parts) if isinstance(parts[0], np.ndarray) else [v for p in parts for v in p]

    def __getitem__(self, i):
        if isinstance(i, slice):
            a, b, step = i.indices(len(self))
            rows = self._rows(self.start + a, self.start + max(a, b))
            return rows[::step] if step != 1 else rows
        i = int(i) + (len(self) if i < 0 else 0)
        if not 0 <= i < len(self):
            raise IndexError(f"row {i} out of range for {len(self)}")
        return self._rows(self.start + i, self.start + i + 1)[0]

    def __iter__(self):
        a = self.start
        while a < self.stop:
            g = int(np.searchsorted(self.group_ends, a, side="right"))
            b = min(int(self.group_ends[g]), self.stop)
            yield from self._rows(a, b)
            a = b


def _is_text(t) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)


def write_columns(path: str | Path, columns: dict[str, Sequence], row_group: int = 8192) -> Path:
    """Write equal-length ``columns`` (lazy sequences welcome) to a Parquet file ``row_group`` rows at a time
    (memory: one row group), atomically. Small row groups let a reader of a slice (a generation rank's 1,000-prompt
    shards) read little more than its rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.parquet")
    n = len(next(iter(columns.values())))
    writer = None
    try:
        for a in range(0, max(n, 1), row_group):
            batch = pa.table({k: pa.array(np.ascontiguousarray(v[a:a + row_group]) if isinstance(v, np.ndarray)
                                          else list(v[a:a + row_group])) for k, v in columns.items()})
            writer = writer or pq.ParquetWriter(tmp, batch.schema)
            writer.write_table(batch, row_group_size=row_group)
            del batch
            _release()
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    return path
