"""Notebook 06's run plan (synscale.studies.mixing) and the trainer-shaped data of the CLIP studies
(synscale.methods.clipdata)."""
import numpy as np
import pytest

from synscale.methods import clipdata
from synscale.studies import mixing


def test_the_plan_is_the_papers_cells_then_the_tables_then_the_noise_seeds():
    p = mixing.plan(["real", "synthetic", "synthetic+real"], [1600, 400, 800], 1.5, [1.5, 2.5], [1600], 10000, 0, [1])
    assert len(p) == 3 * 3 * 2 + 1 + 1
    assert p[:3] == [(m, 400, None, 1.5, 0) for m in ("real", "synthetic", "synthetic+real")]
    assert p[9:11] == [("synthetic", 400, None, 2.5, 0), ("real", 1600, "L", 1.5, 0)]  # Table A11, Table A10
    assert {s for *_, s in p[11:]} == {1} and len(p[11:]) == 9


def test_caption_pools_take_prefixes_in_memory():
    pool = clipdata.CaptionPool(["a", "b", "c"], np.arange(3))
    images, caps = pool.take(2)
    assert images.tolist() == [0, 1] and caps == ["a", "b"]
    assert clipdata.concat(np.arange(2), np.arange(3)).tolist() == [0, 1, 0, 1, 2]
    assert clipdata.concat(["x.tar"], ["y.tar"]) == ["x.tar", "y.tar"]
    with pytest.raises(ValueError, match="trainer must be 'synscale'"):
        clipdata.caption_pool(None, 2, "timm")
