"""Lazy image arrays: generated sets read from their shards by tar offset, concatenated and selected lazily."""
import pickle

import numpy as np
import pytest

from synscale.data.arrays import Concat, ShardImages, Take, content_key, take
from synscale.methods import generate as G


@pytest.fixture(params=[(8, 8), (8, 8, 3)], ids=["grey", "rgb"])
def shards(request, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (7, *request.param), dtype=np.uint8)
    y = np.arange(7) % 3
    for j, lo in enumerate(range(0, 7, 3)):  # shards of 3, 3, 1 samples
        hi = min(lo + 3, 7)
        G._write_shard(tmp_path / G.SHARD.format(j), x[lo:hi], y[lo:hi], [f"p{i}" for i in range(lo, hi)],
                       list(range(100 + lo, 100 + hi)), lo)
    G.write_index(tmp_path, 7, 3, {})
    return tmp_path, x, y


def test_shard_images_read_each_sample_at_its_tar_offset(shards):
    out, x, y = shards
    eager, lazy = G.read_dataset(out), G.read_dataset(out, lazy=True)
    assert isinstance(lazy.images, ShardImages) and lazy.images.shape == x.shape
    assert np.array_equal(eager.images, x) and np.array_equal(lazy.images[:], x)
    assert eager.labels.tolist() == lazy.labels.tolist() == y.tolist()
    assert eager.prompts == [f"p{i}" for i in range(7)] and eager.seeds.tolist() == list(range(100, 107))
    imgs = lazy.images
    assert np.array_equal(imgs[-1], x[-1]) and np.array_equal(imgs[[5, 0, 5]], x[[5, 0, 5]])
    assert np.array_equal(imgs[y == 1], x[y == 1]) and imgs[[]].shape == (0, *x.shape[1:])
    with pytest.raises(IndexError):
        imgs[7]
    again = pickle.loads(pickle.dumps(imgs))  # DataLoader workers get the offsets, not the pixels
    assert np.array_equal(again[2:6], x[2:6]) and len(pickle.dumps(imgs)) < 2000


def test_concat_and_take_are_lazy_views_with_their_own_cache_keys(shards):
    out, x, _ = shards
    imgs = G.read_dataset(out, lazy=True).images
    both = Concat([imgs, x])
    assert both.shape == (14, *x.shape[1:]) and np.array_equal(both[:], np.concatenate([x, x]))
    assert np.array_equal(both[[6, 7, 13]], x[[6, 0, 6]])
    sel = take(both, [13, 1])
    assert isinstance(sel, Take) and np.array_equal(np.asarray(sel), x[[6, 1]])
    assert isinstance(take(x, [1, 2]), np.ndarray)
    keys = {content_key(imgs), content_key(both), content_key(sel), content_key(take(both, [1, 13]))}
    assert len(keys) == 4
    with pytest.raises(ValueError, match="different image shapes"):
        Concat([imgs, x[:, :4]])


def test_squared_resizes_any_shape_to_one_square_rgb_size():
    from synscale.data.arrays import Squared

    class Mixed(list):
        shape = (2, 0, 0)

        def key(self):
            return "mixed"

    x = Squared(Mixed([np.zeros((20, 40), np.uint8), np.full((30, 10, 3), 200, np.uint8)]), 16)
    batch = x[[0, 1]]
    assert batch.shape == (2, 16, 16, 3) and batch.dtype == np.uint8 and (batch[1] == 200).all()
    assert x.key() != Squared(Mixed([]), 8).key()
