"""Notebook 09: every registered text-to-image generator measured the papers' way, side by side.

Per generator (``params/generators.yaml``): a guidance sweep of its IN-Captions sets (recognizability, diversity, FID:
:class:`~synscale.methods.imagesets.Sweep`), a classifier at D_I per guidance scale, its best scale (the lowest val
loss at D_I, as Fan et al. App. C pick each family's CFG by the ImageNet classifier it trains), then its scaling curve
at that scale over 04's sizes and the power-law fit (k, performance at D_I). These helpers turn the measurements into
the choice and the leaderboard; the notebook holds the narrative and the figures.
"""
from __future__ import annotations

import pandas as pd

from synscale.analysis.reference import PAPER_MODEL, fan_configs
from synscale.data import generators
from synscale.studies.supervised import DataSpec

PROMPTS = "in_captions"  # Fan et al. Table A5 compares the families with IN-Captions prompts


def sweep_specs(guidance: dict[str, list[float]]) -> dict[str, list[str]]:
    """generator -> its IN-Captions specs, one per guidance scale (``sd/in_captions/2`` …)."""
    return {g: [str(DataSpec(g, PROMPTS, float(s))) for s in scales] for g, scales in guidance.items()}


def guidance_for(names: list[str], override: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Each generator's guidance scales: the params' override where it names the generator, else its registry
    entry's (the model card's range; Fan App. C for the paper's three)."""
    override = override or {}
    return {g: sorted(float(s) for s in override.get(g, generators.get(g).guidance)) for g in names}


def steps_for(names: list[str], gen_steps: dict[str, int] | None = None) -> dict[str, int]:
    """Each generator's sampler steps: the params' where they name it, else its registry entry's (the model card's)."""
    gen_steps = gen_steps or {}
    return {g: int(gen_steps.get(g, generators.get(g).steps)) for g in names}


def sweep_sets(world, oracle, guidance: dict[str, list[float]], weights: dict[str, str], n_per_class: int,
               steps: dict[str, int], seed: int, **sweep_kwargs) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Each generator's IN-Captions sets at its guidance scales, measured as notebook 02 measures them
    (:class:`~synscale.methods.imagesets.Sweep`: recognizability, diversity, FID, LPIPS, cached beside each set):
    the metrics (one row per generator and scale), per class, and a few samples per class of each set."""
    from synscale.methods.imagesets import Sweep

    rows, per_class, samples = [], [], {}
    for g, scales in guidance.items():
        sweep = Sweep(world, oracle, g, weights[g], n_per_class, steps, seed, keep_per_class=5, **sweep_kwargs)
        m, pc, samples[g] = sweep.run(PROMPTS, scales)
        rows.append(m.rename(columns={"family": "generator"}))
        per_class.append(pc.rename(columns={"family": "generator"}))
    return pd.concat(rows, ignore_index=True), pd.concat(per_class, ignore_index=True), samples


def with_d_i(sweep: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """The sweep's rows with the val loss and top-1 of their sets' classifiers at D_I (mean over training seeds)."""
    val = metrics[metrics.split == "val"].groupby("data")[["loss", "top1"]].mean().reset_index()
    parsed = [DataSpec.parse(d) for d in val.data]
    val = val.assign(generator=[p.family for p in parsed], cfg=[p.cfg for p in parsed]).drop(columns="data")
    return sweep.merge(val, on=["generator", "cfg"], how="left")


def best_guidance(sweep: pd.DataFrame) -> dict[str, str]:
    """generator -> the spec of its scale whose classifiers have the lowest val loss at D_I (:func:`with_d_i`)."""
    rows = sweep.loc[sweep.groupby("generator", sort=False).loss.idxmin()]
    return {r.generator: str(DataSpec(r.generator, PROMPTS, float(r.cfg))) for r in rows.itertuples()}


def paper_best() -> pd.DataFrame:
    """Fan et al. Table A5 (IN-Captions) at each family's best guidance, the lowest ImageNet loss at 1.3M, its scale
    in our generators' terms (aMUSEd's = 1 + Muse's)."""
    rows = []
    for key, name in PAPER_MODEL.items():
        t = fan_configs(name)
        t = t[t.config == PROMPTS]
        if len(t):
            r = t.loc[t.in_loss.idxmin()]
            cfg = float(r.cfg_scale) + (1.0 if key == "muse" else 0.0)  # aMUSEd's scale is 1 + Muse's (as 02 maps)
            rows.append({"generator": key, "paper_model": name, "paper_cfg": cfg,
                         "paper_loss": float(r.in_loss), "paper_top1": float(r.in_top1),
                         "paper_recognizability": float(r.recognizability), "paper_diversity": float(r.diversity),
                         "paper_fid": float(r.fid)})
    return pd.DataFrame(rows)


def leaderboard(sweep: pd.DataFrame, fit: pd.DataFrame, best: dict[str, str]) -> pd.DataFrame:
    """One row per generator at its best guidance, ranked by scaling ability k: the set's recognizability, diversity
    and FID and its classifiers' val loss and top-1 at D_I (``sweep``, :func:`with_d_i`), k and the performance at D_I
    with their intervals (``fit``), and the paper's Table A5 values where the paper measured that family."""
    f = fit.set_index("data")
    rows = []
    for g, spec in best.items():
        cfg = DataSpec.parse(spec).cfg
        s = sweep[(sweep.generator == g) & (sweep.cfg == cfg)].iloc[0]
        rows.append({"generator": g, "what": generators.get(g).what.split(":")[0], "best_cfg": cfg,
                     "recognizability": s.recognizability, "diversity": s.diversity, "fid": s.fid,
                     "loss_at_d_i": s.loss, "top1_at_d_i": s.top1,
                     **{c: f.loc[spec, c] for c in ("k", "k_lo", "k_hi", "performance", "perf_lo", "perf_hi")}})
    board = pd.DataFrame(rows).merge(paper_best(), on="generator", how="left")
    board = board.sort_values("k", ascending=False, ignore_index=True)
    board.insert(0, "rank", range(1, len(board) + 1))
    return board
