"""Notebook 06's run plan (synscale.studies.mixing) and the trainer-shaped data of the CLIP studies
(synscale.methods.clipdata)."""
import numpy as np
import pytest

from synscale.methods import clipdata
from synscale.studies import mixing


def test_the_plan_is_the_papers_cells_then_the_tables_then_the_noise_seeds():
    p = mixing.plan(["real", "synthetic", "synthetic+real"], [1600, 400, 800], 1.5, [1.5, 2.5], [1600], 10000, 0, [1])
    assert len(p) == 3 * 3 * 2 + 1 + 1 and all(pt.captions == "pool" for pt in p)
    assert p[:3] == [mixing.Point(m, 400, None, 1.5, 0) for m in ("real", "synthetic", "synthetic+real")]
    assert p[9:11] == [mixing.Point("synthetic", 400, None, 2.5, 0), mixing.Point("real", 1600, "L", 1.5, 0)]
    assert {pt.seed for pt in p[11:]} == {1} and len(p[11:]) == 9
    # Table A10 as the paper runs it: its own architecture (ViT-B/32) at 10M/50M/100M, both sets at each
    a10 = mixing.plan(["real"], [10, 20], 1.5, [1.5], [10, 50], 100, 0, [], hparam_own_model=True)
    assert a10[2:] == [mixing.Point("real", n, h, 1.5, 0) for n in (10, 50) for h in ("S", "L")]
    # the same architecture: the other set beside a main-grid scale, both where the grid has no run
    assert mixing.plan(["real"], [10, 20], 1.5, [1.5], [10, 50], 100, 0, [])[2:] == [
        ("real", 10, "L", 1.5, 0, "pool"), ("real", 50, "S", 1.5, 0, "pool"), ("real", 50, "L", 1.5, 0, "pool")]
    # Table A11 on its own captions (the paper's CC12M): every CFG, the main one included, at cfg_n of them
    a11 = mixing.plan(["real"], [10, 20], 1.5, [1.25, 1.5, 2.5], [], 100, 0, [], cfg_n=7)
    assert a11[2:] == [("synthetic", 7, None, g, 0, "cfg_pool") for g in (1.25, 1.5, 2.5)]


def test_caption_pools_take_prefixes_in_memory():
    pool = clipdata.CaptionPool(["a", "b", "c"], np.arange(3))
    images, caps = pool.take(2)
    assert images.tolist() == [0, 1] and caps == ["a", "b"]
    assert clipdata.concat(np.arange(2), np.arange(3)).tolist() == [0, 1, 0, 1, 2]
    assert clipdata.concat(["x.tar"], ["y.tar"]) == ["x.tar", "y.tar"]
    with pytest.raises(ValueError, match="trainer must be 'synscale'"):
        clipdata.caption_pool(None, 2, "timm")
