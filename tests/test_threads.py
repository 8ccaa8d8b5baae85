"""The same seed gives the same numbers whatever the thread count: training and generation pin it."""
import numpy as np
import pytest
import torch

from synscale.methods import clip, train
from synscale.runtime import threads
from synscale.runtime.checkpoint import TrainConfig


def _under(n, fn):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(old)


def test_a_classifier_trains_to_the_same_weights_with_one_and_two_threads(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (64, 32, 32), dtype=np.uint8), rng.integers(0, 10, 64)
    cfg = TrainConfig(steps=4, batch_size=32, warmup=1, ckpt_every=4)

    def fit(k):
        torch.manual_seed(0)
        m = train.create("resnet18", 10, channels=[8, 16, 16, 16])
        train.train_classifier(m, x, y, cfg, tmp_path / f"t{k}", progress=False)
        return m.state_dict()

    one, two = _under(1, lambda: fit(1)), _under(2, lambda: fit(2))
    for k in one:
        assert torch.equal(one[k], two[k]), k


def test_a_clip_trains_to_the_same_weights_with_one_and_two_threads():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, (32, 32, 32), dtype=np.uint8)
    caps = [f"a photo of a {w}" for w in ("coat", "bag", "dress", "shirt")] * 8

    def fit():
        m, _, _ = clip.train_new(x, caps, steps=3, batch_size=16, lr=1e-3, warmup=1, progress=False)
        return m.state_dict()

    one, two = _under(1, fit), _under(2, fit)
    for k in one:
        assert torch.equal(one[k], two[k]), k


def test_the_thread_count_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.count() == 3
    with threads.fixed() as n:
        assert n == 3 and torch.get_num_threads() == 3
    monkeypatch.setenv(threads.ENV, "0")
    with pytest.raises(ValueError, match="SYNSCALE_THREADS=0"):
        threads.count()
