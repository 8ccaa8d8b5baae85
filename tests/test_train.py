"""Supervised trainer: resume equals an uninterrupted run; timm folder round trip."""
import numpy as np
import pytest
import torch

from synscale import checkpoint as ckpt
from synscale import train
from synscale.checkpoint import TrainConfig, batch_indices

ARGS = {"channels": [8, 16, 16, 16]}


def toy(n=64):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def fresh():
    torch.manual_seed(0)
    return train.create("resnet18", 10, **ARGS)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, monkeypatch):
    x, y = toy()
    cfg = TrainConfig(steps=6, batch_size=16, warmup=2, ckpt_every=3)
    full = fresh()
    train.train_classifier(full, x, y, cfg, tmp_path / "a", progress=False)

    real_save = ckpt.save

    def save_then_die(ckpt_dir, name, step, *a):  # the process is killed right after its step-3 checkpoint
        real_save(ckpt_dir, name, step, *a)
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train.train_classifier(fresh(), x, y, cfg, tmp_path / "b", progress=False)
    monkeypatch.setattr(ckpt, "save", real_save)
    resumed = fresh()  # a new process rebuilds the model from scratch and resumes from the checkpoint
    stats = train.train_classifier(resumed, x, y, cfg, tmp_path / "b", progress=False)
    assert stats["resumed_from"] == 3
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_timm_folder_round_trip(tmp_path):
    m = fresh().eval()
    x, _ = toy(4)
    train.save(m, tmp_path / "clf", model_args=ARGS)
    assert (tmp_path / "clf" / "config.json").exists() and (tmp_path / "clf" / "model.safetensors").exists()
    m2 = train.load(tmp_path / "clf")
    a, b = train.predict(m, x), train.predict(m2, x)
    assert np.allclose(a[0], b[0]) and a[1].shape[0] == 4


def test_batches_depend_only_on_seed_and_step():
    assert np.array_equal(batch_indices(1, 5, 100, 8), batch_indices(1, 5, 100, 8))
    assert not np.array_equal(batch_indices(1, 5, 100, 8), batch_indices(1, 6, 100, 8))
