"""Resolve a named model to its library class: the shipped mini-world artifact or paper-scale weights on disk.

Every experiment loads models through these functions, so switching the ``paper`` profile swaps names, not code:

| role | mini (``"mini"``) | paper (a local folder/file, or a Hugging Face id already in the local cache) |
|---|---|---|
| t2i ``sd``   | ``StableDiffusionPipeline`` from ``mini_world/sd``   | ``runwayml/stable-diffusion-v1-5`` |
| t2i ``if``   | ``IFPipeline`` from ``mini_world/if``                | ``DeepFloyd/IF-I-XL-v1.0`` (stage I) |
| t2i ``muse`` | ``AmusedPipeline`` from ``mini_world/muse``          | ``amused/amused-256`` |
| oracle       | timm ``local-dir:mini_world/oracle``                 | a timm folder (config + weights): ViT-B/16 |
| clip         | open_clip ``synscale-mini-clip`` + weights           | open_clip ``ViT-B-16`` + its weights file |

Nothing is downloaded (``local_files_only``); anything absent is one line saying what and how to provide it.
"""
from __future__ import annotations

import os
from pathlib import Path

from .world import default_dir, verify

PIPELINES = {"sd": "StableDiffusionPipeline", "if": "IFPipeline", "muse": "AmusedPipeline"}
NO_SAFETY_PARTS = {
    "sd": {"safety_checker": None, "requires_safety_checker": False},
    "if": {"safety_checker": None, "watermarker": None, "requires_safety_checker": False},
}
PAPER_T2I = {"sd": "runwayml/stable-diffusion-v1-5", "if": "DeepFloyd/IF-I-XL-v1.0", "muse": "amused/amused-256"}


class MissingModelError(FileNotFoundError):
    """A named model is not on this machine; the message says how to provide it."""


def _hf_cached(repo_id: str) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def locate(name: str, what: str) -> Path:
    """A local path for ``name``: ``mini`` (shipped world), an existing path, or a cached HF id."""
    if name == "mini":
        return verify(default_dir(), what)
    from .params import expand_path

    p = Path(expand_path(name))
    if p.exists():
        return p
    cached = _hf_cached(name) if "/" in name and not name.startswith(("/", ".", "~")) else None
    if cached is not None:
        return cached
    raise MissingModelError(
        f"{what} model '{name}' not found: it is neither a local path nor in the Hugging Face cache "
        f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}); copy it there (e.g. `huggingface-cli download {name}` "
        f"on a machine with internet) or point the params at a local folder"
    )


def t2i(family: str, name: str = "mini", device: str = "cpu", dtype=None):
    """A diffusers text-to-image pipeline of ``family`` in {sd, if, muse}."""
    import diffusers
    import torch

    if family not in PIPELINES:
        raise ValueError(f"unknown text-to-image family '{family}'; known: {', '.join(PIPELINES)}")
    path = locate(name, family)
    cls = getattr(diffusers, PIPELINES[family])
    kwargs = NO_SAFETY_PARTS.get(family, {})  # the mini pipelines ship no safety checker / watermarker
    from diffusers.utils import logging as diffusers_log
    from transformers.utils import logging as transformers_log

    bars = diffusers_log.is_progress_bar_enabled(), transformers_log.is_progress_bar_enabled()
    diffusers_log.disable_progress_bar()  # loading bars would fill every rendered report; restored below
    transformers_log.disable_progress_bar()
    try:
        pipe = cls.from_pretrained(str(path), local_files_only=True, dtype=dtype or torch.float32, **kwargs)
    finally:
        if bars[0]:
            diffusers_log.enable_progress_bar()
        if bars[1]:
            transformers_log.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def fingerprint(what: str, name: str = "mini") -> str:
    """8 hex digits naming the exact weights of ``name``: the shipped files' sha256 for ``mini``, else the resolved
    path with its files' sizes and mtimes (cached data sets made with other weights never collide with these)."""
    import hashlib
    import json

    from .world import read_manifest

    if name == "mini":
        files = read_manifest(default_dir())["components"].get(what, {}).get("files")
        if not files:
            raise MissingModelError(f"mini-world component '{what}' is not built: run "
                                    "./run_all.sh 00 --profile rebuild")
        key = json.dumps(files, sort_keys=True)
    else:  # the files' names, sizes and mtimes: a folder rebuilt in place gets a new fingerprint
        path = locate(name, what).resolve()
        files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
        key = json.dumps([str(path)] + [(str(p.relative_to(path.parent)), p.stat().st_size, p.stat().st_mtime_ns)
                                        for p in files])
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def oracle(name: str = "mini"):
    """The recognizability/diversity classifier (timm)."""
    from .train import load

    return load(locate(name, "oracle"))
