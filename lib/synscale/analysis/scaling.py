"""Scaling-law fits and schedules (Fan et al., sec. 3.3, eq. 2; appendix A.1). Arrays in, numbers out; no torch.

Eq. 2 writes the power law L_D ∝ D^(−k) around the real-set size D_I:

    log L_D = −k · (log D − log D_I) − (−log L_{D_I})

so an OLS of log L on (log D − log D_I) has slope −k (**scaling ability** k) and intercept log L_{D_I}
(**performance at D_I** = −log L_{D_I}). ``fit_power_law`` fits it with statsmodels over a chosen size range (the
paper fits 0.125M–4M and shows the bend beyond) and returns both with confidence intervals.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from synscale.analysis.findings import SeedNoise, resample_weights


@dataclass(frozen=True)
class PowerLawFit:
    k: float                      # scaling ability (negative slope of log L on log D)
    k_ci: tuple[float, float]
    performance: float            # −log L at ref_size (performance at D_I)
    performance_ci: tuple[float, float]
    ref_size: float
    n_points: int
    r2: float
    fit_range: tuple[float, float]

    def predict_loss(self, sizes) -> np.ndarray:
        """L(D) on the fitted line: exp(−k (log D − log D_I) − performance)."""
        d = np.log(np.asarray(sizes, dtype=float)) - math.log(self.ref_size)
        return np.exp(-self.k * d - self.performance)

    def as_dict(self) -> dict:
        return asdict(self)


def fit_power_law(sizes, losses, ref_size: float, fit_range: tuple[float, float] | None = None,
                  alpha: float = 0.05) -> PowerLawFit:
    """OLS fit of eq. 2 on the points with ``fit_range[0] <= size <= fit_range[1]`` (all points by default).

    Confidence intervals are the OLS (1 − ``alpha``) intervals of slope and intercept (t distribution); with two
    points the line is exact and the intervals are NaN.
    """
    import statsmodels.api as sm

    d = np.asarray(sizes, dtype=float)
    loss = np.asarray(losses, dtype=float)
    if d.shape != loss.shape or d.ndim != 1:
        raise ValueError(f"sizes and losses must be 1-D and of equal length, got {d.shape} and {loss.shape}")
    if np.any(d <= 0) or np.any(loss <= 0) or ref_size <= 0:
        raise ValueError("sizes, losses and ref_size must be positive (the fit is in log space)")
    lo, hi = fit_range if fit_range is not None else (d.min(), d.max())
    keep = (d >= lo) & (d <= hi)
    if keep.sum() < 2 or len(np.unique(d[keep])) < 2:
        raise ValueError(f"need >= 2 distinct sizes inside fit_range {fit_range}, got {np.unique(d[keep]).tolist()}")
    x = np.log(d[keep]) - math.log(ref_size)
    y = np.log(loss[keep])
    res = sm.OLS(y, sm.add_constant(x)).fit()
    (b0, b1) = res.params
    if keep.sum() > 2:
        ci = res.conf_int(alpha)
        (i_lo, i_hi), (s_lo, s_hi) = ci[0], ci[1]
    else:
        i_lo = i_hi = s_lo = s_hi = float("nan")
    return PowerLawFit(k=float(-b1), k_ci=(float(-s_hi), float(-s_lo)), performance=float(-b0),
                       performance_ci=(float(-i_hi), float(-i_lo)), ref_size=float(ref_size),
                       n_points=int(keep.sum()), r2=float(res.rsquared) if keep.sum() > 2 else 1.0,
                       fit_range=(float(lo), float(hi)))


@dataclass(frozen=True)
class BootstrapFits:
    """Power-law fits of many curves with bootstrap replicates that share their resamples (paired): ``k[c]`` and
    ``performance[c]`` are the fits of curve ``c`` on all images (mean over seeds), ``k_samples[c]`` /
    ``performance_samples[c]`` one value per resample, so ``k_samples[a] - k_samples[b]`` is the replicate
    distribution of a difference between curves."""

    k: dict[str, float]
    performance: dict[str, float]
    k_samples: dict[str, np.ndarray]
    performance_samples: dict[str, np.ndarray]
    sizes: dict[str, list[int]]
    interval: str
    r2: dict[str, float] = field(default_factory=dict)  # of each point fit: how straight the curve is on log-log axes
    r2_samples: dict[str, np.ndarray] = field(default_factory=dict)  # the same, per resample
    curvature: dict[str, float] = field(default_factory=dict)  # x² coefficient of a quadratic in log-log space
    curvature_samples: dict[str, np.ndarray] = field(default_factory=dict)

    def power_law_caveat(self, c: str, min_points: int = 4, min_r2: float = 0.9, level: float = 0.95) -> str:
        """Why curve ``c``'s fit cannot say "a power law" (empty when it can): too few sizes to tell a straight
        line on log-log axes from another falling curve; a curve that bends (a quadratic's x² term whose interval
        excludes 0: a lack-of-fit test); or a line that explains too little of it in nearly every resample.
        Both are decided on the replicates (images and training seeds resampled, as for k), not on one number of
        the point fit: a threshold on R² flipped with the last bits of training, the replicates' quantiles move
        only as far as the training noise they sample."""
        n = len(self.sizes[c])
        if n < min_points:
            return f"{n} sizes cannot tell a power law from another falling curve (k > 0 says only that it falls)"
        a = (1 - level) / 2
        bend = self.curvature_samples.get(c)
        if bend is not None and np.isfinite(bend).any():
            lo, hi = float(np.nanquantile(bend, a)), float(np.nanquantile(bend, 1 - a))
            if lo > 0 or hi < 0:
                return (f"the curve {'flattens' if lo > 0 else 'steepens'} on log-log axes (curvature "
                        f"{self.curvature[c]:+.3f}, resamples {lo:+.3f} to {hi:+.3f}): not a power law here")
        r2, reps = self.r2.get(c, math.nan), self.r2_samples.get(c)
        hi = float(np.nanquantile(reps, 1 - a)) if reps is not None and np.isfinite(reps).any() else r2
        if not hi >= min_r2:
            return (f"the log-log line explains R² = {r2:.2f} of the curve (at most {hi:.2f} over resamples, below "
                    f"{min_r2:g}): not a power law here")
        return ""

    def table(self, level: float = 0.95) -> pd.DataFrame:  # noqa: F821 (pandas imported inside)
        import pandas as pd

        a = (1 - level) / 2
        rows = []
        for c in self.k:
            ks, ps = self.k_samples[c], self.performance_samples[c]
            rows.append({"data": c, "k": self.k[c], "k_lo": float(np.nanquantile(ks, a)),
                         "k_hi": float(np.nanquantile(ks, 1 - a)), "performance": self.performance[c],
                         "perf_lo": float(np.nanquantile(ps, a)), "perf_hi": float(np.nanquantile(ps, 1 - a)),
                         "n_points": len(self.sizes[c]), "sizes": f"{min(self.sizes[c])}-{max(self.sizes[c])}",
                         "r2": self.r2.get(c, math.nan),
                         "curvature": self.curvature.get(c, math.nan)})
        return pd.DataFrame(rows)


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope and intercept of y on x for every column of ``y`` ([points] or [points, columns])."""
    xm = (x - x.mean()).reshape(-1, *([1] * (y.ndim - 1)))
    slope = (xm * (y - y.mean(0))).sum(0) / (xm**2).sum()
    return slope, y.mean(0) - slope * x.mean()


def bootstrap_fits(losses: dict[tuple[str, int, int], np.ndarray], ref_size: float,
                   fit_range: tuple[float, float] | None = None, resamples: int = 1000, seed: int = 0
                   ) -> BootstrapFits:
    """Eq. 2 fitted to every curve, with a bootstrap over evaluation images and training seeds.

    ``losses[(curve, size, seed)]`` are one model's per-image losses on the same evaluation images for every model.
    Each resample draws the images with replacement (the same draw for every model, so curves are compared on the
    same images); a curve's log loss at a size is then the log of the resampled mean over its seeds plus a draw of
    that mean's training noise, pooled in log space over every (curve, size) trained with several seeds
    (:class:`~synscale.analysis.findings.SeedNoise`: relative noise, alike across curves). The point fit uses
    every image and the mean over seeds."""
    n = len(next(iter(losses.values())))
    w = resample_weights(n, resamples, seed)  # [n, R]
    rng = np.random.default_rng([seed, 17])
    lo, hi = fit_range if fit_range is not None else (0, math.inf)
    curves = list(dict.fromkeys(c for c, _, _ in losses))
    cells = {}
    for c in curves:
        for s in sorted({s for cc, s, _ in losses if cc == c and lo <= s <= hi}):
            cells[(c, s)] = np.stack([losses[(c, s, sd)] for cc, ss, sd in sorted(losses) if cc == c and ss == s])
    noise = SeedNoise.pooled(np.log(m.mean(1)) for m in cells.values())
    k, perf, ks, ps, used, r2, r2s, bend, bends = {}, {}, {}, {}, {}, {}, {}, {}, {}
    for c in curves:
        sizes = [s for cc, s in cells if cc == c]
        if len(sizes) < 2:
            continue
        point, boot = [], []
        for s in sizes:
            m = cells[(c, s)]
            point.append(m.mean())
            boot.append(np.log((m @ w).mean(0)) + noise.cell(np.log(m.mean(1))).draws(len(m), resamples, rng))
        x = np.log(np.asarray(sizes, dtype=float)) - math.log(ref_size)
        y = np.log(np.asarray(point))
        slope, icpt = _ols(x, y)
        k[c], perf[c] = float(-slope), float(-icpt)
        resid = y - (icpt + slope * x)
        r2[c] = float(1 - (resid**2).sum() / ((y - y.mean()) ** 2).sum()) if np.ptp(y) > 0 else math.nan
        yr = np.stack(boot)  # [sizes, R]: log losses
        slope_r, icpt_r = _ols(x, yr)
        ks[c], ps[c], used[c] = -slope_r, -icpt_r, sizes
        ss = ((yr - yr.mean(0)) ** 2).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r2s[c] = np.where(ss > 0, 1 - ((yr - (icpt_r + slope_r * x[:, None])) ** 2).sum(0) / ss, np.nan)
        if len(sizes) >= 4:  # a quadratic needs a spare point to say anything about the bend
            q = np.linalg.pinv(np.stack([np.ones_like(x), x - x.mean(), (x - x.mean()) ** 2], 1))  # [3, sizes]
            bend[c], bends[c] = float((q @ y)[2]), (q @ yr)[2]
    seeds = max(len(m) for m in cells.values())
    how = f"bootstrap over {n:,} evaluation images and {noise.describe(seeds)} ({resamples:,} resamples)"
    return BootstrapFits(k, perf, ks, ps, used, how, r2, r2s, bend, bends)
