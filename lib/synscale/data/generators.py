"""The text-to-image generators the study knows: entries of ``params/generators.yaml``, not code.

Each entry names a diffusers pipeline (its repos and variable, as :mod:`synscale.data.weights` resolves
``"paper:<key>"``), the sampler, the components loaded as ``None``, extra keyword arguments of loading and of every
call, the steps, the guidance scales notebook 09 sweeps, the resolution and dtype, a super-resolution stage where it
has one, and its name in the published tables. ``SYNSCALE_GENERATORS`` points at another file (a lab's own list).
A bad entry is one line naming the key and the field.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from synscale.runtime.paths import ROOT, params_dir

FIELDS = {"what", "repos", "env", "mini", "sampler", "none", "init", "call", "steps", "guidance", "resolution",
          "dtype", "stage2", "stage_of", "reference"}


@dataclass(frozen=True)
class Generator:
    key: str
    what: str
    repos: tuple[str, ...] = ()
    env: str = ""
    mini: bool = False
    sampler: str | None = None
    none: tuple[str, ...] = ()
    init: dict[str, Any] = field(default_factory=dict)
    call: dict[str, Any] = field(default_factory=dict)
    steps: int = 50
    guidance: tuple[float, ...] = ()
    resolution: int = 512
    dtype: str = "float16"
    stage2: str | None = None
    stage_of: str | None = None
    reference: str | None = None

    @property
    def is_stage(self) -> bool:
        """A super-resolution stage (IF-II), loaded after its generator, not a generator of its own."""
        return self.stage_of is not None


def registry_file() -> Path:
    """``SYNSCALE_GENERATORS``, else ``generators.yaml`` of the params folder, else the repository's (a params folder
    of other notebooks, ``SYNSCALE_PARAMS``, need not carry its own registry)."""
    if env := os.environ.get("SYNSCALE_GENERATORS"):
        return Path(env).expanduser()
    own = params_dir() / "generators.yaml"
    return own if own.is_file() else ROOT / "params" / "generators.yaml"


def _entry(key: str, raw: Any, src: Path) -> Generator:
    if not isinstance(raw, dict):
        raise ValueError(f"{src}: generator '{key}' must be a mapping of fields, got {type(raw).__name__}")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise ValueError(f"{src}: generator '{key}' has unknown field(s) {unknown}; known: {sorted(FIELDS)}")
    if not raw.get("what"):
        raise ValueError(f"{src}: generator '{key}' needs 'what' (one line: the model and what it stands for)")
    if not raw.get("repos") and not raw.get("mini"):
        raise ValueError(f"{src}: generator '{key}' has neither 'repos' nor 'mini: true': nothing to load it from")
    for k in ("init", "call"):
        if not isinstance(raw.get(k, {}), dict):
            raise ValueError(f"{src}: generator '{key}': '{k}' must be a mapping of keyword arguments")
    g = dict(raw)
    for k in ("repos", "none"):
        g[k] = tuple(g.get(k) or ())
    g["guidance"] = tuple(float(x) for x in g.get("guidance") or ())
    return Generator(key=key, **g)


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> dict[str, Generator]:
    src = Path(path)
    doc = yaml.safe_load(src.read_text()) or {}
    raw = doc.get("generators")
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{src}: needs a non-empty 'generators:' mapping of key -> entry")
    reg = {k: _entry(k, v, src) for k, v in raw.items()}
    for g in reg.values():
        for ref, what in ((g.stage2, "stage2"), (g.stage_of, "stage_of")):
            if ref is not None and ref not in reg:
                raise ValueError(f"{src}: generator '{g.key}': {what} '{ref}' is not an entry")
    return reg


def registry() -> dict[str, Generator]:
    """Every entry of the registry file, stages included (re-read when the file changes)."""
    f = registry_file()
    if not f.is_file():
        raise FileNotFoundError(f"generator registry {f} not found: restore params/generators.yaml or point "
                                "SYNSCALE_GENERATORS at a registry file")
    return _load(str(f), f.stat().st_mtime_ns)


def get(key: str) -> Generator:
    reg = registry()
    if key not in reg:
        known = ", ".join(k for k, g in reg.items() if not g.is_stage)
        raise ValueError(f"unknown text-to-image generator '{key}'; known: {known} (add an entry to {registry_file()})")
    return reg[key]


def generators(mini: bool | None = None) -> list[str]:
    """Keys of the generators (super-resolution stages left out); ``mini=True``: those the mini world ships."""
    return [k for k, g in registry().items() if not g.is_stage and (mini is None or g.mini == mini)]
