"""The papers' claims as tested here: each with its source, our measured effect, an interval, and a verdict that the
interval decides — never a point estimate.

A :class:`Claim` holds an *effect* oriented so that a positive value supports the paper's statement (e.g.
``real k − synthetic k`` for "synthetic data scales worse than real"), and a 95% interval of that effect:

- **holds** when the whole interval lies above zero,
- **contradicted** when it lies below zero,
- **unresolved** when it contains zero (the data here cannot tell).

Intervals come from the sources of noise a claim depends on: :func:`bootstrap` resamples evaluation images (or
classes, or seeds) with a fixed seed, so a verdict is the same on every run of the same commit; :func:`t_interval`
spans seed-to-seed variation of repeated trainings. Each notebook records its claims with :func:`record`
(``tables/findings.csv`` of the run); the runner gathers every notebook's into ``outputs/findings.csv`` and
``outputs/findings.html`` (:func:`collect`, :func:`write_page`).
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synscale.runtime.paths import outputs_dir
from synscale.runtime.results import collect_table, record_table
from synscale.runtime.results import record as record_metric

LEVEL = 0.95
RESAMPLES = 1000
VERDICTS = ("holds", "contradicted", "unresolved")
TABLE = "findings"
TOL = 1e-9  # rounding: two evaluations of the same numbers may differ in the last bits, which is not an effect


def verdict(lo: float, hi: float) -> str:
    """``holds`` if the interval lies above 0, ``contradicted`` if below, ``unresolved`` if it contains 0 (or is
    not finite: no interval, no verdict). Bounds within :data:`TOL` of 0 count as 0."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "unresolved"
    return "holds" if lo > TOL else "contradicted" if hi < -TOL else "unresolved"


@dataclass(frozen=True)
class Claim:
    """One of a paper's claims as tested in one run."""

    key: str            # stable id within the notebook, e.g. "synthetic_k_below_real"
    statement: str      # the paper's claim, in a sentence
    source: str         # where the paper makes it: "Fan et al. sec. 4.3, Fig. 3"
    measure: str        # what the effect is, oriented so that > 0 supports the claim
    effect: float
    lo: float
    hi: float
    interval: str       # how the interval was made: "bootstrap over 5,000 val images (1,000 resamples)"
    paper: str = ""     # the paper's own number(s) for the same quantity, where it gives them
    section: str = ""   # the report section that shows it

    @property
    def verdict(self) -> str:
        return verdict(self.lo, self.hi)

    def row(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}


def claim(key: str, statement: str, source: str, measure: str, samples: np.ndarray | Sequence[float], effect: float,
          interval: str, paper: str = "", section: str = "", level: float = LEVEL) -> Claim:
    """A :class:`Claim` whose interval is the central ``level`` quantile range of ``samples`` (bootstrap or seed
    replicates of the effect); non-finite replicates (a fit that failed) are dropped."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    a = (1 - level) / 2
    lo, hi = (float(np.quantile(s, a)), float(np.quantile(s, 1 - a))) if len(s) else (math.nan, math.nan)
    return Claim(key, statement, source, measure, float(effect), lo, hi, interval, paper, section)


def resample_indices(n: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """``[resamples, n]`` indices drawn with replacement from a fixed seed: the same on every run."""
    return np.random.default_rng([seed, n, resamples]).integers(0, n, size=(resamples, n))


def bootstrap(stat: Callable[[np.ndarray], float], n: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """``stat(idx)`` for each of :func:`resample_indices` (a statistic of resampled items: images, classes)."""
    return np.array([stat(idx) for idx in resample_indices(n, resamples, seed)])


def resample_weights(n: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """``[n, resamples]`` bootstrap weights (counts / n): ``values @ weights`` gives every resample's mean of a
    per-item quantity at once (e.g. per-image losses of many models)."""
    idx = resample_indices(n, resamples, seed)
    w = np.zeros((n, resamples))
    for r in range(resamples):
        w[:, r] = np.bincount(idx[r], minlength=n)
    return w / n


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and ``level`` t-interval of repeated measurements (seeds): (mean, lo, hi); NaNs with one value."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return m, math.nan, math.nan
    h = float(stats.t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - h, m + h


def table(claims: Sequence[Claim]) -> pd.DataFrame:
    return pd.DataFrame([c.row() for c in claims])


def record(claims: Sequence[Claim]) -> pd.DataFrame:
    """Write the run's claims to ``tables/findings.csv`` and its verdict counts to metrics; return a table for
    display (statement, ours with interval, paper, verdict)."""
    df = table(claims)
    record_table(TABLE, df)
    for v in VERDICTS:
        record_metric(f"claims.{v}", int((df.verdict == v).sum()) if len(df) else 0)
    return display_table(df)


def ours(effect: float, lo: float, hi: float) -> str:
    """An effect with its interval as every findings table shows it: ``+0.229 [+0.205, +0.254]``."""
    return f"{effect:+.3g} [{lo:+.3g}, {hi:+.3g}]" if math.isfinite(effect) else "n/a"


def counts(df: pd.DataFrame) -> str:
    """``"23 holds, 3 contradicted, 12 unresolved"``."""
    return ", ".join(f"{int((df.verdict == v).sum())} {v}" for v in VERDICTS)


def display_table(df: pd.DataFrame) -> pd.DataFrame:
    if not len(df):
        return df
    return pd.DataFrame({"claim": df.statement, "source": df.source, "measure": df.measure,
                         "ours (95% interval)": [ours(e, lo, hi) for e, lo, hi in zip(df.effect, df.lo, df.hi)],
                         "paper": df.paper, "verdict": df.verdict})


# ------------------------------------------------------------------------------------------------- the whole study
def collect(outputs: Path, profile: str) -> pd.DataFrame:
    """Every finished run's claims of ``profile``, one row each, with notebook, run and report link columns."""
    frames = []
    for stem in sorted(p.name for p in Path(outputs).iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        df = collect_table(stem, profile, TABLE, outputs)
        if len(df):
            df.insert(0, "notebook", stem)
            df["report"] = [f"{stem}/{profile}/{r}/report.html" for r in df["run"]]
            frames.append(df[["notebook", "run", "key", "statement", "source", "measure", "effect", "lo", "hi",
                              "interval", "paper", "section", "verdict", "report"]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


_COLOURS = {"holds": "#d7f0d2", "contradicted": "#f6d5d5", "unresolved": "#eeeeee"}


def html_table(df: pd.DataFrame) -> str:
    """The findings as an HTML table: claim, source, ours with interval, paper, verdict (coloured), report link."""
    rows = []
    for r in df.itertuples(index=False):
        rows.append(f'<tr style="background:{_COLOURS[r.verdict]}"><td>{html.escape(r.notebook)}</td>'
                    f"<td>{html.escape(r.statement)}</td><td>{html.escape(r.source)}</td>"
                    f"<td>{html.escape(r.measure)}</td><td>{ours(r.effect, r.lo, r.hi)}</td>"
                    f"<td>{html.escape(str(r.paper))}</td>"
                    f'<td><b>{r.verdict}</b></td><td><a href="{html.escape(r.report)}">report</a></td></tr>')
    return ("<table><tr><th>notebook</th><th>the paper's claim</th><th>source</th><th>effect (&gt; 0 supports it)</th>"
            "<th>ours [95% interval]</th><th>paper</th><th>verdict</th><th></th></tr>" + "".join(rows) + "</table>")


def write_page(outputs: Path, profile: str) -> Path | None:
    """``outputs/findings.csv`` and ``outputs/findings.html``: every claim of every notebook of ``profile``."""
    df = collect(outputs, profile)
    if not len(df):
        return None
    df.to_csv(Path(outputs) / "findings.csv", index=False)
    page = (f'<!doctype html><html><head><meta charset="utf-8"><title>synscale findings</title>'
            f"<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px "
            f"solid #ccc;padding:4px 8px;vertical-align:top;font-size:13px}}</style></head><body>"
            f"<h1>synscale: what the study found ({html.escape(profile)} profile)</h1>"
            f"<p>{len(df)} claims: {counts(df)}. "
            f"A verdict comes from the 95% interval of the effect: holds above zero, contradicted below, unresolved "
            f"across it.</p>{html_table(df)}</body></html>")
    path = Path(outputs) / "findings.html"
    path.write_text(page, encoding="utf-8")
    return path


def markdown(df: pd.DataFrame) -> str:
    """The findings as a Markdown table (the README's), one row per claim."""
    lines = ["| notebook | the paper's claim | effect (> 0 supports it) | ours [95% interval] | paper | verdict |",
             "|---|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        cells = [r.notebook[:2], r.statement, r.measure, ours(r.effect, r.lo, r.hi),
                 "" if pd.isna(r.paper) else str(r.paper), r.verdict]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "synscale findings") -> int:
    """``synscale findings [OUTPUTS] [--profile P]``: print the study's findings as a Markdown table."""
    import argparse

    ap = argparse.ArgumentParser(prog=prog, description="Print the study's findings (the claims each notebook "
                                 "tests, with their intervals and verdicts) as a Markdown table; the runner writes "
                                 "them to outputs/findings.html and outputs/findings.csv.")
    ap.add_argument("outputs", nargs="?", type=Path, default=None, help="outputs root (default: ./outputs)")
    ap.add_argument("--profile", default="mini")
    a = ap.parse_args(argv)
    df = collect(a.outputs or outputs_dir(), a.profile)
    if not len(df):
        print(f"no finished runs of profile {a.profile!r} with findings under {a.outputs or outputs_dir()}")
        return 1
    print(f"{len(df)} claims: {counts(df)}\n\n{markdown(df)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
