"""Recognizability and diversity against scikit-learn and hand computations."""
import numpy as np
from sklearn.metrics import f1_score

from synscale.metrics import diversity, per_class_diversity, recognizability


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


def test_diversity_is_per_dimension_std_averaged_then_over_classes():
    feats = np.array([[0.0, 0.0], [2.0, 4.0], [1.0, 1.0], [1.0, 1.0]])
    labels = np.array([0, 0, 1, 1])
    # class 0: std per dim = [1, 2] -> 1.5 ; class 1: 0
    assert np.allclose(per_class_diversity(feats, labels, 2), [1.5, 0.0])
    assert np.isclose(diversity(feats, labels, 2)[0], 0.75)
