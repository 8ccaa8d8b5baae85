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


# ------------------------------------------------------------------------------------ zero-shot classifier (CLIP)
_ZS_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot",
               "hat", "scarf"]  # 12 classes: more than open_clip's 10 per forward pass, so two batches
_ZS_TEMPLATES = ["a photo of a {}.", lambda c: f"itap of the {c}.", "{} for sale"]  # format strings and callables


def _mini_clip():
    from synscale.methods import clip

    torch.manual_seed(0)
    model, _, tokenizer = clip.create()
    return model, tokenizer


def test_zero_shot_classifier_is_open_clips_build_zero_shot_classifier():
    import open_clip

    model, tokenizer = _mini_clip()
    model.train()  # ours evaluates in eval mode and restores the mode
    w = evaluate.zero_shot_classifier(model, tokenizer, _ZS_CLASSES, _ZS_TEMPLATES)
    assert model.training
    assert w.shape == (model.text_projection.shape[1], len(_ZS_CLASSES)) and w.dtype == torch.float32
    model.eval()
    as_callables = [lambda c, t=t: t.format(c) if isinstance(t, str) else t(c) for t in _ZS_TEMPLATES]
    ref = open_clip.build_zero_shot_classifier(model, tokenizer, _ZS_CLASSES, as_callables)
    assert torch.equal(w, ref)  # the same call: bit-identical


def test_zero_shot_classifier_agrees_with_a_per_class_loop():
    """The batched (open_clip) classifier against one forward pass per class: on the CPU it was bit-identical with
    one torch thread and within 5e-8 with two; 1e-6 allows other BLAS splits. Predictions must not change."""
    from synscale.methods.clip import to_tensor

    model, tokenizer = _mini_clip()
    w = evaluate.zero_shot_classifier(model, tokenizer, _ZS_CLASSES, _ZS_TEMPLATES)
    cols = []
    with torch.no_grad():
        for c in _ZS_CLASSES:
            texts = [t.format(c) if isinstance(t, str) else t(c) for t in _ZS_TEMPLATES]
            e = torch.nn.functional.normalize(model.encode_text(tokenizer(texts)).float(), dim=-1).mean(dim=0)
            cols.append(torch.nn.functional.normalize(e, dim=0))
    ref = torch.stack(cols, dim=1)
    torch.testing.assert_close(w, ref, rtol=0, atol=1e-6)
    x = to_tensor(np.random.default_rng(0).integers(0, 256, (64, 32, 32), dtype=np.uint8), model)
    logits = evaluate.zero_shot_logits(model, x, w)
    assert torch.equal(logits.argmax(1), evaluate.zero_shot_logits(model, x, ref).argmax(1))
    torch.testing.assert_close(w.norm(dim=0), torch.ones(len(_ZS_CLASSES)), rtol=0, atol=1e-6)


def test_table_a2_items_average_to_each_sets_own_metric():
    """Aircraft, Pets, Caltech-101 and Flowers are scored by mean per-class accuracy (Fan Table A2): per-image
    weights whose mean is that score; other sets keep their hits (top-1)."""
    from synscale.methods import evaluate

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), [50, 10, 2])
    hits = rng.random(len(labels)) < np.where(labels == 0, 0.9, 0.2)
    items = evaluate.table_a2_items("aircraft", hits, labels)
    assert np.isclose(items.mean(), evaluate.mean_per_class(hits, labels))
    assert not np.isclose(items.mean(), hits.mean())  # unbalanced: the two metrics differ here
    assert np.array_equal(evaluate.table_a2_items("cifar10", hits, labels), hits.astype(float))
