"""Supervised-study plumbing: data specs, grouped power-law fits, linear probes with shared features."""
import numpy as np
import pandas as pd
import pytest

from synscale.studies import supervised as S


def test_specs_parse_and_fail_in_one_line():
    assert str(S.DataSpec.parse("sd/classnames/7.5")) == "sd/classnames/7.5"
    assert S.DataSpec.parse("real").family == "real"
    assert S.DataSpec.parse("muse/in_captions/3").cfg == 3.0
    for bad, msg in (("sd/nonsense/2", "bad training-data spec"), ("gan/classnames/2", "bad training-data spec"),
                     ("sd/classnames/high", "not a number")):
        with pytest.raises(ValueError, match=msg) as e:
            S.check_specs(["real", bad])
        assert "\n" not in str(e.value)


def test_grouped_fits_recover_each_groups_slope():
    sizes = np.array([50, 100, 200, 400])
    rows = [{"data": d, "class": c, "size": n, "loss": 2.0 * (n / 200) ** -k}
            for d, k in (("real", 0.4), ("sd", 0.1)) for c in ("a", "b") for n in sizes]
    f = S.fits(pd.DataFrame(rows), 200, ["data", "class"])
    assert len(f) == 4
    assert np.allclose(f.set_index(["data", "class"]).k.loc["real"], 0.4)
    assert np.allclose(f.set_index(["data", "class"]).performance, -np.log(2.0))


def test_probes_share_features_of_identical_images(monkeypatch):
    calls = []

    def fake_features(model, x):
        calls.append(len(x))
        return x.reshape(len(x), -1).astype(float)

    monkeypatch.setattr(S, "features", fake_features)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    x = (y[:, None, None] * 50 + rng.integers(0, 20, (40, 2, 2))).astype(np.uint8)
    tasks = {"t1": (x[:20], y[:20], x[20:], y[20:]), "t2": (x[:20], 1 - y[:20], x[20:], 1 - y[20:])}
    res = S.probes(None, tasks)
    assert [r["task"] for r in res] == ["t1", "t2"] and all(r["top1"] > 0.9 for r in res)
    assert len(calls) == 2  # train and test images once each, though two tasks use them


def test_logits_are_cached_per_model_dir_and_images(monkeypatch, tmp_path):
    calls = []

    def fake_predict(model, x):
        calls.append(len(x))
        return x.reshape(len(x), -1)[:, :3].astype(np.float32) * model, None

    monkeypatch.setattr(S, "_predict", fake_predict)
    x = np.arange(48, dtype=np.uint8).reshape(4, 3, 4)
    first = S.cached_logits(2.0, tmp_path, x)
    assert np.array_equal(S.cached_logits(2.0, tmp_path, x), first) and calls == [4]  # second call reads the file
    other = S.cached_logits(2.0, tmp_path, x[:2] + 1)  # other images: a new entry, not the stale one
    assert calls == [4, 2] and np.array_equal(other, fake_predict(2.0, x[:2] + 1)[0])
    assert len(list(tmp_path.glob("logits_*.npy"))) == 2 and not list(tmp_path.glob("*.tmp*"))


def test_specs_are_checked_against_the_steps_mapping_before_any_work():
    assert len(S.check_specs(["real", "sd/classnames/2"], {"sd": 10})) == 2
    with pytest.raises(ValueError, match="no entry for family 'if'"):
        S.check_specs(["real", "if/classnames/2"], {"sd": 10})


def test_each_curve_stops_where_the_paper_stops_it():
    """Imagen and Muse stop at their max_sizes (paper: 8M while SD goes to 64M); the real curve ends with the whole
    real set (ImageNet-train's 1.28M) instead of losing its sizes beyond it."""
    from synscale.studies.supervised import curve_sizes

    sizes = [125_000, 1_000_000, 2_000_000, 8_000_000, 64_000_000]
    caps = {"if": 8_000_000, "muse": 8_000_000}
    assert curve_sizes("sd", sizes, caps, 1_281_167) == sizes
    assert curve_sizes("if", sizes, caps, 1_281_167) == sizes[:4]
    assert curve_sizes("real", sizes, caps, 1_281_167) == [125_000, 1_000_000, 1_281_167]
    assert curve_sizes("muse", sizes, None, 1_281_167) == sizes
