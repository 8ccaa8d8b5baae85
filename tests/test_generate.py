"""Generation into webdataset shards: per-sample seeds make bytes independent of batch size, sharding and resume."""
import hashlib

import numpy as np
import pytest

from synscale.data import prompts as P
from synscale.data.world import classes
from synscale.methods import generate as G
from synscale.methods import models


@pytest.fixture(scope="module")
def pipe():
    return models.t2i("sd")


@pytest.fixture(scope="module")
def ps():
    return P.make_prompts("classnames", classes.NAMES[:3], 3)


def digest(out):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("shard-*.tar"))}


def gen(pipe, ps, out, **kw):
    args = dict(guidance_scale=3.0, steps=2, seed=5, shard_size=4, batch_size=4, progress=False)
    return G.generate_dataset(pipe, ps, out, **{**args, **kw})


def test_bytes_do_not_depend_on_batch_size_or_ranks(pipe, ps, tmp_path):
    ref = digest(gen(pipe, ps, tmp_path / "a", batch_size=9))
    assert len(ref) == 3  # 9 samples in shards of 4
    assert digest(gen(pipe, ps, tmp_path / "b", batch_size=2)) == ref
    for rank in (1, 0):  # two processes, each its own shards; the last one to finish writes the index
        gen(pipe, ps, tmp_path / "c", rank=rank, world_size=2)
        assert G.is_complete(tmp_path / "c") == (rank == 0)
    assert digest(tmp_path / "c") == ref
    ds = G.read_dataset(tmp_path / "a")
    assert ds.images.shape == (9, 32, 32) and ds.images.dtype == np.uint8
    assert ds.labels.tolist() == ps.labels.tolist() and ds.prompts == list(ps.prompts)
    assert ds.seeds.tolist() == [G.sample_seed(5, i) for i in range(9)]
    # the in-memory core gives the same pixels as the shards
    imgs, _ = G.generate_images(pipe, list(ps.prompts[4:6]), ds.seeds[4:6].tolist(), 3.0, 2)
    assert np.array_equal(imgs, ds.images[4:6])


def test_resume_after_an_interrupted_shard_gives_the_same_data_set(pipe, ps, tmp_path, monkeypatch):
    ref = digest(gen(pipe, ps, tmp_path / "ref"))
    calls = {"n": 0}
    real_call = G._call

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed mid-run")
        return real_call(*a, **k)

    monkeypatch.setattr(G, "_call", dying)
    with pytest.raises(KeyboardInterrupt):
        gen(pipe, ps, tmp_path / "x", batch_size=4)
    assert len(digest(tmp_path / "x")) == 1 and not G.is_complete(tmp_path / "x")
    (tmp_path / "x" / ".shard-00001.999.tmp.tar").write_bytes(b"partial")  # a half-written shard of a dead process
    monkeypatch.setattr(G, "_call", real_call)
    gen(pipe, ps, tmp_path / "x")
    assert digest(tmp_path / "x") == ref and not list((tmp_path / "x").glob(".*.tmp*"))


def test_complete_data_sets_are_not_regenerated_and_paths_are_keyed(pipe, ps, tmp_path):
    out = gen(pipe, ps, tmp_path / "done")
    assert gen(lambda: pytest.fail("pipeline loaded"), ps, out) == out
    d = G.dataset_dir("sd", "abcd1234", ps, 7.5, 25, 0, root=tmp_path)
    assert d.parent == tmp_path / "sd@abcd1234" / "classnames" and d.name.startswith("cfg7.5_steps25_seed0_n3_p")
    other = P.make_prompts("classnames", classes.NAMES[3:6], 3)  # same config and count, other prompts
    assert G.dataset_dir("sd", "abcd1234", other, 7.5, 25, 0, root=tmp_path) != d


def test_incomplete_data_set_read_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="data set incomplete"):
        G.read_dataset(tmp_path)


def test_muse_batches_with_one_generator_per_sample():
    """AmusedPipeline hands one generator to its scheduler; synscale's per-sample scheduler makes a batch equal to
    batch-of-one calls, so Muse data sets, too, do not depend on batch size."""
    muse = models.t2i("muse")
    prompts, seeds = ["coat", "bag", "sandal"], [7, 8, 9]
    batched, _ = G.generate_images(muse, prompts, seeds, 2.0, 3, batch_size=3)
    single, _ = G.generate_images(muse, prompts, seeds, 2.0, 3, batch_size=1)
    assert np.array_equal(batched, single)
    assert not np.array_equal(batched[0], G.generate_images(muse, prompts[:1], [10], 2.0, 3)[0][0])


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_batched_amused_step_equals_diffusers_per_sample_steps(schedule):
    """The vectorized per-sample step gives, sample for sample, diffusers' own ``AmusedScheduler.step`` on a batch
    of one with that sample's generator (tokens, predictions and the generators' states after)."""
    import torch
    from diffusers import AmusedScheduler

    stock = AmusedScheduler(mask_token_id=16, masking_schedule=schedule)
    batched = G.per_sample_scheduler(stock)
    for s in (stock, batched):
        s.set_timesteps(5)
    torch.manual_seed(0)
    n = 4
    for t in stock.timesteps:  # the last one (t = 0) takes the no-remasking branch
        for start in (1.0, 0.6):
            logits = torch.randn(n, 16, 3, 4) * 2
            sample = torch.randint(0, 16, (n, 3, 4)).masked_fill(torch.rand(n, 3, 4) < 0.6, 16)
            gens, ref_gens = ([torch.Generator().manual_seed(10 + i) for i in range(n)] for _ in range(2))
            out = batched.step(logits, t, sample, start, generator=gens)
            ref = [stock.step(logits[i : i + 1], t, sample[i : i + 1], start, generator=g, return_dict=False)
                   for i, g in enumerate(ref_gens)]
            assert torch.equal(out.prev_sample, torch.cat([r[0] for r in ref]))
            assert torch.equal(out.pred_original_sample, torch.cat([r[1] for r in ref]))
            assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(gens, ref_gens))
    with pytest.raises(ValueError, match="generators for a batch"):
        batched.step(logits, t, sample, generator=gens[:2])


def test_steps_per_family_or_one_number_for_all():
    assert G.steps_for(15, "if") == 15
    assert G.steps_for({"sd": 10, "if": 15}, "sd") == 10
    with pytest.raises(ValueError, match="no entry for family 'muse'") as e:
        G.steps_for({"sd": 10}, "muse")
    assert "\n" not in str(e.value)


def test_ranks_under_torchrun_wait_for_each_others_shards(ps, tmp_path):
    """Two torchrun ranks share one set's shards; each reads the complete set as soon as its call returns."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "fixtures" / "ddp_generate.py"
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", str(script)],
                         env={**os.environ, "DDP_OUT": str(tmp_path), "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [f.read_text() for f in sorted(tmp_path.glob("result_rank*.txt"))]
    assert lines == [f"rank {r} images 6 labels [0, 0, 1, 1, 2, 2]\n" for r in (0, 1)]
    assert sorted(p.name for p in (tmp_path / "set").glob("shard-*.tar")) == [G.SHARD.format(j) for j in range(3)]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_shard_is_named_on_read_and_exactly_it_is_regenerated(pipe, ps, tmp_path, damage, caplog):
    """Sets record each shard's samples, size and sha256: a truncated or bit-flipped shard fails the read with a
    one-line error naming it and the repair command; ensuring the set again (or that command) regenerates that
    shard alone, byte-identical to the original (per-sample seeds)."""
    from synscale.runtime.integrity import DamagedCacheError

    out = G.ensure_set("sd", ps, 3.0, 2, 5, root=tmp_path, shard_size=4, batch_size=4, progress=False)
    ref = digest(out)
    index = G.read_index(out)
    assert [r["samples"] for r in index["shard_records"]] == [4, 4, 1]
    assert [r["size"] for r in index["shard_records"]] == [(out / f).stat().st_size for f in ref]
    shard = out / "shard-00001.tar"
    data = bytearray(shard.read_bytes())
    if damage == "truncate":
        del data[len(data) // 2:]
    else:
        data[len(data) // 3] ^= 0x01
    shard.write_bytes(bytes(data))
    untouched = {f: (out / f).stat().st_mtime_ns for f in ("shard-00000.tar", "shard-00002.tar")}
    with pytest.raises(DamagedCacheError) as e:
        G.read_dataset(out)
    msg = str(e.value)
    assert "\n" not in msg and "shard-00001.tar" in msg and f"synscale generate --repair {out}" in msg
    if damage == "truncate":
        G.ensure_set("sd", ps, 3.0, 2, 5, root=tmp_path, shard_size=4, batch_size=4, progress=False)
    else:
        assert G.main(["--repair", str(out)]) == 0
    assert "shard-00001.tar is damaged" in caplog.text  # a warning of the library's log
    assert digest(out) == ref
    assert {f: (out / f).stat().st_mtime_ns for f in untouched} == untouched  # only the damaged shard was redone
    assert len(G.read_dataset(out).labels) == 9


def test_two_runs_filling_the_same_set_take_turns(pipe, ps, tmp_path):
    """Two runs side by side (``--jobs 2``) that need the same set: one generates it, the other waits for it and
    reads it, instead of both writing (and deleting each other's temporary files)."""
    import threading
    import time

    loads = []

    def load():  # slow enough that, unlocked, both runs would find the set missing and start generating
        loads.append(1)
        time.sleep(0.5)
        return pipe

    out, errors = tmp_path / "shared", []

    def run():
        try:
            gen(load, ps, out)
        except Exception as e:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(loads) == 1
    assert digest(out) == digest(gen(pipe, ps, tmp_path / "alone"))
