"""The Hugging Face hub cache layout, written by hand (no network): what ``huggingface_hub`` leaves after a download.

``hub_dir/models--{org}--{name}/``

- ``blobs/<sha256 of the file>``: the bytes, once per distinct content;
- ``snapshots/<revision>/<relpath>``: relative symlinks into ``blobs/``;
- ``refs/main``: the 40-hex revision, *without* a trailing newline (``huggingface_hub`` reads it unstripped, so a
  newline would become part of the snapshot path and every file would be "not found").

The revision is not a real git commit: it is the sha1 of the sorted ``(relpath, blob hash)`` list, so the same files
always give the same revision and a rebuild is idempotent. ``torch_checkpoints`` is torch's hub cache for
``load_state_dict_from_url`` (``$TORCH_HOME/hub/checkpoints``).
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

_CHUNK = 1 << 20


def hub_dir(hf_home: Path) -> Path:
    """The hub cache under an ``HF_HOME`` (``$HF_HUB_CACHE`` defaults to ``$HF_HOME/hub``)."""
    return Path(hf_home) / "hub"


def torch_checkpoints(torch_home: Path) -> Path:
    """torch's download cache under a ``TORCH_HOME`` (``torch.hub.get_dir() / "checkpoints"``)."""
    return Path(torch_home) / "hub" / "checkpoints"


def repo_folder(hub: Path, repo_id: str) -> Path:
    """``models--{org}--{name}`` for a model repo id ``org/name``."""
    org, sep, name = repo_id.partition("/")
    if not sep or not org or not name or "/" in name:
        raise ValueError(f"a model repo id is 'org/name', got {repo_id!r}")
    return Path(hub) / f"models--{org}--{name}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files(src_dir: Path) -> dict[str, Path]:
    """Every regular file under ``src_dir`` (symlinks followed) by its POSIX relative path."""
    src_dir = Path(src_dir)
    out = {p.relative_to(src_dir).as_posix(): p for p in src_dir.rglob("*") if p.is_file()}
    if not out:
        raise ValueError(f"no files under {src_dir}")
    return out


def revision_of(hashes: dict[str, str]) -> str:
    """The snapshot revision: sha1 over the sorted ``(relpath, blob hash)`` pairs."""
    h = hashlib.sha1()
    for rel, blob in sorted(hashes.items()):
        h.update(f"{rel}\0{blob}\n".encode())
    return h.hexdigest()


def _link(link: Path, target: Path) -> None:
    rel = os.path.relpath(target, link.parent)
    if link.is_symlink() and os.readlink(link) == rel:
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(rel)


def write_repo(hub_dir: Path, repo_id: str, src_dir: Path) -> Path:
    """Put the files of ``src_dir`` into the cache as repo ``repo_id``; returns ``snapshots/<revision>``.

    Idempotent: existing blobs and links are kept, ``refs/main`` is rewritten. Snapshots of other revisions are
    left in place, as ``huggingface_hub`` leaves them."""
    files = _files(src_dir)
    root = repo_folder(hub_dir, repo_id)
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    hashes = {rel: _sha256(p) for rel, p in files.items()}
    for rel, blob in hashes.items():
        dst = blobs / blob
        if not dst.exists():
            tmp = blobs / f".{blob}.incomplete"
            shutil.copyfile(files[rel], tmp)
            tmp.replace(dst)
    revision = revision_of(hashes)
    snapshot = root / "snapshots" / revision
    for rel, blob in hashes.items():
        _link(snapshot / rel, blobs / blob)
    refs = root / "refs"
    refs.mkdir(exist_ok=True)
    (refs / "main").write_text(revision)  # no newline: huggingface_hub reads it unstripped
    return snapshot
