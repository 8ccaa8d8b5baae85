"""Verdicts come from intervals; intervals come from seeded bootstraps (the same every run); each experiment's
claims test what the paper claims, on measurements built here with a known answer."""
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from synscale.analysis import findings as F
from synscale.analysis.mtl import SYNTHCLIP_TASKS
from synscale.analysis.scaling import bootstrap_fits
from synscale.studies import claims as CL


def test_the_interval_decides_the_verdict():
    assert F.verdict(0.1, 0.5) == "holds"
    assert F.verdict(-0.5, -0.1) == "contradicted"
    assert F.verdict(-0.1, 0.5) == "unresolved"
    assert F.verdict(0.0, 0.5) == "unresolved"  # touching zero is not above it
    assert F.verdict(math.nan, 1.0) == "unresolved"
    c = F.claim("k", "s", "src", "m", [1.0, 2.0, 3.0, math.nan] * 100, effect=-5.0, interval="i")
    assert (c.lo, c.hi) == pytest.approx((1.0, 3.0)) and c.verdict == "holds"  # a negative point cannot overrule it
    assert F.claim("k", "s", "src", "m", [], effect=1.0, interval="i").verdict == "unresolved"


def test_bootstraps_are_the_same_on_every_run_and_their_weights_give_resampled_means():
    a, b = F.resample_indices(50, 200, seed=3), F.resample_indices(50, 200, seed=3)
    assert np.array_equal(a, b) and not np.array_equal(a, F.resample_indices(50, 200, seed=4))
    v = np.random.default_rng(0).normal(size=50)
    w = F.resample_weights(50, 200, seed=3)
    assert np.allclose(v @ w, F.bootstrap(lambda idx: v[idx].mean(), 50, 200, seed=3))
    assert np.allclose(w.sum(0), 1.0)


def test_t_interval_matches_the_textbook_and_needs_two_values():
    m, lo, hi = F.t_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and hi - m == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)  # t_0.975,2 = 4.3027
    assert all(math.isnan(x) for x in F.t_interval([1.0])[1:])


def _curve_losses(ks, sizes=(50, 100, 200, 400, 800), seeds=(0, 1), n=400, noise=0.3, seed=0):
    """Per-image losses whose mean follows L = 2 (D/200)^-k per curve, with per-image and per-seed noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for c, k in ks.items():
        for s in sizes:
            for sd in seeds:
                mean = 2.0 * (s / 200) ** -k * math.exp(rng.normal(0, 0.01))
                out[(c, s, sd)] = (mean * np.exp(rng.normal(0, noise, n) - noise**2 / 2)).astype(np.float32)
    return out


def test_bootstrap_fits_recover_k_and_tell_curves_apart_only_when_they_differ():
    losses = _curve_losses({"real": 0.3, "synthetic": 0.1, "same": 0.3})
    bf = bootstrap_fits(losses, 200, None, resamples=300)
    assert bf.k["real"] == pytest.approx(0.3, abs=0.03) and bf.k["synthetic"] == pytest.approx(0.1, abs=0.03)
    table = bf.table()
    assert ((table.k_lo < table.k) & (table.k < table.k_hi)).all()
    study = SimpleNamespace(split_losses=lambda split: losses)
    got = {c.key: c for c in CL.scaling_claims(study, None, 200, resamples=300)[0]}
    assert got["power_law.synthetic"].verdict == "holds"
    assert got["k_below_real.synthetic"].verdict == "holds"
    assert got["k_below_real.same"].verdict == "unresolved"


def test_a_flat_curve_does_not_pass_as_a_power_law():
    losses = _curve_losses({"real": 0.3, "flat": 0.0}, seed=1)
    got = {c.key: c for c in CL.scaling_claims(SimpleNamespace(split_losses=lambda s: losses), None, 200, 300)[0]}
    assert got["power_law.real"].verdict == "holds" and got["power_law.flat"].verdict != "holds"


def _hits(p, n, rng):
    return rng.random(n) < p


def test_retrieval_claims_are_paired_on_test_images_and_oriented_as_the_paper():
    rng = np.random.default_rng(0)
    n = 2000
    base = {"lp": _hits(0.6, n, rng), "zs": _hits(0.6, n, rng)}
    hits = {}
    for seed in (0, 1):
        for k in (50, 100, 200):
            hits[("lp", "retrieved", k, seed)] = base["lp"] | _hits(0.2, n, rng)  # fixes a fifth of the errors
            hits[("zs", "retrieved", k, seed)] = base["zs"] | _hits(0.2, n, rng)
        for k in (50, 100, 200, 400):
            hits[("lp", "synthetic", k, seed)] = base["lp"].copy()  # no change
            hits[("zs", "synthetic", k, seed)] = base["zs"] & ~_hits(0.1, n, rng)  # hurts
    got = {c.key: c for c in CL.retrieval_claims(hits, base, 200, 200, 400, resamples=300)}
    assert set(got) == {"retrieved_beats_synthetic_lp", "retrieved_gains_lp", "synthetic_beyond_pool_lags",
                        "retrieved_beats_synthetic_zs"}
    assert all(c.verdict == "holds" for c in got.values())
    assert got["retrieved_gains_lp"].effect == pytest.approx(0.4 * 0.2, abs=0.02)
    same = {k: (base[k[0]] if k[1] == "retrieved" else v) for k, v in hits.items()}
    got = {c.key: c for c in CL.retrieval_claims(same, base, 200, 200, None, resamples=300)}
    assert got["retrieved_gains_lp"].verdict == "unresolved" and "synthetic_beyond_pool_lags" not in got


def _items(quality, rng, n=500):
    """five_tasks-style per-item results of a model whose accuracy is ``quality`` on every task."""
    return {("linear_probing", "a"): _hits(quality, n, rng), ("linear_probing", "b"): _hits(quality, n, rng),
            ("few_shot", "a"): np.clip(rng.normal(quality, 0.05, 100), 0, 1),
            ("image_retrieval", "r"): _hits(quality, n, rng), ("text_retrieval", "r"): _hits(quality, n, rng),
            ("zero_shot", "val"): _hits(quality, n, rng)}


def test_task_replicates_score_as_five_tasks_does():
    items = _items(0.5, np.random.default_rng(0))
    point, reps = CL.task_replicates(items, resamples=200)
    assert set(point) == set(SYNTHCLIP_TASKS)
    lp = 100 * np.mean([items[("linear_probing", s)].mean() for s in "ab"])
    assert point["linear_probing"] == pytest.approx(lp) and reps["linear_probing"].shape == (200,)
    assert abs(np.mean(reps["zero_shot"]) - point["zero_shot"]) < 1.0


def test_synthclip_claims_orient_each_delta_mtl_as_the_paper_states_it():
    rng = np.random.default_rng(0)
    quality = {"CLIP real-400": 0.6, "SynthCLIP-400": 0.4, "CLIP real-800": 0.7, "SynthCLIP-800": 0.7,
               "SynthCLIP-400 random": 0.3, "SynthCLIP-400 C_rand": 0.4, "Mixed real-400 + synth-400": 0.8}
    items = {name: [_items(q, rng) for _ in range(2)] for name, q in quality.items()}
    got = {c.key: c for c in CL.synthclip_claims(items, [400, 800], resamples=200)}
    assert got["synthclip_trails_real.400"].verdict == "holds"  # 0.4 < 0.6: trails, as the paper says
    assert got["synthclip_trails_real.400"].effect == pytest.approx(100 * (0.6 - 0.4) / 0.6, abs=5)
    assert got["synthclip_trails_real.800"].verdict == "unresolved"  # equal quality
    assert got["more_synthetic_beats_smaller_real"].verdict == "holds"
    assert got["balanced_beats_random"].verdict == "holds"
    assert got["concept_bank_beats_crand"].verdict == "unresolved"
    assert got["mixed_beats_real"].verdict == got["mixed_beats_synthetic"].verdict == "holds"
    del items["SynthCLIP-400 C_rand"]
    assert "concept_bank_beats_crand" not in {c.key for c in CL.synthclip_claims(items, [400, 800], 50)}


def test_findings_are_gathered_from_every_run_into_one_page(tmp_path, monkeypatch, capsys):
    from synscale.runtime import results

    c = [F.claim("a", "claim a", "sec. 1", "m", [0.1, 0.2], 0.15, "boot"),
         F.claim("b", "claim b", "sec. 2", "m", [-0.1, 0.2], 0.05, "boot")]
    for stem in ("03_x", "04_y"):
        run = tmp_path / stem / "mini" / "run__abc"
        (run / "tables").mkdir(parents=True)
        monkeypatch.setenv("SYNSCALE_RUN_DIR", str(run))
        shown = F.record(c)
        (run / results.PARAMS).write_text("seed: 0\n")
        results.write_json(run / results.PROVENANCE, {"status": "done"})
        assert list(shown.verdict) == ["holds", "unresolved"]
        assert results.read_json(run / results.METRICS)["claims.holds"] == 1
    df = F.collect(tmp_path, "mini")
    assert len(df) == 4 and set(df.notebook) == {"03_x", "04_y"}
    page = F.write_page(tmp_path, "mini")
    text = page.read_text()
    assert "2 holds, 0 contradicted, 2 unresolved" in text.replace("4 claims: ", "")
    assert pd.read_csv(tmp_path / "findings.csv").verdict.tolist() == df.verdict.tolist()
    assert F.write_page(tmp_path, "smoke") is None  # no runs of that profile: no page
    assert F.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 claims: 2 holds, 0 contradicted, 2 unresolved")
    assert "| 03 | claim a | m | +0.15 [+0.103, +0.198] |  | holds |" in out
    assert F.main([str(tmp_path), "--profile", "smoke"]) == 1
