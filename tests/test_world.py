"""Mini world: loader and split determinism, captions, OOD constructions, manifest/checksum errors."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from synscale.data import world as W
from synscale.data.world import data
from synscale.data.world.captions import CaptionNoise, attributes, build_captions
from synscale.data.world.classes import NAMES


@pytest.fixture(scope="module")
def xy():
    return data.load_fmnist()


def test_fashion_mnist_loads_padded_and_read_only(xy):
    x, y = xy
    assert x.shape == (70_000, 32, 32) and x.dtype == np.uint8 and y.shape == (70_000,)
    assert np.bincount(y).tolist() == [7000] * 10
    assert x[:, :2].max() == 0 and x[:, :, -2:].max() == 0  # the 2-px padding is background
    with pytest.raises(ValueError):
        x[0, 0, 0] = 1


def test_missing_package_gives_the_promised_message(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNSCALE_FMNIST_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        data.load_fmnist()
    msg = str(e.value)
    assert "\n" not in msg and "install the Debian package dataset-fashion-mnist" in msg and str(tmp_path) in msg


def test_splits_are_deterministic_disjoint_and_sized():
    a, b, c = data.make_splits(0), data.make_splits(0), data.make_splits(1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train"], c["train"])
    assert {k: len(v) for k, v in a.items()} == {"pool": 40000, "train": 10000, "heldout": 10000, "val": 5000,
                                                 "v2": 5000}
    allidx = np.concatenate(list(a.values()))
    assert len(np.unique(allidx)) == len(allidx)
    assert a["val"].min() >= 60000 and a["pool"].max() < 60000  # val/v2 from the t10k file only
    with pytest.raises(ValueError, match="exceed Fashion-MNIST"):
        data.make_splits(0, data.SplitSizes(pool=55000))


def test_world_ood_splits_come_from_heldout_and_prefixes_nest(tmp_path):
    w = W.load(tmp_path)
    held = set(w.indices["heldout"].tolist())
    for name in ("a_candidates", "sketch", "rendition"):
        assert set(w.indices[name].tolist()) <= held
    assert np.array_equal(w.split("train", 100)[1], w.split("train")[1][:100])
    xs, ys = w.split("sketch")
    assert xs.shape == (2500, 32, 32) and xs.dtype == np.uint8 and np.array_equal(ys, w.split("sketch")[1])
    with pytest.raises(KeyError, match="unknown split 'nope'"):
        w.split("nope")


def test_sketch_keeps_edges_only():
    img = np.zeros((1, 32, 32), np.uint8)
    img[0, 8:24, 8:24] = 200  # a filled square
    s = data.sketch(img)[0]
    assert s[16, 16] == 0 and s[8, 8:24].max() > 0 and s[0, 0] == 0  # interior and background empty, border drawn


def test_renditions_are_deterministic_and_differ_by_style(xy):
    x = xy[0][:10]
    styles = np.arange(10) % len(data.RENDITION_STYLES)
    r1, r2 = data.rendition(x, styles, seed=3), data.rendition(x, styles, seed=3)
    assert np.array_equal(r1, r2) and r1.shape == x.shape and r1.dtype == np.uint8
    assert np.array_equal(r1[0], 255 - x[0])  # style 0: negative


def test_captions_are_seeded_and_noisy_as_configured(xy):
    x, y = xy[0][:3000], xy[1][:3000]
    c1, m1 = build_captions(x, y, seed=5)
    c2, _ = build_captions(x, y, seed=5)
    c3, _ = build_captions(x, y, seed=6)
    assert c1 == c2 and c1 != c3
    frac = {k: float(np.mean(m1["kind"] == k)) for k in ("junk", "wrong", "generic", "synonym", "name")}
    noise = CaptionNoise()
    assert abs(frac["junk"] - noise.p_junk) < 0.015 and abs(frac["wrong"] - noise.p_wrong) < 0.02
    for cap, k, lab in zip(c1, m1["kind"], y):
        if k == "name":
            assert NAMES[lab] in cap
        elif k == "generic" or k == "junk":
            assert not any(n in cap.split() for n in NAMES if " " not in n)
    assert build_captions(x[:100], y[:100], seed=5)[0] == c1[:100]  # prefix-stable


def test_attributes_read_the_pixels():
    dark = np.zeros((1, 32, 32), np.uint8)
    dark[0, 4:28, 10:22] = 60
    light = dark.copy()
    light[0, 4:28, 10:22] = 230
    assert attributes(dark).tone[0] == "dark" and attributes(light).tone[0] == "light"
    assert attributes(dark).cut[0] == "slim"


def test_manifest_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"artifact 'oracle' is not built in .*run_all.sh 00 --profile rebuild"):
        W.verify(tmp_path, "oracle")
    (tmp_path / "oracle").mkdir()
    f = tmp_path / "oracle" / "w.bin"
    f.write_bytes(b"abc")
    manifest = {"components": {"oracle": {"files": {"oracle/w.bin": W.sha256(f)}}}}
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    assert W.verify(tmp_path, "oracle") == tmp_path / "oracle"
    f.write_bytes(b"abd")
    with pytest.raises(ValueError, match="does not match its checksum"):
        W.verify(tmp_path, "oracle")
    f.unlink()
    with pytest.raises(FileNotFoundError, match="is missing: restore it from git or rebuild"):
        W.verify(tmp_path, "oracle")


def test_a_task_on_some_classes_relabels_them_in_order_and_keeps_only_them():
    y = np.array([0, 6, 2, 9, 4, 6, 0])
    x = np.arange(len(y)) * 10
    assert W.relabel(y, [0, 2, 4, 6]).tolist() == [0, 3, 1, -1, 2, 3, 0]
    xs, ys = W.class_subset(x, y, [6, 0], n=3)
    assert xs.tolist() == [0, 10, 50] and ys.tolist() == [1, 0, 0]
    world = SimpleNamespace(classes=list(NAMES))
    assert W.class_ids(world, ["coat", "shirt"]) == [4, 6] and W.class_ids(world, []) == list(range(10))
    with pytest.raises(ValueError, match="unknown or repeated: \\['jacket'\\]"):
        W.class_ids(world, ["coat", "jacket"])
