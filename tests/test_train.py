"""Supervised trainer: resume equals an uninterrupted run; timm folder round trip."""
from pathlib import Path

import numpy as np
import pytest
import torch

from synscale.methods import train
from synscale.runtime import checkpoint as ckpt
from synscale.runtime.checkpoint import TrainConfig, batch_indices

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


def test_a_checkpoint_of_another_recipe_is_refused_not_resumed(tmp_path):
    model = torch.nn.Linear(2, 1)

    def run(config, steps=2):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        return ckpt.train_loop({"m": model}, opt, sched, lambda step: model(torch.ones(1, 2)).sum(), steps, tmp_path,
                               1, "toy", progress=False, config=config)

    run({"objective": "epsilon", "lr": 0.1})
    assert run({"objective": "epsilon", "lr": 0.1}, steps=3)["resumed_from"] == 2
    with pytest.raises(ValueError, match=r"another config \(differs in \['objective'\]\): delete it"):
        run({"objective": "v", "lr": 0.1}, steps=4)


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


# --- the paper's recipe (Table A1) on timm -----------------------------------------------------------------------
RECIPE = train.Recipe(arch="resnet18", model_args=ARGS, img_size=32, batch_size=8, lr=1.0e-3, randaug="rand-m9-n2",
                      crop_scale=(0.5, 1.0), base_size=64, base_iters=6, base_warmup=2, ckpt_every=3)


def test_recipe_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, monkeypatch):
    x, y = toy()
    full, stats = train.fit(RECIPE, x, y, 10, tmp_path / "a", progress=False)
    assert stats["steps"] == 6 and stats["warmup"] == 2
    real_save = ckpt.save

    def save_then_die(ckpt_dir, name, step, *a):
        real_save(ckpt_dir, name, step, *a)
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train.fit(RECIPE, x, y, 10, tmp_path / "b", progress=False)
    monkeypatch.setattr(ckpt, "save", real_save)
    resumed, stats = train.fit(RECIPE, x, y, 10, tmp_path / "b", progress=False)
    assert stats["resumed_from"] == 3
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_recipe_uses_timm_parts_and_the_iteration_rule():
    paper = train.Recipe.paper()
    assert (paper.batch_size, paper.lr, paper.weight_decay, paper.mixup, paper.randaug) == \
        (4096, 3.0e-3, 0.1, 0.5, "rand-m15-n2")
    assert paper.schedule(2_000_000) == (190_000, 20_000)
    assert RECIPE.schedule(128) == (12, 4)
    with pytest.raises(ValueError, match="unknown recipe keys"):
        train.Recipe.from_dict({"lr": 1.0, "epochs": 3})
    assert train.Recipe.from_dict({"betas": [0.9, 0.95]}).betas == (0.9, 0.95)
    with pytest.raises(ValueError, match="recipe.loss"):
        train.fit(train.Recipe.from_dict({**RECIPE.__dict__, "loss": "mse"}), *toy(), 10, "unused", progress=False)


def test_nested_subsets_are_balanced_prefixes():
    y = np.repeat(np.arange(4), [5, 7, 6, 9])[np.random.default_rng(0).permutation(27)]
    order = train.nested_order(y)
    assert sorted(order) == list(range(27))
    for n in (4, 8, 12, 20):
        counts = np.bincount(y[order[:n]], minlength=4)
        assert counts.max() - counts.min() <= 1
    x = np.arange(27)[:, None]
    small, big = train.nested_subset(x, y, 8)[0][:, 0], train.nested_subset(x, y, 16)[0][:, 0]
    assert set(small) <= set(big)
    with pytest.raises(ValueError, match="has 27"):
        train.nested_subset(x, y, 28)


def test_ensure_classifier_trains_once_and_reloads(tmp_path):
    x, y = toy()
    m1, s1 = train.ensure_classifier(RECIPE, "toy:a", x, y, 10, 32, root=tmp_path, progress=False)
    m2, s2 = train.ensure_classifier(RECIPE, "toy:a", x, y, 10, 32, root=tmp_path, progress=False)
    assert s1["size"] == s2["size"] == 32 and s2["data"] == "toy:a"
    # the cached model is the trained one
    assert np.allclose(train.predict(m1, x)[0], train.predict(m2, x)[0], atol=1e-5)


def test_fit_under_torchrun_keeps_the_ranks_in_step(tmp_path):
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "fixtures" / "ddp_fit.py"
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", str(script)],
                         env={**os.environ, "DDP_CKPT": str(tmp_path), "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    text = "".join(f.read_text() for f in sorted(tmp_path.glob("result_rank*.txt")))
    sums = dict(re.findall(r"rank (\d) steps 4 param-sum (\S+)", text))
    assert set(sums) == {"0", "1"} and sums["0"] == sums["1"]  # DDP averaged the same gradients on both ranks
    assert (tmp_path / "rank0").is_dir() and (tmp_path / "rank1").is_dir()


def test_dataloader_workers_train_the_same_model_as_in_process(tmp_path):
    """Batches decoded and augmented in DataLoader processes (paper scale) carry their RNG states back, so Mixup and
    dropout continue exactly as in-process: the weights are bit-identical."""
    x, y = toy()
    rec = train.Recipe.from_dict({**RECIPE.__dict__, "mixup": 0.2})
    a, _ = train.fit(rec, x, y, 10, tmp_path / "a", progress=False)
    b, _ = train.fit(rec, x, y, 10, tmp_path / "b", progress=False, workers=2)
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), k


def test_lazy_training_sets_stay_lazy_and_train_like_arrays(tmp_path):
    from PIL import Image

    from synscale.data.arrays import Take
    from synscale.data.world.folder import ImageFiles

    x, y = toy(32)
    paths = []
    for i, im in enumerate(x):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(im).save(paths[-1])
    lazy = ImageFiles(paths, 32)
    sub, ys = train.nested_subset(lazy, y, 16)
    assert isinstance(sub, Take) and np.array_equal(sub[:], train.nested_subset(x, y, 16)[0][..., None].repeat(3, -1))
    a, _ = train.fit(RECIPE, x[..., None].repeat(3, -1), y, 10, tmp_path / "a", progress=False)
    b, _ = train.fit(RECIPE, lazy, y, 10, tmp_path / "b", progress=False)
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), k


def test_many_chunk_data_ids_fit_in_a_file_name(tmp_path):
    """A 4M-image training set is 32 chunks: its data id is shortened with a hash, not a file-system error."""
    x, y = toy()
    long_id = "+".join(f"sd@1f84ddaa/in_captions/cfg2_steps50_seed{k}_n125_p013a52b6_s256" for k in range(32))
    _, s1 = train.ensure_classifier(RECIPE, long_id, x, y, 10, 16, root=tmp_path, progress=False)
    _, s2 = train.ensure_classifier(RECIPE, long_id, x, y, 10, 16, root=tmp_path, progress=False)
    folder = Path(s1["dir"]).relative_to(tmp_path).parts[0]
    assert len(folder) < 255 and "+31more-" in folder and s2["cached"] and s2["dir"] == s1["dir"]
    other = long_id.replace("seed31", "seed32")
    _, s3 = train.ensure_classifier(RECIPE, other, x, y, 10, 16, root=tmp_path, progress=False)
    assert s3["dir"] != s1["dir"]


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncate":
        del data[len(data) // 2:]
    else:
        data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_damaged_checkpoint_is_named_and_training_starts_over_to_the_same_weights(tmp_path, how):
    """Checkpoints are read with weights_only=True and checked against their size + sha256 record: a truncated or
    bit-flipped one is never resumed from; it is moved aside with a warning naming it and training starts over."""
    from synscale.runtime.integrity import CacheDamageWarning

    x, y = toy()
    cfg = TrainConfig(steps=4, batch_size=16, warmup=1, ckpt_every=2)
    full = fresh()
    train.train_classifier(full, x, y, cfg, tmp_path / "a", progress=False)
    part = TrainConfig(**{**cfg.__dict__, "steps": 2})  # a run that stopped after its step-2 checkpoint
    train.train_classifier(fresh(), x, y, part, tmp_path / "b", progress=False)
    f = tmp_path / "b" / "classifier.ckpt.pt"
    _damage(f, how)
    again = fresh()
    with pytest.warns(CacheDamageWarning, match=r"checkpoint .*classifier\.ckpt\.pt is damaged"):
        stats = train.train_classifier(again, x, y, cfg, tmp_path / "b", progress=False)
    assert stats["resumed_from"] == 0 and (tmp_path / "b" / "classifier.ckpt.pt.damaged").exists()
    for (k, a), b in zip(full.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k


def test_checkpoints_load_without_pickle(tmp_path):
    """What the loop saves loads under torch.load(weights_only=True): no file in a cache can run code."""
    x, y = toy()
    train.train_classifier(fresh(), x, y, TrainConfig(steps=2, batch_size=16, warmup=1, ckpt_every=2), tmp_path,
                           progress=False)
    state = torch.load(tmp_path / "classifier.ckpt.pt", weights_only=True)
    assert state["step"] == 2


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_damaged_cached_classifier_is_trained_again_not_read(tmp_path, how):
    from synscale.runtime.integrity import CacheDamageWarning

    x, y = toy()
    m1, s1 = train.ensure_classifier(RECIPE, "toy:a", x, y, 10, 32, root=tmp_path, progress=False)
    _damage(Path(s1["dir"]) / "model" / "model.safetensors", how)
    with pytest.warns(CacheDamageWarning, match=r"cached classifier .*model\.safetensors"):
        m2, s2 = train.ensure_classifier(RECIPE, "toy:a", x, y, 10, 32, root=tmp_path, progress=False)
    assert not s2["cached"]
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k
    _, s3 = train.ensure_classifier(RECIPE, "toy:a", x, y, 10, 32, root=tmp_path, progress=False)
    assert s3["cached"]


def test_micro_batches_accumulate_to_the_whole_batchs_update(tmp_path):
    """Table A1's batch of 4096 does not fit one GPU: the recipe splits each per-rank batch into micro-batches whose
    scaled losses accumulate to the whole batch's gradient (Mixup pairs samples across the whole batch first), so
    the update is the same as one big step (float summation order aside)."""
    import dataclasses

    x, y = toy(64)
    vit = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}  # LayerNorm: no batch stats
    rec = dataclasses.replace(RECIPE, arch="vit_base_patch16_224", model_args=vit, mixup=0.5, drop_rate=0.0,
                              drop_path_rate=0.0, batch_size=16)
    whole, s1 = train.fit(rec, x, y, 10, tmp_path / "whole", steps=3, progress=False)
    split, s2 = train.fit(dataclasses.replace(rec, micro_batch=4), x, y, 10, tmp_path / "split", steps=3,
                          progress=False)
    assert (s1["micro_batch"], s2["micro_batch"]) == (16, 4)
    for (k, a), b in zip(whole.state_dict().items(), split.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k
    with pytest.raises(ValueError, match="micro_batch 5 must divide the per-rank batch 16"):
        train.fit(dataclasses.replace(rec, micro_batch=5), x, y, 10, tmp_path / "bad", steps=1, progress=False)


def test_uint8_loader_items_normalise_to_the_float_batches_bit_for_bit():
    """DataLoader workers hand over uint8 batches (a quarter of float32's shared memory at paper scale); the main
    process's normalize gives exactly the batch the float transform gave, so trained weights do not change."""
    import random

    import torch

    from synscale.methods.train import Recipe, make_batch, normalize

    rec = Recipe.from_dict({"arch": "resnet18", "img_size": 32, "randaug": "rand-m9-mstd0.5", "crop_scale": [0.5, 1]})
    images = np.random.default_rng(0).integers(0, 256, (12, 40, 40, 3), dtype=np.uint8)
    labels = np.arange(12) % 3
    out = []
    for tf in (rec.transform(), rec.transform(uint8=True)):
        random.seed(1), np.random.seed(1), torch.manual_seed(1)
        out.append(make_batch(images, labels, np.arange(12), tf)[0])
    assert out[1].dtype == torch.uint8 and torch.equal(normalize(out[1]), out[0])
