"""Δ_MTL: the multi-task relative change of SynthCLIP appendix G (Vandenhende et al., 2021).

For each task i with baseline ``b_i``, observed ``m_i`` and direction ``g_i`` (0 when higher is better, 1 when lower
is better)::

    Δ_i = (-1)^{g_i} (m_i - b_i) / b_i          Δ_MTL = 100 · mean_i Δ_i   (percent)

SynthCLIP aggregates five tasks (Table 1c): linear-probe average, few-shot average, image-retrieval average,
text-retrieval average and ImageNet zero-shot top-1, all higher-is-better. Pure numpy/pandas (no torch).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: SynthCLIP's five aggregate tasks (Table 1c), all higher-is-better.
SYNTHCLIP_TASKS = ("linear_probing", "few_shot", "image_retrieval", "text_retrieval", "zero_shot")


def delta_mtl(metrics: Mapping[str, float] | Sequence[float], baseline: Mapping[str, float] | Sequence[float],
              higher_is_better: Mapping[str, bool] | Sequence[bool] | bool = True, zero: str = "raise") -> float:
    """Δ_MTL in percent of ``metrics`` relative to ``baseline`` (appendix G).

    ``metrics`` and ``baseline`` are mappings task -> value (the tasks of ``metrics`` are used; each must be in
    ``baseline``) or equal-length sequences. ``higher_is_better`` is one bool for all tasks, a mapping task -> bool
    or a sequence aligned with the tasks. Units cancel (percent or fractions, as long as both sides agree).
    A baseline of 0 makes Δ_i undefined: ``zero="raise"`` (default) raises, ``zero="nan"`` returns NaN and
    ``zero="skip"`` averages over the other tasks only (NaN when every baseline is 0) — the caller names the tasks
    left out (``zero_tasks``).
    """
    if isinstance(metrics, Mapping):
        if not isinstance(baseline, Mapping):
            raise TypeError("metrics is a mapping, so baseline must be one too (task -> value)")
        missing = [k for k in metrics if k not in baseline]
        if missing:
            raise KeyError(f"baseline has no value for tasks {missing}; it has {list(baseline)}")
        tasks = list(metrics)
        m = np.array([float(metrics[k]) for k in tasks])
        b = np.array([float(baseline[k]) for k in tasks])
        if isinstance(higher_is_better, Mapping):
            hib = np.array([bool(higher_is_better[k]) for k in tasks])
        else:
            hib = np.broadcast_to(np.asarray(higher_is_better, dtype=bool), m.shape)
    else:
        m, b = np.asarray(metrics, dtype=float), np.asarray(baseline, dtype=float)
        if m.shape != b.shape or m.ndim != 1:
            raise ValueError(f"metrics and baseline must be 1-d and the same length, got {m.shape} and {b.shape}")
        hib = np.broadcast_to(np.asarray(higher_is_better, dtype=bool), m.shape)
    if len(m) == 0:
        raise ValueError("no tasks: give at least one metric")
    if zero not in ("raise", "nan", "skip"):
        raise ValueError(f"zero must be 'raise', 'nan' or 'skip', got {zero!r}")
    if np.any(b == 0):
        if zero == "nan" or (zero == "skip" and np.all(b == 0)):
            return float("nan")
        if zero == "skip":
            keep = b != 0
            m, b, hib = m[keep], b[keep], hib[keep]
        else:
            raise ValueError("a baseline value is 0: the relative change is undefined (Δ_i divides by b_i)")
    sign = np.where(hib, 1.0, -1.0)
    return float(np.mean(sign * (m - b) / b) * 100.0)


def zero_tasks(baseline: Mapping[str, float]) -> list[str]:
    """The tasks whose baseline value is 0 (left out of ``delta_mtl(..., zero="skip")``)."""
    return [k for k, v in baseline.items() if float(v) == 0]


def delta_mtl_table(scores: pd.DataFrame, baseline: str, model_col: str = "model",
                    tasks: Sequence[str] | None = None, higher_is_better: Mapping[str, bool] | bool = True,
                    zero: str = "raise") -> pd.DataFrame:
    """Δ_MTL of every row of a wide table (one row per model, one column per task) against row ``baseline``.

    Returns the table with a ``delta_mtl`` column (the baseline's is 0) and, per task, ``d_<task>`` = the
    difference to the baseline (as SynthCLIP Tables 3/4 print it).
    """
    tasks = list(tasks) if tasks is not None else [c for c in scores.columns if c != model_col]
    if baseline not in set(scores[model_col]):
        raise KeyError(f"baseline {baseline!r} is not a row of column {model_col!r}: {list(scores[model_col])}")
    ref = scores.set_index(model_col).loc[baseline, tasks].astype(float).to_dict()
    out = scores.copy()
    hib = higher_is_better
    out["delta_mtl"] = [delta_mtl({t: r[t] for t in tasks}, ref, hib, zero) for _, r in scores.iterrows()]
    for t in tasks:
        out[f"d_{t}"] = scores[t].astype(float) - ref[t]
    return out
