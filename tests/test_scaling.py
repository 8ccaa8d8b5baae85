"""Power-law fits recover k and the performance at D_I; the paper's iteration schedule rule."""
import math

import numpy as np
import pytest

from synscale.analysis.scaling import fit_power_law
from synscale.runtime.checkpoint import iterations_for

SIZES = np.array([0.125, 0.25, 0.5, 1, 2, 4, 8]) * 1e6
D_I = 1.3e6


def power_law(k, perf, sizes=SIZES):
    return np.exp(-k * (np.log(sizes) - math.log(D_I)) - perf)


def test_noiseless_power_law_is_recovered_exactly():
    f = fit_power_law(SIZES, power_law(0.35, 1.2), D_I)
    assert f.k == pytest.approx(0.35, abs=1e-9) and f.performance == pytest.approx(1.2, abs=1e-9)
    assert f.r2 == pytest.approx(1.0) and f.n_points == len(SIZES)
    assert np.allclose(f.predict_loss(SIZES), power_law(0.35, 1.2))


def test_fit_range_ignores_the_bend_beyond_it():
    loss = power_law(0.3, 1.0)
    loss[-1] = loss[-2]  # saturation at 8M, as the paper's curves bend
    assert fit_power_law(SIZES, loss, D_I).k < 0.3 - 0.01
    f = fit_power_law(SIZES, loss, D_I, fit_range=(0.125e6, 4e6))
    assert f.k == pytest.approx(0.3, abs=1e-9) and f.n_points == 6


def test_noisy_fits_cover_the_truth_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    hits_k = hits_p = 0
    trials = 400
    for _ in range(trials):
        loss = power_law(0.4, 0.8) * np.exp(rng.normal(0, 0.05, len(SIZES)))
        f = fit_power_law(SIZES, loss, D_I)
        hits_k += f.k_ci[0] <= 0.4 <= f.k_ci[1]
        hits_p += f.performance_ci[0] <= 0.8 <= f.performance_ci[1]
    assert 0.91 <= hits_k / trials <= 0.99 and 0.91 <= hits_p / trials <= 0.99


def test_bad_inputs_fail_clearly():
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1, 2], [0.5, -1], 1)
    with pytest.raises(ValueError, match="distinct sizes inside fit_range"):
        fit_power_law(SIZES, power_law(0.3, 1), D_I, fit_range=(5e6, 6e6))


def test_iteration_rule_reproduces_the_papers_three_points():
    assert iterations_for(1e6) == (95_000, 10_000)
    assert iterations_for(2e6) == (190_000, 20_000)
    assert iterations_for(4e6) == (285_000, 30_000)
    assert iterations_for(0.125e6) == (95_000, 10_000)  # floored at the base (the paper is silent below 1M)
    assert iterations_for(0.125e6, min_fraction=0.25) == (23_750, 2_500)
