"""Where things live. Every other module asks here; nothing else hard-codes a path."""
from __future__ import annotations

import os
import re
from pathlib import Path

#: Repository root: lib/synscale/runtime/paths.py -> ../../../..
ROOT = Path(__file__).resolve().parents[3]


def notebooks_dir() -> Path:
    """Experiment notebooks (``SYNSCALE_NOTEBOOKS`` overrides ``<repo>/notebooks``; tests use fixtures)."""
    return Path(os.environ.get("SYNSCALE_NOTEBOOKS", ROOT / "notebooks")).resolve()


def params_dir() -> Path:
    """Params files, one per notebook stem (``SYNSCALE_PARAMS`` overrides ``<repo>/params``)."""
    return Path(os.environ.get("SYNSCALE_PARAMS", ROOT / "params")).resolve()


def outputs_dir() -> Path:
    """Root of all run directories (``SYNSCALE_OUTPUTS`` overrides ``<repo>/outputs``)."""
    return Path(os.environ.get("SYNSCALE_OUTPUTS", ROOT / "outputs")).resolve()


def cache_dir() -> Path:
    """Shared, reusable artifacts (generated data sets, features) keyed by their own content.

    ``SYNSCALE_CACHE`` overrides ``<outputs>/_cache``; data written here is reused across notebooks and runs.
    """
    return Path(os.environ.get("SYNSCALE_CACHE", outputs_dir() / "_cache")).resolve()


def world_dir() -> Path:
    """The shipped mini-world artifacts (``SYNSCALE_WORLD`` overrides ``<repo>/mini_world``)."""
    return Path(os.environ.get("SYNSCALE_WORLD", ROOT / "mini_world")).resolve()


def run_dir() -> Path:
    """The directory of the run this process belongs to.

    The runner sets ``SYNSCALE_RUN_DIR`` for the kernel. Interactively results go to
    ``<outputs>/_interactive/<notebook stem>`` (JupyterLab tells its kernel the notebook's path in
    ``JPY_SESSION_NAME``), so exploring never touches a finished run and two open notebooks never share a folder.
    """
    d = os.environ.get("SYNSCALE_RUN_DIR")
    session = os.environ.get("JPY_SESSION_NAME", "")
    path = Path(d) if d else outputs_dir() / "_interactive" / (Path(session).stem or "session")
    path.mkdir(parents=True, exist_ok=True)
    return path


_ENV = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_path(p: str) -> str:
    """``${VAR:-default}`` and ``~`` expansion (params name data roots and weights this way)."""
    return os.path.expanduser(_ENV.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), p))
