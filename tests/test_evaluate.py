"""Classifier evaluation against timm's validate-style loss/top-1; linear probing."""
import numpy as np
import pytest
import torch

from synscale.methods import evaluate


def test_classification_matches_timm_validate_style_metrics():
    from timm.utils import accuracy

    rng = np.random.default_rng(0)
    logits = torch.as_tensor(rng.normal(size=(200, 5)), dtype=torch.float32)
    y = torch.as_tensor(rng.integers(0, 5, 200))
    res, per = evaluate.classification(logits.numpy(), y.numpy(), 5)
    assert res["loss"] == pytest.approx(float(torch.nn.CrossEntropyLoss()(logits, y)), rel=1e-6)
    assert res["top1"] * 100 == pytest.approx(float(accuracy(logits, y, topk=(1,))[0]), rel=1e-6)
    # per-class rows average back to the totals, weighted by their counts
    assert (per["n"] * per["loss"]).sum() / 200 == pytest.approx(res["loss"], rel=1e-6)
    assert (per["n"] * per["top1"]).sum() / 200 == pytest.approx(res["top1"], rel=1e-6)


def test_classification_marks_absent_classes_and_rejects_bad_shapes():
    _, per = evaluate.classification(np.eye(3)[[0, 1, 1]], np.array([0, 1, 1]), 4)
    assert per.loc[3, "n"] == 0 and np.isnan(per.loc[3, "top1"])
    with pytest.raises(ValueError, match="logits must be"):
        evaluate.classification(np.zeros((3, 2)), np.zeros(4, int), 2)


def test_linear_probe_separates_separable_features_and_not_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    informative = np.eye(3)[y] * 3 + rng.normal(size=(300, 3))
    noise = rng.normal(size=(300, 3))
    good = evaluate.linear_probe(informative[:200], y[:200], informative[200:], y[200:])
    bad = evaluate.linear_probe(noise[:200], y[:200], noise[200:], y[200:])
    assert good["top1"] > 0.9 and bad["top1"] < 0.55 and good["n_test"] == 100
