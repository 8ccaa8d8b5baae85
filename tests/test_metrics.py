"""Recognizability and diversity against scikit-learn and hand computations."""
import numpy as np
from sklearn.metrics import f1_score

from synscale.methods.metrics import diversity, per_class_diversity, per_class_f1, recognizability


def test_recognizability_equals_sklearn_macro_f1():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 20)
    pred = np.where(rng.random(100) < 0.7, labels, rng.integers(0, 5, 100))
    ours, per = recognizability(pred, labels, 5)
    assert np.isclose(ours, f1_score(labels, pred, average="macro"))
    assert np.allclose(per, f1_score(labels, pred, average=None))


def test_recognizability_hand_case_with_a_never_predicted_class():
    labels = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 0, 0])
    # class 0: TP 2, FP 2, FN 0 -> F1 = 4/6; class 1: TP 0 -> 0
    score, per = recognizability(pred, labels, 2)
    assert np.allclose(per, [2 / 3, 0.0]) and np.isclose(score, 1 / 3)


def _f1_loop(pred, labels, num_classes):
    """The former hand-written per-class F1: 2·TP / (|pred == c| + |labels == c|), 0 when both are empty."""
    f1 = np.zeros(num_classes)
    for c in range(num_classes):
        tp = np.sum((pred == c) & (labels == c))
        denom = np.sum(pred == c) + np.sum(labels == c)
        f1[c] = 2 * tp / denom if denom else 0.0
    return f1


def test_per_class_f1_is_sklearn_with_every_class_listed():
    """Class 2 is never predicted, class 3 is predicted but absent from the labels, class 4 is neither (only
    ``num_classes`` knows it): each keeps its row, 0 where F1 is 0 or undefined, as the former loop gave."""
    rng = np.random.default_rng(1)
    labels = rng.choice([0, 1, 2], 300)
    pred = np.where(rng.random(300) < 0.6, labels, rng.choice([0, 1, 3], 300))
    pred[pred == 2] = 0
    assert 2 not in pred and 3 not in labels and 3 in pred and 4 not in np.r_[pred, labels]
    ours = per_class_f1(pred, labels, 5)
    assert ours.shape == (5,) and ours.dtype == np.float64
    np.testing.assert_array_equal(ours, _f1_loop(pred, labels, 5))  # bit-identical
    assert ours[2] == ours[3] == ours[4] == 0.0 and (ours[:2] > 0).all()
    # sklearn without labels= would drop class 4 and shift nothing else; with it, rows line up with class ids
    np.testing.assert_array_equal(ours[:4], f1_score(labels, pred, average=None, zero_division=0))
    score, per = recognizability(pred, labels, 5)
    assert score == ours.mean() and np.array_equal(per, ours)
    assert np.array_equal(per_class_f1(np.array([], int), np.array([], int), 3), np.zeros(3))  # empty set: zeros


def test_diversity_is_per_dimension_std_averaged_then_over_classes():
    feats = np.array([[0.0, 0.0], [2.0, 4.0], [1.0, 1.0], [1.0, 1.0]])
    labels = np.array([0, 0, 1, 1])
    # class 0: std per dim = [1, 2] -> 1.5 ; class 1: 0
    assert np.allclose(per_class_diversity(feats, labels, 2), [1.5, 0.0])
    assert np.isclose(diversity(feats, labels, 2)[0], 0.75)


# ---------------------------------------------------------------------------------------------- FID and LPIPS
def _fid_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg

    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_matches_the_frechet_formula_on_small_feature_sets():
    from synscale.methods.metrics import feature_fid

    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 4))
    b = rng.normal(loc=0.5, scale=1.5, size=(150, 4))
    assert np.isclose(feature_fid(a, b), _fid_by_hand(a, b), rtol=1e-4)
    assert feature_fid(a, a) < 1e-3


def test_pair_indices_are_distinct_same_class_pairs_and_seeded():
    from synscale.methods.metrics import pair_indices

    labels = np.repeat(np.arange(3), 5)
    p = pair_indices(labels, 250, seed=1)
    assert set(p) == {0, 1, 2}
    for c, ij in p.items():
        assert ij.shape == (250, 2) and (ij[:, 0] != ij[:, 1]).all() and (labels[ij] == c).all()
    assert all((p[c] == pair_indices(labels, 250, seed=1)[c]).all() for c in p)


def test_lpips_formula_by_hand():
    import torch

    from synscale.methods.metrics import lpips_from_features

    f0 = torch.zeros(1, 2, 1, 2)
    f1 = torch.zeros(1, 2, 1, 2)
    f0[0, 0] = 1.0   # unit vector e0 at both positions
    f1[0, 1, 0, 0] = 3.0  # e1 at position 0 (after normalisation), e0 at position 1
    f1[0, 0, 0, 1] = 5.0
    # position 0: |e0 - e1|^2 = 2 ; position 1: 0 -> spatial mean 1; two identical stages -> 2
    assert torch.allclose(lpips_from_features([f0, f0], [f1, f1]), torch.tensor([2.0]), atol=1e-6)


def test_lpips_per_class_averages_pairs_then_classes():
    from synscale.methods.metrics import lpips_per_class

    images = np.array([0, 0, 0, 10, 20, 30], dtype=float)
    labels = np.array([0, 0, 0, 1, 1, 1])
    mean, per = lpips_per_class(lambda a, b: np.abs(a - b), images, labels, 2, pairs=2000, seed=0)
    assert per[0] == 0.0 and abs(per[1] - 40 / 3) < 0.6  # |Δ| over distinct pairs of {10,20,30}: (10+20+10)/3
    assert np.isclose(mean, np.mean(per))
