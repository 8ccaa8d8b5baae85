"""How each of the papers' claims is tested here: the effect, its interval and its source, per experiment.

Each function takes an experiment's measurements (a :class:`~synscale.studies.supervised.Study`'s per-image losses, a
table of runs) and returns :class:`~synscale.analysis.findings.Claim` objects whose intervals come from the noise the
claim depends on: evaluation images and training seeds (bootstrap), or configurations and classes where the claim is
about them. Notebooks record them with ``findings.record``.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from synscale.analysis.findings import SeedNoise, bootstrap, claim, resample_weights, seed_mean
from synscale.analysis.mtl import SYNTHCLIP_TASKS, delta_mtl
from synscale.analysis.scaling import bootstrap_fits
from synscale.studies.supervised import Study

FIG3 = "Fan et al. sec. 4.3, Fig. 3"
BASELINE = "sd/classnames/7.5"  # the untuned configuration (class names at SD's default guidance)
BEYOND = "Beyond the papers (09)"  # the source of 09's claims: the findings page groups them under this name


def scaling_claims(study: Study, fit_range: tuple[float, float] | None, ref_size: float, resamples: int = 1000
                   ) -> tuple[list, object]:
    """Fan et al.'s supervised-scaling claims on a study's val losses, each with a bootstrap interval over val images
    and training seeds (``scaling.bootstrap_fits``): synthetic scales worse than real (k below real's), tuned prompts
    and guidance scale better than class names at CFG 7.5, and every curve's loss falls as a power law. Returns the
    claims and the fits (whose ``table()`` gives k and performance with their intervals)."""
    losses = study.split_losses("val")
    base = {k: v for k, v in losses.items() if ":" not in k[0]}
    bf = bootstrap_fits(base, ref_size, fit_range, resamples)
    sizes = sorted({s for _, s, _ in base})
    span = f"{min(sizes):,}–{max(sizes):,} images ({max(sizes) / min(sizes):g}×)"
    ks, k = bf.k_samples, bf.k
    out = []
    for c in k:
        out.append(claim(f"power_law.{c}", "the loss falls as a power law of the training-set size",
                         FIG3 + ", eq. 2", f"scaling ability k of {c} over {span}", ks[c], k[c], bf.interval,
                         paper="k > 0 for every curve to 4M", section="2. Power-law fits",
                         caveat=bf.power_law_caveat(c)))
    for c in [c for c in k if c != "real"]:
        if "real" in k:
            out.append(claim(f"k_below_real.{c}", "synthetic data scales worse than real data: lower k",
                             FIG3, f"k(real) − k({c})", ks["real"] - ks[c], k["real"] - k[c], bf.interval,
                             paper="every synthetic curve below real", section="2. Power-law fits"))
        if c != BASELINE and c.startswith("sd/") and BASELINE in k:
            out.append(claim(f"tuned_raises_k.{c}", "tuned prompts and guidance raise the scaling ability over class "
                             "names at CFG 7.5", "Fan et al. sec. 4.3", f"k({c}) − k({BASELINE})",
                             ks[c] - ks[BASELINE], k[c] - k[BASELINE], bf.interval,
                             paper="CLIP templates, IN-Captions and CFG 2 above classnames 7.5",
                             section="2. Power-law fits"))
    return out, bf


def large_backbone_claims(study: Study, label: str, resamples: int = 1000) -> list:
    """Per larger-backbone curve (its losses under ``label``, :meth:`Study.run`): base minus large val loss at the
    largest size both recipes trained, bootstrapped over val images (paired) and seeds. The paper's claim is about
    sizes beyond the base curve's bend (4M); where no bend exists this tests only that the larger model is better."""
    losses = study.split_losses("val")
    noise = _pooled(losses)
    out = []
    for name in sorted({c for c, _, _ in losses if c.startswith(f"{label}:")}):
        spec = name.split(":", 1)[1]
        shared = sorted({s for c, s, _ in losses if c == name} & {s for c, s, _ in losses if c == spec})
        if not shared:
            continue
        s = shared[-1]
        pick = [(np.stack([v for (c, ss, _), v in losses.items() if c == which and ss == s])) for which in (spec, name)]
        w = resample_weights(pick[0].shape[1], resamples)
        rng = np.random.default_rng([17, s])
        samples = seed_mean(pick[0] @ w, noise, rng, pick[0].mean(1)) - seed_mean(pick[1] @ w, noise, rng,
                                                                            pick[1].mean(1))
        out.append(claim(f"larger_backbone.{spec}", "a larger backbone keeps improving where the base one bends",
                         "Fan et al. sec. 4.4, Fig. 3", f"val loss, base − larger backbone, {spec} at {s:,} images",
                         samples, float(pick[0].mean() - pick[1].mean()),
                         f"bootstrap over {pick[0].shape[1]:,} val images and {noise.describe(len(pick[0]))} "
                         f"({resamples:,} resamples)",
                         paper="ViT-L below ViT-B beyond 4M", section="3. The larger backbone"))
    return out


def _pooled(per_image: dict[tuple, np.ndarray]) -> SeedNoise:
    """The training noise of a model's mean over its items, pooled over the cells of ``per_image`` (keys end with
    the training seed; the rest of a key names the cell)."""
    return SeedNoise.pooled([float(np.mean(per_image[k])) for k in keys] for keys in _cells(per_image))


def _cells(per_image: dict[tuple, object]) -> list[list[tuple]]:
    """The keys of ``per_image`` grouped by cell (all but the trailing seed)."""
    cells: dict[tuple, list[tuple]] = {}
    for key in per_image:
        cells.setdefault(key[:-1], []).append(key)
    return list(cells.values())


def _mean_replicates(per_seed: list[np.ndarray], w: np.ndarray, rng: np.random.Generator, noise: SeedNoise
                     ) -> tuple[float, np.ndarray]:
    """Mean over items and seeds, and bootstrap replicates: items drawn by ``w``, plus the training noise of a mean
    over this many seeds (:func:`~synscale.analysis.findings.seed_mean`)."""
    m = np.stack(per_seed)
    return float(m.mean()), seed_mean(m @ w, noise, rng, m.mean(1))


def _replicates(study: Study, data: str, size: int, w: np.ndarray, rng: np.random.Generator, noise: SeedNoise,
                split: str = "val") -> tuple[float, np.ndarray]:
    """A model's mean loss on ``split`` (mean over seeds) and its bootstrap replicates: images drawn by ``w``
    (``[images, R]``, shared by every model compared) and the training noise of the seeds' mean."""
    return _mean_replicates([v for (d, s, sp, _), v in sorted(study.losses.items(), key=lambda kv: kv[0][3])
                             if d == data and s == size and sp == split], w, rng, noise)


def _split_noise(study: Study, size: int, split: str = "val") -> SeedNoise:
    """Training noise of mean ``split`` losses, pooled over every data set trained at ``size``."""
    return _pooled({(d, sd): v for (d, s, sp, sd), v in study.losses.items() if s == size and sp == split})


def _best_of_held_out(study: Study, configs: list[str], size: int, w: np.ndarray, noise: SeedNoise, seed: int = 5
                      ) -> tuple[float, np.ndarray]:
    """Best synthetic configuration minus real, in val loss, free of the best-of-N bias: the best is chosen on one
    half of the val images and compared with real on the other half, both ways round, averaged (cross-fitting).
    Per replicate the same, on that replicate's resampled images (``w``: ``[images, R]`` weights); each model's
    per-image loss is the mean over its training seeds, and per replicate each model's mean moves by a draw of its
    training noise (``noise``: the seeds' mean is one training of many), before the best is chosen. Returns
    (point, replicates)."""
    def per_image(d: str) -> np.ndarray:
        return np.mean([v for (dd, s, sp, _), v in study.losses.items() if dd == d and s == size and sp == "val"], 0)

    data = ["real", *configs]
    v = np.stack([per_image(d) for d in data])  # [1 + N, images]
    points = [[x.mean() for (dd, s, sp, _), x in study.losses.items() if dd == d and s == size and sp == "val"]
              for d in data]
    rng = np.random.default_rng([seed, 1])
    shift = np.stack([noise.cell(p).draws(len(p), w.shape[1], rng) for p in points])  # [1 + N, R]
    half = np.random.default_rng(seed).permutation(v.shape[1]) < v.shape[1] // 2
    out = []
    for ww, dv in ((np.ones((v.shape[1], 1)), 0.0), (w, shift)):
        halves = [(v * m) @ ww / np.maximum(m @ ww, 1e-12) + dv for m in (half.astype(float), (~half).astype(float))]
        gap = 0.0
        for pick, test in ((halves[0], halves[1]), (halves[1], halves[0])):  # choose on one half, test on the other
            best = 1 + pick[1:].argmin(0)  # [R]
            gap = gap + (test[best, np.arange(test.shape[1])] - test[0]) / 2
        out.append(gap)
    return float(out[0][0]), out[1]


def d_i_claims(study: Study, synthetic: pd.DataFrame, size: int, resamples: int = 1000) -> list:
    """Fan et al.'s claims at the real-set size D_I (notebook 03), bootstrapped over val images and training seeds:
    real data beats every synthetic configuration; for Stable Diffusion a low guidance scale (2) trains better
    than the default (7.5), on average over the prompt configurations run at both. ``synthetic``: one row per
    synthetic configuration with ``data``, ``family``, ``config``, ``cfg``."""
    n = len(next(iter(study.losses.values())))
    w = resample_weights(n, resamples)
    rng = np.random.default_rng(3)
    noise = _split_noise(study, size)
    how = f"bootstrap over {n:,} val images and {noise.describe(len(study.seeds))} ({resamples:,} resamples)"
    syn = {d: _replicates(study, d, size, w, rng, noise) for d in synthetic.data}
    effect, samples = _best_of_held_out(study, list(synthetic.data), size, w, noise)
    out = [claim("real_beats_synthetic_at_d_i", "at the same size, real data trains a better classifier than any "
                 "synthetic configuration", "Fan et al. sec. 4.2-4.3, Fig. 1/3",
                 f"val loss, best synthetic − real, at D_I = {size:,} (the best of {len(syn)} chosen on the other "
                 "half of the val images)", samples, effect, how + "; selection on one half, test on the other",
                 paper="real above every synthetic curve at 1.3M", section="1. Classifiers at D_I")]
    sd = synthetic[synthetic.family == "sd"]
    pairs = sd[sd.cfg == 2.0].merge(sd[sd.cfg == 7.5], on="config", suffixes=("_2", "_75"))
    if len(pairs):
        diffs = np.stack([syn[b][1] - syn[a][1] for a, b in zip(pairs.data_2, pairs.data_75)])
        point = float(np.mean([syn[b][0] - syn[a][0] for a, b in zip(pairs.data_2, pairs.data_75)]))
        out.append(claim("low_cfg_trains_better", "a guidance scale below SD's default trains better classifiers "
                         "(CFG 2 over 7.5)", "Fan et al. sec. 3.1, Tables A4/A6",
                         f"val loss, CFG 7.5 − CFG 2, mean over {len(pairs)} SD prompt configurations", diffs.mean(0),
                         point, how, paper="CFG 2 lower IN loss than 7.5 for every SD prompt set",
                         section="1. Classifiers at D_I"))
    return out


def adjusted_r2(df: pd.DataFrame, cols: list[str], target: str) -> float:
    """Adjusted R² of an OLS of ``target`` on ``cols`` (NaN when there are too few rows): models with more
    regressors are not favoured by in-sample fit alone."""
    import statsmodels.api as sm

    d = df.dropna(subset=[*cols, target])
    if len(d) <= len(cols) + 1:
        return float("nan")
    return float(sm.OLS(d[target], sm.add_constant(d[cols])).fit().rsquared_adj)


def metric_claim(synthetic: pd.DataFrame, paper_r2: dict[str, float], target: str = "neg_log_loss",
                 resamples: int = 1000) -> list:
    """Appendix D: recognizability and diversity together predict a configuration's classifier better than FID or
    LPIPS alone — adjusted R² of each model of ``target`` over the synthetic configurations, the interval a
    bootstrap over configurations."""
    models = {"rec+div": ["recognizability", "diversity"], "fid": ["fid"], "lpips": ["lpips"]}

    def effect(df: pd.DataFrame) -> float:
        r = {m: adjusted_r2(df, c, target) for m, c in models.items()}
        return r["rec+div"] - max(r["fid"], r["lpips"])

    d = synthetic.reset_index(drop=True)
    samples = bootstrap(lambda idx: effect(d.iloc[idx]), len(d), resamples, seed=5)
    paper = ", ".join(f"{m} {v:.2f}" for m, v in paper_r2.items())
    return [claim("rec_div_predict_best", "recognizability and diversity together explain classifier performance "
                  "better than FID or LPIPS", "Fan et al. appendix D",
                  f"adjusted R² of −log loss: rec+div − best of FID, LPIPS ({len(d)} configurations)", samples,
                  effect(d), f"bootstrap over {len(d)} configurations ({resamples:,} resamples)",
                  paper=f"R²: {paper}", section="5. Which image metric predicts performance?")]


def ood_gap_claims(study: Study, spec: str, splits: list[str], size: int, resamples: int = 1000) -> list:
    """Fan et al. Fig. 1/4: synthetic data closes the gap to real more out of distribution than in it. Per OOD
    split, the gap in val loss (real − synthetic; > 0: synthetic better) minus the same gap on val, for ``spec``
    at ``size``; loss, not top-1, so the comparison does not shrink toward chance on hard sets. Each split's images
    are bootstrapped on their own, training seeds too."""
    rng = np.random.default_rng(11)
    reps = {}
    for split in ["val", *splits]:
        n = len(next(v for (d, s, sp, _), v in study.losses.items() if sp == split))
        w = resample_weights(n, resamples, seed=zlib.crc32(split.encode()))
        noise = _split_noise(study, size, split)
        r_real = _replicates(study, "real", size, w, rng, noise, split)
        r_syn = _replicates(study, spec, size, w, rng, noise, split)
        reps[split] = (r_real[0] - r_syn[0], r_real[1] - r_syn[1], n, noise)
    out = []
    for split in splits:
        g, gr, n, noise = reps[split]
        out.append(claim(f"ood_gap_narrows.{split}", "synthetic data narrows (or reverses) the gap to real "
                         "out of distribution more than in distribution", "Fan et al. sec. 4.5, Fig. 1/4",
                         f"gap on {split} − gap on val; gap = loss(real) − loss({spec}) at {size:,}",
                         gr - reps["val"][1], g - reps["val"][0],
                         f"bootstrap over the {n:,} {split} and {reps['val'][2]:,} val images and "
                         f"{noise.describe(len(study.seeds))} ({resamples:,} resamples)",
                         paper="synthetic ahead of real on ImageNet-R/-Sketch at 4M",
                         section="1. Out-of-distribution scaling"))
    return out


def per_class_claim(per_class: pd.DataFrame, spec: str, resamples: int = 1000) -> list:
    """Fan et al. appendix G (Fig. A13, A5): per class, scaling ability k rises with recognizability, and hardly
    with diversity. Spearman correlations over classes for ``spec`` (the paper: SD, IN-Captions, CFG 2; columns
    ``data``, ``class``, ``k``, ``recognizability``, ``diversity``), bootstrapped over classes."""
    d = per_class[per_class.data == spec].dropna(subset=["k", "recognizability", "diversity"]).reset_index(drop=True)
    if d["class"].duplicated().any():  # a class counted twice (e.g. once per training seed) narrows the interval
        twice = sorted(d.loc[d["class"].duplicated(), "class"].astype(str).unique())
        raise ValueError(f"per-class table of {spec} has {len(twice)} classes more than once ({', '.join(twice[:5])}):"
                         " give one row per class (average the training seeds first)")

    def rho(df: pd.DataFrame, col: str) -> float:
        return float(df["k"].corr(df[col], method="spearman"))

    how = f"bootstrap over {len(d)} classes ({resamples:,} resamples)"
    return [claim("k_rises_with_recognizability", "per class, the scaling ability rises with recognizability",
                  "Fan et al. appendix G, Fig. A13/A5", f"Spearman ρ(k, recognizability) over classes, {spec}",
                  bootstrap(lambda i: rho(d.iloc[i], "recognizability"), len(d), resamples, seed=7),
                  rho(d, "recognizability"), how, paper="positive correlation", section="5. Recognizability and "
                  "diversity by scaling ability"),
            claim("recognizability_over_diversity", "recognizability matters more for a class's scaling than "
                  "diversity", "Fan et al. appendix G, Fig. A13",
                  f"ρ(k, recognizability) − ρ(k, diversity) over classes, {spec}",
                  bootstrap(lambda i: rho(d.iloc[i], "recognizability") - rho(d.iloc[i], "diversity"), len(d),
                            resamples, seed=7),
                  rho(d, "recognizability") - rho(d, "diversity"), how, paper="diversity: negligible correlation",
                  section="5. Recognizability and diversity by scaling ability")]


def probe_claims(hits: dict[tuple[str, int, int, str], np.ndarray], real_size: int, synthetic_size: int,
                 resamples: int = 1000) -> list:
    """Fan et al. Tables A7/A8: a classifier trained on real images gives better features for linear probes than
    one trained on synthetic images, tested per synthetic configuration (the paper's claim is "above every
    configuration"; a comparison with the best of N would be biased by the choice). Effect: the mean probe score over
    the tasks (Table A2's metric of each: top-1, or mean per-class accuracy), real (at its own largest size) minus
    the configuration (at ``synthetic_size``), in points. ``hits[(data, size, train_seed, task)]``: each test
    image's share of that classifier's probe score (``supervised.probes``' ``items``; for top-1 sets its hit).
    Interval: a paired bootstrap over each task's test images (one draw per task, shared by every model) and the
    training noise of each model's mean over its seeds (pooled over the models), so it covers the noise of training
    the feature extractor."""
    tasks = sorted({t for *_, t in hits})
    w = {t: resample_weights(len(next(v for k, v in hits.items() if k[3] == t)), resamples,
                             seed=zlib.crc32(t.encode())) for t in tasks}
    rng = np.random.default_rng(9)
    score = {(d, s, sd): float(np.mean([100 * hits[(d, s, sd, t)].mean() for t in tasks])) for d, s, sd, _ in hits}
    noise = _pooled(score)  # of the mean top-1 over the tasks, in points

    def at(data: str, size: int) -> tuple[float, np.ndarray]:
        seeds = sorted({sd for d, s, sd, _ in hits if d == data and s == size})
        per = np.stack([np.mean([100 * hits[(data, size, sd, t)].astype(float) @ w[t] for t in tasks], 0)
                        for sd in seeds])  # [seeds, R]: mean top-1 over tasks, in points
        pts = [score[(data, size, sd)] for sd in seeds]
        return float(np.mean(pts)), seed_mean(per, noise, rng, pts)

    real, real_reps = at("real", real_size)
    n_test = sum(w[t].shape[0] for t in tasks)
    n_seeds = len({sd for d, s, sd, _ in hits if d == "real" and s == real_size})
    out = []
    for c in sorted({d for d, s, _, _ in hits if d != "real" and s == synthetic_size}):
        syn, syn_reps = at(c, synthetic_size)
        out.append(claim(f"real_features_probe_better.{c}", "features learnt from real images probe better on "
                         "downstream tasks than features learnt from synthetic ones", "Fan et al. Tables A7/A8 "
                         "(DS average)", f"mean linear-probe score (points; Table A2's metric per task) over "
                         f"{len(tasks)} tasks: real at "
                         f"{real_size:,} − {c} at {synthetic_size:,}", real_reps - syn_reps, real - syn,
                         f"paired bootstrap over {n_test:,} test images of {len(tasks)} tasks and "
                         f"{noise.describe(n_seeds)} ({resamples:,} resamples)",
                         paper="real above every synthetic configuration at 1M (DS average)",
                         section="2. Linear probes"))
    return out


def clip_mixing_claims(val_losses: dict, scales: list[int], cfg: float, main_hparams: dict[int, str],
                       resamples: int = 1000, val_hits: dict | None = None) -> tuple[list, object]:
    """Fan et al. sec. 5.2 (Fig. 8, Tables 1/A12) on CLIPs trained on real, synthetic and synthetic+real captions:
    each mode's zero-shot loss follows a power law in the caption count; synthetic+real beats real at the smallest
    scale; synthetic alone trails real at the largest. ``val_losses[(mode, n, hparams, cfg, seed)]``: per-image
    zero-shot losses on val; only the main runs (``cfg``, the hyper-parameter set each scale uses) are compared.
    Intervals: bootstrap over val images and over the seeds a mode was trained with (real's ``noise_seeds``).
    With ``val_hits`` (per-image hits, keyed as the losses) the two comparisons are in zero-shot top-1 points, the
    paper's metric for them (Table 1); the power laws stay on the loss (eq. 2)."""
    main = {(mode, n, seed): v for (mode, n, hp, g, seed), v in val_losses.items()
            if g == cfg and hp == main_hparams.get(n)}
    bf = bootstrap_fits(main, scales[0], None, resamples)
    out = [claim(f"clip_power_law.{m}", "the zero-shot loss falls as a power law of the number of captions",
                 "Fan et al. sec. 5.2, Fig. 8", f"scaling ability k of {m} over {scales[0]:,}–{scales[-1]:,} captions",
                 bf.k_samples[m], bf.k[m], bf.interval, paper="power law for real, synthetic and synthetic+real",
                 section="2. Zero-shot loss vs scale", caveat=bf.power_law_caveat(m)) for m in bf.k]
    n_img = len(next(iter(main.values())))
    w = resample_weights(n_img, resamples, seed=13)
    rng = np.random.default_rng(13)
    top1 = None if val_hits is None else {(mode, n, seed): 100 * np.asarray(v, dtype=float)
                                         for (mode, n, hp, g, seed), v in val_hits.items()
                                         if g == cfg and hp == main_hparams.get(n)}
    noise = _pooled(top1 or main)
    how = (f"bootstrap over {n_img:,} val images and {noise.describe(max(len(v) for v in _cells(top1 or main)))} "
           f"({resamples:,} resamples)")

    def at(mode: str, n: int) -> tuple[float, np.ndarray] | None:
        runs = [v for (m, nn, _), v in sorted((top1 or main).items()) if m == mode and nn == n]
        return _mean_replicates(runs, w, rng, noise) if runs else None

    for a, b, n, key, statement, paper in (
            ("real", "synthetic+real", scales[0], "mixed_beats_real_small", "adding synthetic images to real ones "
             "beats real alone at small scales", "Table 1: +1.6 to +4.6 zero-shot points at 1M-4M"),
            ("synthetic", "real", scales[-1], "synthetic_trails_real_large", "synthetic images alone trail real ones "
             "as the scale grows", "Table 1: synthetic below real from 4M on")):
        x, y = at(a, n), at(b, n)
        if x is None or y is None:
            continue
        if top1 is not None:  # higher is better: the effect is b − a, in points
            x, y = y, x
        what = "top-1 (points)" if top1 is not None else "loss"
        pair = f"{b} − {a}" if top1 is not None else f"{a} − {b}"
        out.append(claim(key, statement, "Fan et al. sec. 5.2, Table 1/A12",
                         f"val zero-shot {what}, {pair}, at {n:,} captions", x[1] - y[1], x[0] - y[0], how,
                         paper=paper, section="6. Do the paper's findings hold here?"))
    return out, bf


def retrieval_claims(hits: dict[tuple[str, str, int, int], np.ndarray], base: dict[str, np.ndarray],
                     equal_size: int, pool_size: int, beyond_size: int | None, resamples: int = 1000) -> list:
    """Geng et al.'s claims on adapted CLIPs, from per-test-image hits: ``hits[(metric, arm, images, seed)]`` (metric
    ``lp`` or ``zs``, arm ``retrieved`` / ``synthetic``), ``base[metric]`` the unadapted CLIP's. Every comparison is
    paired on the same test images (one bootstrap draw shared by every model), with the finetuning noise of each arm's
    mean over its seeds (pooled per metric): retrieved beats synthetic at equal size (linear probe; zero-shot),
    retrieved adaptation gains over the unadapted CLIP, and synthetic data beyond the retrievable pool still lags the
    pool itself."""
    n = len(next(iter(base.values())))
    w = resample_weights(n, resamples, seed=19)
    rng = np.random.default_rng(19)
    noise = {m: _pooled({k: np.asarray(v, dtype=float) for k, v in hits.items() if k[0] == m}) for m in base}
    how = (f"paired bootstrap over {n:,} test images and the "
           f"{noise['lp'].describe(max(len(v) for v in _cells(hits))).replace('training', 'finetuning')} "
           f"({resamples:,} resamples)")

    def at(metric: str, arm: str, k: int) -> tuple[float, np.ndarray]:
        runs = [v for (m, a, kk, _), v in sorted(hits.items()) if m == metric and a == arm and kk == k]
        if not runs:
            raise KeyError(f"no {arm} runs at {k} images")
        return _mean_replicates([np.asarray(v, dtype=float) for v in runs], w, rng, noise[metric])

    b = {m: (float(np.mean(v)), np.asarray(v, dtype=float) @ w) for m, v in base.items()}
    src = "Geng et al. sec. 4, Fig. 2"
    out = []
    (r, rr), (s, sr) = at("lp", "retrieved", equal_size), at("lp", "synthetic", equal_size)
    out.append(claim("retrieved_beats_synthetic_lp", "at equal size, targeted retrieved images adapt CLIP better than "
                     "targeted synthetic images (linear probe)", src,
                     f"linear-probe top-1, retrieved − synthetic, {equal_size:,} images each", rr - sr, r - s, how,
                     paper="Aircraft 250k: 83.5% vs 68.8% (+14.7 points)", section="7. The paper's claims"))
    out.append(claim("retrieved_gains_lp", "adapting on targeted retrieved images improves the linear probe over the "
                     "unadapted CLIP", src, f"linear-probe top-1, retrieved at {equal_size:,} images − unadapted",
                     rr - b["lp"][1], r - b["lp"][0], how, paper="Aircraft 250k: +18.6 points",
                     section="7. The paper's claims"))
    if beyond_size is not None:
        (p, pr), (sb, sbr) = at("lp", "retrieved", pool_size), at("lp", "synthetic", beyond_size)
        out.append(claim("synthetic_beyond_pool_lags", "synthetic data scaled beyond the retrievable pool still lags "
                         "the whole retrievable pool", "Geng et al. sec. 4, Fig. 2 (grey region)",
                         f"linear-probe top-1, retrieved at the whole pool ({pool_size:,} images) − synthetic at "
                         f"{beyond_size:,}", pr - sbr, p - sb, how,
                         paper="2.5M synthetic ≈ 31.25k retrieved < 341k retrieved", section="7. The paper's claims"))
    (r, rr), (s, sr) = at("zs", "retrieved", equal_size), at("zs", "synthetic", equal_size)
    out.append(claim("retrieved_beats_synthetic_zs", "adapting on retrieved images raises zero-shot accuracy more "
                     "than adapting on synthetic images", "Geng et al. sec. 4, Fig. 4",
                     f"zero-shot top-1, retrieved − synthetic, {equal_size:,} images each", rr - sr, r - s, how,
                     paper="retrieved 42.6% (31.25k) vs synthetic 29.0% (2.5M)", section="7. The paper's claims"))
    return out


def task_replicates(items: dict[tuple[str, str], np.ndarray], resamples: int = 1000
                    ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """One model's SynthCLIP task scores (percent, mean over each task's sets of the mean over its items: as
    ``synthclip.five_tasks`` computes them) and their bootstrap replicates ``[resamples]``. The items of every
    (task, set) are drawn from a seed fixed by the pair's name, so every model is resampled alike (paired)."""
    point, reps = {}, {}
    for task in dict.fromkeys(t for t, _ in items):
        sets = [(s, np.asarray(v, dtype=float)) for (t, s), v in items.items() if t == task]
        point[task] = 100 * float(np.mean([v.mean() for _, v in sets]))
        reps[task] = 100 * np.mean([v @ resample_weights(len(v), resamples, zlib.crc32(f"{task}/{s}".encode()))
                                    for s, v in sets], axis=0)
    return point, reps


def synthclip_claims(items: dict[str, list[dict]], sizes: list[int], resamples: int = 1000,
                     mixes: Sequence[tuple[int, int]] | None = None) -> list:
    """SynthCLIP's claims as Δ_MTL over its five tasks, each with a bootstrap interval over the tasks' evaluation items
    (test images, few-shot episodes, retrieval queries; paired across models) and the training noise of each model's
    mean over its seeds (per task, pooled over the models). ``items[run]``: one ``five_tasks(items=...)`` dict per
    training seed, runs named as notebook 08 names them (``CLIP real-<n>``, ``SynthCLIP-<n>``, ``SynthCLIP-<n> random``,
    ``SynthCLIP-<n> C_rand``, ``Mixed real-<r> + synth-<s>``); a claim whose runs are missing is skipped.
    ``mixes``: Table 7's (real, synthetic) pair counts (default: the smallest size of each); each mix is set against
    the real pairs it holds (the paper's comparison: the mix has more pairs), real and synthetic runs of its total
    size (like with like: Table 7 sets its 20M mix beside SynthCLIP-20M), else its synthetic half."""
    rng = np.random.default_rng(23)
    got = {name: [task_replicates(it, resamples) for it in per_seed] for name, per_seed in items.items()}
    noise = {t: SeedNoise.pooled([p[t] for p, _ in g] for g in got.values()) for t in SYNTHCLIP_TASKS}
    runs = {}
    for name, g in got.items():
        point = {t: float(np.mean([p[t] for p, _ in g])) for t in SYNTHCLIP_TASKS}
        reps = {t: seed_mean(np.stack([r[t] for _, r in g]), noise[t], rng, [p[t] for p, _ in g])
                for t in SYNTHCLIP_TASKS}
        runs[name] = (point, reps)
    n_seeds = max(len(v) for v in items.values())
    how = (f"bootstrap over the tasks' test images, few-shot episodes and retrieval queries, and "
           f"{noise[SYNTHCLIP_TASKS[0]].describe(n_seeds)} ({resamples:,} resamples)")

    def dmtl(a: str, b: str) -> tuple[float, np.ndarray]:
        (pa, ra), (pb, rb) = runs[a], runs[b]
        samples = np.array([delta_mtl({t: ra[t][r] for t in SYNTHCLIP_TASKS}, {t: rb[t][r] for t in SYNTHCLIP_TASKS},
                                      zero="nan") for r in range(resamples)])
        return delta_mtl(pa, pb, zero="nan"), samples

    lo, hi = sizes[0], sizes[-1]
    specs = [(f"synthclip_trails_real.{n}", "at equal size, SynthCLIP trails a CLIP trained on real pairs",
              "SynthCLIP Table 1c", f"SynthCLIP-{n}", f"CLIP real-{n}", -1,
              "Δ_MTL −5.6% (3M vs CC3M), −15.0% (8.8M vs CC12M)") for n in sizes]
    if hi > lo:
        specs.append(("more_synthetic_beats_smaller_real", "enough more synthetic pairs beat a CLIP trained on fewer "
                      "real pairs", "SynthCLIP Table 1c", f"SynthCLIP-{hi}", f"CLIP real-{lo}", 1,
                      "Δ_MTL +31.3% (SynthCI-8.8M vs CC3M)"))
    specs += [("balanced_beats_random", "MetaCLIP's balanced sampling beats random sampling of the caption pool",
               "SynthCLIP sec. 3.2, Table 3a", f"SynthCLIP-{lo}", f"SynthCLIP-{lo} random", 1,
               "balanced above random on all five tasks"),
              ("concept_bank_beats_crand", "the full concept bank beats a random concept subset of the size real "
               "captions match", "SynthCLIP Table 4", f"SynthCLIP-{lo}", f"SynthCLIP-{lo} C_rand", 1,
               "C above C_rand on all five tasks")]
    mixes = list(mixes) if mixes is not None else [(lo, lo)]
    for r, s in mixes:
        mix, total, tag = f"Mixed real-{r} + synth-{s}", r + s, "" if len(mixes) == 1 else f".{r}+{s}"
        syn = f"SynthCLIP-{total}" if f"SynthCLIP-{total}" in runs else f"SynthCLIP-{s}"
        specs += [(f"mixed_beats_real{tag}", "adding synthetic pairs to the real ones beats the real pairs alone (the "
                   "paper's comparison: the mix has more pairs and steps)", "SynthCLIP Table 7", mix, f"CLIP real-{r}",
                   1, "mixed above CC12M alone on all five tasks"),
                  (f"mixed_beats_real_equal_pairs{tag}", "at equal pairs and steps, a real+synthetic mix beats real "
                   "pairs alone (like with like; the paper does not run it)", "SynthCLIP Table 7", mix,
                   f"CLIP real-{total}", 1, "not run in the paper (its mix adds pairs)"),
                  (f"mixed_beats_synthetic{tag}", "training on real and synthetic pairs together beats synthetic "
                   "alone" + (" at equal pairs" if syn == f"SynthCLIP-{total}" else ""), "SynthCLIP Table 7", mix, syn,
                   1, "mixed (8.8M + 11.2M) above SynthCLIP-20M and -30M on all five tasks")]
    out = []
    for key, statement, source, a, b, sign, paper in specs:
        if a not in runs or b not in runs:
            continue
        d, samples = dmtl(a, b)
        measure = f"Δ_MTL of {a} vs {b} (%)" if sign > 0 else f"−Δ_MTL of {a} vs {b} (%)"
        out.append(claim(key, statement, source, measure, sign * samples, sign * d, how, paper=paper,
                         section="6. The paper's claims"))
    return out


def generator_claims(study: Study, best: dict[str, str], fit_range: tuple[float, float] | None, ref_size: float,
                     baseline: str = "sd", resamples: int = 1000) -> tuple[list, object]:
    """Notebook 09's comparison of generators, each at its best guidance (``best``: generator -> spec): for every
    generator but ``baseline`` (SD 1.5, the paper's reference), its scaling ability k minus SD's and its val loss at
    ``ref_size`` against SD's, bootstrapped over val images (paired: the same draw for every curve) and training
    seeds (:func:`~synscale.analysis.scaling.bootstrap_fits`). Returns the claims and the fits."""
    losses = study.split_losses("val", data=list(best.values()))
    bf = bootstrap_fits(losses, ref_size, fit_range, resamples)
    ks, k, ps, p = bf.k_samples, bf.k, bf.performance_samples, bf.performance
    ref = best.get(baseline)
    out = []
    for g, spec in best.items():
        if g == baseline or ref not in k or spec not in k:
            continue
        out.append(claim(f"generator_k.{g}", f"{g} scales better than SD 1.5 as training data (higher k)",
                         BEYOND + ", after Fan et al. sec. 4.3's k", f"k({spec}) − k({ref})",
                         ks[spec] - ks[ref], k[spec] - k[ref], bf.interval,
                         paper="no paper value: the papers stop at SD 1.5, Imagen and Muse",
                         section="3. Scaling ability of each generator"))
        out.append(claim(f"generator_d_i.{g}", f"{g}'s images train a better classifier than SD 1.5's at D_I",
                         BEYOND + ", after Fan et al. sec. 4.3's performance at D_I",
                         f"performance at D_I = {ref_size:,.0f}: −log loss({spec}) + log loss({ref})",
                         ps[spec] - ps[ref], p[spec] - p[ref], bf.interval,
                         paper="no paper value: the papers stop at SD 1.5, Imagen and Muse",
                         section="3. Scaling ability of each generator"))
    return out, bf
