"""Published tables shipped with the project (``resources/reference/``, sources in its SOURCES.md)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from synscale.data import generators
from synscale.data.prompts import PAPER_NAMES

DIR = Path(__file__).resolve().parents[1] / "resources" / "reference"


def table(name: str) -> pd.DataFrame:
    """A published table by file stem, e.g. ``table("fan_tableA4_A6_configs")``."""
    path = DIR / f"{name}.csv"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in DIR.glob("*.csv")))
        raise FileNotFoundError(f"no reference table {name!r}; shipped: {known}")
    return pd.read_csv(path)


#: generator -> Fan et al.'s name for it (the registry's ``reference``: sd, if, muse)
PAPER_MODEL = {k: g.reference for k, g in generators.registry().items() if g.reference}


def fan_configs(model: str | None = None) -> pd.DataFrame:
    """Fan et al. Tables A4–A6 (one row per configuration), optionally for one of Stable Diffusion / Imagen / Muse,
    with ``prompt_config`` also given as synscale's config name (column ``config``)."""
    df = table("fan_tableA4_A6_configs")
    to_ours = {v: k for k, v in PAPER_NAMES.items()}
    df["config"] = df["prompt_config"].map(to_ours)
    return df if model is None else df[df["t2i_model"] == model].reset_index(drop=True)
