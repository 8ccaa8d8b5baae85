"""The papers' claims as tested here: each with its source, our measured effect, an interval, and a verdict that the
interval decides — never a point estimate.

A :class:`Claim` holds an *effect* oriented so that a positive value supports the paper's statement (e.g.
``real k − synthetic k`` for "synthetic data scales worse than real"), and a 95% interval of that effect:

- **holds** when the whole interval lies above zero,
- **contradicted** when it lies below zero,
- **unresolved** when it contains zero (the data here cannot tell).

Intervals come from the sources of noise a claim depends on: :func:`bootstrap` resamples evaluation images (or
classes) with a fixed seed, so a verdict is the same on every run of the same commit; :func:`seed_mean` adds the
training noise of a mean over seeds, pooled over an experiment's cells (:class:`SeedNoise`); :func:`t_interval`
spans seed-to-seed variation of repeated trainings. Each notebook records its claims with :func:`record`
(``tables/findings.csv`` of the run); the runner gathers every notebook's into ``outputs/findings.csv`` and
``outputs/findings.html`` (:func:`collect`, :func:`write_page`).
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synscale.runtime.integrity import atomic_write
from synscale.runtime.paths import outputs_dir
from synscale.runtime.results import PROVENANCE, collect_table, finished_runs, record_table
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
    support: float = math.nan  # the share of replicates above zero (how sure the verdict is)
    caveat: str = ""    # why the interval alone cannot decide the claim (e.g. a poor fit): the verdict is unresolved

    @property
    def verdict(self) -> str:
        return "unresolved" if self.caveat else verdict(self.lo, self.hi)

    @property
    def unit(self) -> str:
        return unit_of(self.measure)

    @property
    def why(self) -> str:
        return why(self.effect, self.lo, self.hi, self.support, self.caveat, self.interval)

    def row(self) -> dict:
        return {**asdict(self), "unit": self.unit, "verdict": self.verdict, "why": self.why}


def claim(key: str, statement: str, source: str, measure: str, samples: np.ndarray | Sequence[float], effect: float,
          interval: str, paper: str = "", section: str = "", level: float = LEVEL, caveat: str = "") -> Claim:
    """A :class:`Claim` whose interval is the central ``level`` quantile range of ``samples`` (bootstrap or seed
    replicates of the effect; non-finite replicates, a fit that failed, are dropped) and whose support is the share
    of them above zero. ``caveat``: why the interval cannot decide it (the verdict is then unresolved)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    a = (1 - level) / 2
    lo, hi = (float(np.quantile(s, a)), float(np.quantile(s, 1 - a))) if len(s) else (math.nan, math.nan)
    support = float((s > TOL).mean()) if len(s) else math.nan
    return Claim(key, statement, source, measure, float(effect), lo, hi, interval, paper, section, support, caveat)


#: a claim's unit, read off its measure's wording (most specific first)
UNITS = (("Δ_MTL", "% (Δ_MTL)"), ("(%)", "%"), ("Spearman", "Spearman ρ"), ("ρ(", "Spearman ρ"),
         ("R²", "adjusted R²"), ("scaling ability k", "k (log-log slope)"), ("k(", "k (log-log slope)"),
         ("top-1 (points)", "top-1 points"), ("score (points", "points (Table A2 metric)"),
         ("top-1", "top-1 (fraction)"), ("loss", "loss (nats)"))


def unit_of(measure: str) -> str:
    """The unit of a claim's effect, from its measure (``"val loss, CFG 7.5 − CFG 2"`` → ``"loss (nats)"``)."""
    return next((u for word, u in UNITS if word in measure), "")


def why(effect: float, lo: float, hi: float, support: float, caveat: str = "", interval: str = "") -> str:
    """One generated line on why a verdict is what it is, and for an unresolved one what would resolve it (an
    interval's half-width shrinks as one over the square root of what it resamples)."""
    sure = f"{max(support, 1 - support):.0%} of replicates agree" if math.isfinite(support) else "no replicates"
    if caveat:
        alone = verdict(lo, hi)
        return caveat + (f" (the interval alone would say {alone})" if alone != "unresolved" else "")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no interval: too few replicates to decide"
    v = verdict(lo, hi)
    if v == "holds":
        return f"the whole interval lies above zero; {sure}"
    if v == "contradicted":
        return f"the whole interval lies below zero: the data here say the opposite; {sure}"
    half = (hi - lo) / 2
    what = interval.split(" (")[0].split(", their noise")[0].removeprefix("bootstrap over ").removeprefix(
        "paired bootstrap over ")
    what = what.removeprefix("the ") or "resampled items"
    more = (f"; about {max(1.0, (half / abs(effect)) ** 2):.0f}× the {what} would resolve an effect this size"
            if abs(effect) > TOL else "")
    return f"the interval spans zero: ±{half:.2g} on an effect of {effect:+.2g}{more}"


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


def class_intervals(per_class: pd.DataFrame, by: list[str], cols: list[str], level: float = LEVEL,
                    resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Each group's mean of ``cols`` over its classes (one row per class) with a bootstrap ``level`` interval over
    the classes: columns ``by``, ``col``, ``col_lo``, ``col_hi`` (the error bars of a figure of set-level metrics
    such as recognizability and diversity, which are class means)."""
    rows, q = [], [(1 - level) / 2, (1 + level) / 2]
    for key, g in per_class.groupby(by, sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        w = resample_weights(len(g), resamples, seed)
        for c in cols:
            v = g[c].to_numpy(dtype=float)
            row[c] = float(v.mean())
            row[f"{c}_lo"], row[f"{c}_hi"] = (float(x) for x in np.quantile(v @ w, q))
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SeedNoise:
    """The training noise of one statistic (a model's mean val loss, its top-1), pooled over an experiment's cells
    of repeated trainings (one cell: one data set and size, trained with several seeds): ``sd``, the standard
    deviation of one training around its cell's mean, and ``df``, the degrees of freedom of that estimate.

    Pooled, because three seeds say little about their own spread, while the cells of one experiment share a noise
    level: a replicate that picks one of a cell's three seeds spans only their range, and another machine's
    kernels (one more draw of training noise) moved verdicts past it. A cell whose own seeds spread far more than
    the experiment's (an unstable configuration) keeps its own spread (:meth:`cell`)."""

    sd: float
    df: int

    @classmethod
    def pooled(cls, cells: Iterable[Sequence[float]]) -> SeedNoise:
        """From each cell's per-seed values (cells with one seed add nothing): the median over cells of each cell's
        variance scaled to the median of its χ² (so that a few unstable cells do not widen every other interval),
        with the cells' total degrees of freedom."""
        from scipy import stats

        est, df = [], 0
        for cell in cells:
            v = np.asarray(cell, dtype=float)
            if len(v) > 1:
                est.append(float(v.var(ddof=1)) * (len(v) - 1) / float(stats.chi2.median(len(v) - 1)))
                df += len(v) - 1
        return cls(math.sqrt(float(np.median(est))) if est else math.nan, df)

    def cell(self, values: Sequence[float]) -> SeedNoise:
        """The noise of one cell with per-seed ``values``: the experiment's, unless the cell's own spread is larger
        beyond chance (an F test at 1%), in which case its own, with its own few degrees of freedom."""
        from scipy import stats

        v = np.asarray(values, dtype=float)
        if len(v) < 2:
            return self
        own = float(v.std(ddof=1))
        if not self.known or own**2 > self.sd**2 * float(stats.f.ppf(0.99, len(v) - 1, self.df)):
            return SeedNoise(own, len(v) - 1)
        return self

    @property
    def known(self) -> bool:
        return self.df > 0 and math.isfinite(self.sd)

    def draws(self, n_seeds: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
        """The training noise of a mean over ``n_seeds`` trainings, one draw per resample: sd / √n · t(df), whose
        heavy tails carry the uncertainty of ``sd`` itself. Zeros where nothing is known (one seed everywhere)."""
        if not self.known:
            return np.zeros(resamples)
        return self.sd / math.sqrt(n_seeds) * rng.standard_t(self.df, resamples)

    def describe(self, n_seeds: int) -> str:
        """How an interval covers training noise, for its ``interval`` text."""
        if not self.known:
            return f"{n_seeds} training seed(s): training noise is not in the interval"
        return f"{n_seeds} training seed(s), their noise pooled over the experiment's cells ({self.df} df)"


def seed_mean(per_seed: np.ndarray, noise: SeedNoise, rng: np.random.Generator,
              points: Sequence[float] | None = None) -> np.ndarray:
    """Replicates of a mean over training seeds: ``per_seed`` (``[seeds, R]``, each seed's statistic on every
    resample of the evaluation items) averaged over the seeds, plus one draw of that mean's training noise per
    resample (:meth:`SeedNoise.draws`; with the seeds' own ``points``, the cell's noise, :meth:`SeedNoise.cell`)."""
    reps = np.atleast_2d(np.asarray(per_seed, dtype=float))
    noise = noise if points is None else noise.cell(points)
    return reps.mean(0) + noise.draws(len(reps), reps.shape[1], rng)


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
    return pd.DataFrame({"claim": df.statement, "source": df.source, "measure": df.measure, "unit": df.unit,
                         "ours (95% interval)": [ours(e, lo, hi) for e, lo, hi in zip(df.effect, df.lo, df.hi)],
                         "paper": df.paper, "verdict": df.verdict, "why": df.why})


# ------------------------------------------------------------------------------------------------- the whole study
def collect(outputs: Path, profile: str) -> pd.DataFrame:
    """Every finished run's claims of ``profile``, one row each, with notebook, run and report link columns."""
    frames = []
    for stem in sorted(p.name for p in Path(outputs).iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        df = collect_table(stem, profile, TABLE, outputs)
        if len(df):
            df.insert(0, "notebook", stem)
            df["report"] = [f"{stem}/{profile}/{r}/report.html" for r in df["run"]]
            for col, fill in (("unit", ""), ("support", math.nan), ("caveat", ""), ("why", "")):
                if col not in df:  # a run recorded before these columns existed
                    df[col] = fill
            df["caveat"] = ["" if pd.isna(c) else str(c) for c in df["caveat"]]  # an empty column reads as NaN
            df["unit"] = [u if isinstance(u, str) and u else unit_of(m) for u, m in zip(df.unit, df.measure)]
            df["why"] = [w if isinstance(w, str) and w else why(e, lo, hi, sp, cv, i) for w, e, lo, hi, sp, cv, i
                         in zip(df.why, df.effect, df.lo, df.hi, df.support, df.caveat, df.interval)]
            frames.append(df[["notebook", "run", "key", "statement", "source", "measure", "unit", "effect", "lo",
                              "hi", "interval", "support", "paper", "section", "verdict", "why", "caveat",
                              "report"]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


COLOURS = {"holds": "#d7f0d2", "contradicted": "#f6d5d5", "unresolved": "#eeeeee"}


def paper_of(source: str) -> str:
    """The paper a claim's source names: ``"Fan et al. sec. 4.3, Fig. 3"`` → ``"Fan et al."``."""
    for cut in (" sec", " appendix", " App", " Table", " Fig", ","):
        source = source.split(cut)[0]
    return source.strip() or "other"


def html_table(df: pd.DataFrame) -> str:
    """The findings as HTML, grouped by paper and, within it, by where the paper makes the claim: a statement tested
    several times (per configuration) is written once; each row has its unit, interval, verdict (coloured), the
    generated line of why, and its report."""
    out = []
    d = df.assign(_paper=[paper_of(x) for x in df.source])
    for paper, g in d.groupby("_paper", sort=False):
        out.append(f"<h2>{html.escape(paper)}: {counts(g)}</h2><table><tr><th>notebook</th><th>the paper's claim "
                   "</th><th>where</th><th>effect (&gt; 0 supports it)</th><th>unit</th><th>ours [95% interval]</th>"
                   "<th>paper</th><th>verdict</th><th>why</th><th></th></tr>")
        last = None
        for r in g.sort_values(["notebook", "source", "statement"], kind="stable").itertuples(index=False):
            same = (r.notebook, r.source, r.statement) == last
            last = (r.notebook, r.source, r.statement)
            first = "" if same else html.escape(r.statement)
            out.append(f'<tr style="background:{COLOURS[r.verdict]}"><td>{html.escape(r.notebook)}</td>'
                       f"<td>{first}</td><td>{'' if same else html.escape(r.source)}</td>"
                       f"<td>{html.escape(r.measure)}</td><td>{html.escape(str(r.unit))}</td>"
                       f"<td>{ours(r.effect, r.lo, r.hi)}</td><td>{html.escape(str(r.paper))}</td>"
                       f"<td><b>{r.verdict}</b></td><td>{html.escape(str(r.why))}</td>"
                       f'<td><a href="{html.escape(r.report)}">report</a></td></tr>')
        out.append("</table>")
    return "".join(out)


#: what the study is, in one paragraph: the index and the findings page open with it
ABOUT = ("synscale measures how synthetic images from text-to-image models scale as training data, next to real "
         "images, by reproducing three papers notebook by notebook: Fan et al., <i>Scaling Laws of Synthetic Images "
         "for Model Training … for Now</i> (prompts, guidance, three generator families, supervised scaling and "
         "its power laws, out-of-distribution and per-class scaling, CLIP on synthetic, real and mixed data); "
         "Hammoud et al., <i>SynthCLIP</i> (a fully synthetic CLIP); and Geng et al., <i>Training with Real instead "
         "of Synthetic Generated Images Still Performs Better</i> (the retrieval baseline). Every claim a notebook "
         "tests ends in a verdict decided by a 95% interval of its effect, oriented so that a positive effect "
         "supports the paper: <b>holds</b> when the interval lies above zero, <b>contradicted</b> below it, "
         "<b>unresolved</b> when it spans zero or when the test cannot decide it (said in the row's why).")

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1500px}table{border-collapse:collapse}td,th{border:1px "
          "solid #ccc;padding:4px 8px;vertical-align:top;font-size:13px}p{max-width:60em}")


def summary(df: pd.DataFrame, profile: str) -> str:
    """The findings page's lead: counts overall and per paper."""
    per = "; ".join(f"{html.escape(p)}: {counts(g)}" for p, g in
                    df.assign(_p=[paper_of(x) for x in df.source]).groupby("_p", sort=False))
    world = "the mini world (small models on Fashion-MNIST: a verdict says what they show, not whether the paper is " \
            "right at its scale)" if profile in ("mini", "smoke") else f"the {html.escape(profile)} profile"
    return f"<p><b>{len(df)} claims</b> tested on {world}: {counts(df)}. By paper: {per}.</p>"


#: a table any notebook may record under this name (09: the generators ranked) is shown on the findings page and the
#: index beside the claims: the newest finished run's, in these columns where it has them
LEADERBOARD = "leaderboard"
BOARD_COLUMNS = ("rank", "generator", "best_cfg", "recognizability", "diversity", "fid", "loss_at_d_i", "top1_at_d_i",
                 "k", "k_lo", "k_hi", "paper_model", "paper_cfg", "paper_top1")


def leaderboards(outputs: Path, profile: str) -> str:
    """HTML of each notebook's newest ``leaderboard`` table of ``profile`` (empty when none)."""
    out = ""
    for stem in sorted(p.name for p in Path(outputs).iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        df = collect_table(stem, profile, LEADERBOARD, outputs)
        if not len(df):
            continue
        newest = max(finished_runs(stem, profile, outputs), key=lambda d: (d / PROVENANCE).stat().st_mtime)
        df = df[df.run == newest.name]
        cols = [c for c in BOARD_COLUMNS if c in df]
        out += (f"<h2>{html.escape(stem)}: the leaderboard ({html.escape(df.run.iloc[0])})</h2>"
                + df[cols].to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="", border=0))
    return out


def write_page(outputs: Path, profile: str) -> Path | None:
    """``outputs/findings.csv`` and ``outputs/findings.html``: every claim of every notebook of ``profile``."""
    df = collect(outputs, profile)
    if not len(df):
        return None
    atomic_write(Path(outputs) / "findings.csv", df.to_csv(index=False))  # a reader never sees half a page
    page = (f'<!doctype html><html><head><meta charset="utf-8"><title>synscale findings</title>'
            f"<style>{_STYLE}</style></head><body><h1>synscale: what the study found ({html.escape(profile)} "
            f"profile)</h1>{summary(df, profile)}<p>{ABOUT}</p>{html_table(df)}{leaderboards(outputs, profile)}"
            "</body></html>")
    path = Path(outputs) / "findings.html"
    return atomic_write(path, page)


def markdown(df: pd.DataFrame) -> str:
    """The findings as a Markdown table (the README's), one row per claim."""
    lines = ["| notebook | the paper's claim | effect (> 0 supports it) | unit | ours [95% interval] | paper | verdict "
             "| why |", "|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        cells = [r.notebook[:2], r.statement, r.measure, str(r.unit), ours(r.effect, r.lo, r.hi),
                 "" if pd.isna(r.paper) else str(r.paper), r.verdict, str(r.why)]
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
