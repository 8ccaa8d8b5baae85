"""synscale.methods.imagesets: a sweep's cached pieces are computed once for every process that measures sets."""
import numpy as np
import pytest

from synscale.data.world import open_world
from synscale.methods import imagesets, models


def test_real_features_are_computed_once_into_the_shared_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNSCALE_CACHE", str(tmp_path))
    world = open_world("mini", 0)
    oracle = models.oracle("mini", world)
    first = imagesets.Sweep(world, oracle, "sd", oracle_name="mini").real_features
    assert first.shape == (len(world.split("val")[1]), oracle.num_features)
    monkeypatch.setattr(imagesets, "predict", lambda *a, **k: pytest.fail("recomputed the cached real features"))
    again = imagesets.Sweep(world, oracle, "sd", oracle_name="mini").real_features  # another notebook, a job's rank
    assert np.array_equal(first, again) and len(list(tmp_path.glob("real_features/*.npy"))) == 1
    (f,) = tmp_path.glob("real_features/*.npy")
    f.write_bytes(f.read_bytes()[:-8])  # damaged: recomputed (with a warning), not read
    monkeypatch.undo()
    monkeypatch.setenv("SYNSCALE_CACHE", str(tmp_path))
    with pytest.warns(UserWarning, match="real features"):
        assert np.array_equal(imagesets.Sweep(world, oracle, "sd", oracle_name="mini").real_features, first)
