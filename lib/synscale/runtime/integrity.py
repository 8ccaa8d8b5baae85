"""Cache files that check themselves: atomic writes, size + sha256 records, and what a damaged file gets.

At paper scale caches live on shared file systems for weeks, runs are killed by schedulers and disks fill up, so a
cache file can be half-written, truncated or flipped. Every file the study reuses is written through this module:

- :func:`atomic_write` writes through a temporary file of this process and renames it into place, so a reader never
  sees half a file (parallel processes never share a temporary name).
- :func:`record` is a file's ``{"size", "sha256"}``; :func:`damage` compares a file with its record and says what
  is wrong in a few words (or ``None``). Generated sets keep their shards' records in their index
  (``synscale.methods.generate``); single files keep theirs in a ``<file>.sha256`` sidecar (:func:`save`, :func:`load`).
- :func:`load` returns ``None`` for a missing or damaged file after moving the damaged one aside
  (``<file>.damaged``) with a one-line warning, so the caller recomputes it: a damaged cache entry is redone, never
  read. Verified files are remembered per process by (path, size, mtime), so each is hashed once per process.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
SIDECAR = ".sha256"
_VERIFIED: dict[str, tuple[int, int, str]] = {}


class CacheDamageWarning(UserWarning):
    """A cache file was damaged (truncated, flipped, half-written) and is recomputed."""


class DamagedCacheError(RuntimeError):
    """A cache file that cannot be recomputed here is damaged; the message names it and the repair command."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def record(path: str | Path) -> dict[str, Any]:
    """``{"size": bytes, "sha256": hex}`` of a file."""
    path = Path(path)
    return {"size": path.stat().st_size, "sha256": _sha256_memo(path)}


def _sha256_memo(path: Path) -> str:
    st = path.stat()
    key = str(path.resolve())
    seen = _VERIFIED.get(key)
    if seen is not None and seen[:2] == (st.st_size, st.st_mtime_ns):
        return seen[2]
    digest = sha256_file(path)
    _VERIFIED[key] = (st.st_size, st.st_mtime_ns, digest)
    return digest


#: files up to this size are always hashed on read (``SYNSCALE_VERIFY_BYTES`` overrides): caches, small shards
FULL_HASH_BYTES = 64 << 20
#: of larger files, those whose name hashes to 0 modulo this are hashed too (a spot check, the same files each time)
SPOT_CHECK = 64


def should_hash(path: str | Path, size: int) -> bool:
    """Whether a read of ``path`` (``size`` bytes) hashes it, by ``SYNSCALE_VERIFY``: ``full`` (every file, e.g. after
    a copy between file systems), ``size`` (none: sizes only), or ``auto`` (default): files up to
    :data:`FULL_HASH_BYTES` and a fixed 1-in-:data:`SPOT_CHECK` sample of larger ones. At paper scale a generated set
    is terabytes; hashing it in every process that reads it cost more than reading it once. Its sha256 is written
    with it either way, and ``synscale verify`` hashes everything on demand."""
    mode = os.environ.get("SYNSCALE_VERIFY", "auto").strip().lower() or "auto"
    if mode not in ("auto", "full", "size"):
        raise ValueError(f"SYNSCALE_VERIFY={mode!r}: use auto (default), full or size")
    if mode != "auto":
        return mode == "full"
    limit = int(os.environ.get("SYNSCALE_VERIFY_BYTES", FULL_HASH_BYTES))
    return size <= limit or int(hashlib.sha1(Path(path).name.encode()).hexdigest()[:8], 16) % SPOT_CHECK == 0


def damage(path: str | Path, expected: dict[str, Any], full: bool | None = None) -> str | None:
    """What is wrong with ``path`` against its record ``expected`` ("missing", "truncated: …", "checksum …"), or
    ``None`` when it matches. The size is checked first (a stat), the sha256 when the size is right and ``full``
    says so (default: :func:`should_hash`)."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != expected["size"]:
        return f"{size} bytes where {expected['size']} were written"
    if not (should_hash(path, size) if full is None else full):
        return None
    if _sha256_memo(path) != expected["sha256"]:
        return "sha256 differs from the one recorded when it was written"
    return None


def tmp_name(path: Path) -> Path:
    """A temporary name beside ``path`` owned by this process (never shared by parallel writers), hidden, with the
    same suffix (``np.save`` and friends append theirs to a name without it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def stale_tmps(path: Path) -> list[Path]:
    """Temporary files of ``path`` left by writers of any process (an interrupted write)."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"))


@contextlib.contextmanager
def exclusive(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``flock`` on its ``.lock`` file) while the block runs: two processes
    that fill the same cache folder (two runs side by side sharing a generated set) take turns instead of deleting
    each other's temporary files; the second then finds the work done. The lock dies with its process."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """JSON written atomically (sorted keys, indented; numpy scalars and the like through ``str``)."""
    return atomic_write(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def save(path: str | Path, write: Callable[[Path], None]) -> Path:
    """A checked cache file: ``write(tmp)`` fills a temporary file, which is renamed to ``path``; then its record
    goes to ``<path>.sha256``. A crash between the two leaves a file without a matching record: :func:`load` then
    treats it as damaged and it is recomputed, never read unverified."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    write(tmp)
    rec = record(tmp)
    os.replace(tmp, path)
    _VERIFIED.pop(str(tmp.resolve()), None)
    write_json(sidecar(path), rec)
    return path


def sidecar(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR)


def load(path: str | Path, read: Callable[[Path], T], what: str = "cache file") -> T | None:
    """``read(path)`` of a file written by :func:`save`, or ``None`` when it is missing or damaged (a damaged one is
    moved aside with a one-line warning naming it, so the caller recomputes it)."""
    path = Path(path)
    if not path.exists():
        return None
    problem = verify(path)
    if problem is None:
        try:
            return read(path)
        except Exception as e:  # a file that matches its record but does not parse: written by a broken writer
            problem = f"unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    discard(path, what, problem)
    return None


def verify(path: str | Path) -> str | None:
    """``damage`` of a file against its ``.sha256`` sidecar ("no record" when there is none)."""
    try:
        expected = json.loads(sidecar(path).read_text())
        return damage(path, expected)
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return "no record of what was written (written before records, or interrupted)"


def discard(path: str | Path, what: str, problem: str) -> None:
    """Move a damaged file aside as ``<file>.damaged`` (kept for inspection, never read) and say so in one line."""
    path = Path(path)
    warnings.warn(f"{what} {path} is damaged ({problem}): moved to {path.name}.damaged and recomputed",
                  CacheDamageWarning, stacklevel=3)
    if path.exists():
        os.replace(path, path.with_name(path.name + ".damaged"))
    sidecar(path).unlink(missing_ok=True)


def save_json(path: str | Path, obj: Any) -> Path:
    """A checked JSON cache file (:func:`save`)."""
    text = json.dumps(obj, indent=1, sort_keys=True, default=str)
    return save(path, lambda tmp: tmp.write_text(text))


def load_json(path: str | Path, what: str = "cache file") -> Any | None:
    """A checked JSON cache file, or ``None`` when missing or damaged (:func:`load`)."""
    return load(path, lambda p: json.loads(p.read_text()), what)
