"""Issue 33: nothing that grows with the data is held whole. A caption pool read from shards, the prompt set of its
captions, that set's Parquet file as a generation rank reads it, and a generated set opened for open_clip are walked
here under ``tracemalloc``: Python's peak allocation must stay a fraction of what a list of the whole would take.
Materialising any of them (``list(captions)``, ``tuple(prompts)``, a list of every sample) fails these tests; the
benchmark (``benchmarks/scale.py``) shows the same at N and 16·N samples."""
from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pytest

N, PER_SHARD = 24_000, 2_000


def _caption(i: int) -> str:
    return f"photo {i:06d} of a red passenger jet over the sea at sunset, seen from the beach below the runway"


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    from synscale.data import shards

    root = tmp_path_factory.mktemp("lazy")
    urls = shards.write_pairs(np.zeros((N, 4, 4), np.uint8), [_caption(i) for i in range(N)], root / "pool",
                              shard_size=PER_SHARD)
    whole = sys.getsizeof([None] * N) + sum(sys.getsizeof(_caption(i)) for i in range(N))  # a list of them all
    shards.read_pairs(urls, N)  # the sample index, built once (one pass over the tar headers)
    return root, urls, whole


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_caption_pool_its_prompt_set_and_fingerprint_stay_lazy(pool):
    from synscale.data import shards
    from synscale.data.samples import chunked_sha256
    from synscale.studies.synthclip import caption_prompts

    root, urls, whole = pool
    seen = {}

    def walk():
        pairs = shards.read_pairs(urls, N)
        ps = caption_prompts(pairs.captions, ())  # 06's prompt set of the pool's captions
        seen["n"] = sum(1 for _ in ps.prompts)
        seen["fingerprint"] = chunked_sha256(ps.prompts)
        seen["last"] = ps.prompts[N - 1]

    peak = _peak(walk)
    assert seen["n"] == N and seen["last"] == _caption(N - 1)
    assert peak < whole / 4, f"peak {peak / 1e6:.1f} MB while walking {N:,} captions ({whole / 1e6:.1f} MB as a list)"


def test_a_generation_rank_reads_only_its_rows_of_the_saved_prompt_set(pool):
    from synscale.data import prompts as P
    from synscale.data import shards
    from synscale.studies.synthclip import caption_prompts

    root, urls, whole = pool
    path = caption_prompts(shards.read_pairs(urls, N).captions, ()).save(root / "prompts.parquet")
    got = {}

    def rank_3_of_8():
        ps = P.load(path, ())
        lo, hi = 3 * N // 8, 4 * N // 8
        got["rows"] = [ps.prompts[i] for i in range(lo, hi)]

    peak = _peak(rank_3_of_8)
    assert got["rows"][0] == _caption(3 * N // 8) and len(got["rows"]) == N // 8
    assert peak < whole / 2, f"peak {peak / 1e6:.1f} MB for an eighth of {N:,} prompts"


def test_a_generated_set_opens_for_open_clip_without_a_list_of_its_samples(tmp_path):
    """06's generated sets (up to 371M images) open for open_clip from the sample counts their index recorded at
    write time: no tar header is read and no per-sample list is made."""
    from synscale.methods import generate as G
    from synscale.methods.clipdata import GeneratedSet

    n, per = 20_000, 500
    out = tmp_path / "set"
    out.mkdir()
    image = np.zeros((1, 4, 4, 3), np.uint8)
    for j, lo in enumerate(range(0, n, per)):  # generate's own shard writer and index, without a pipeline
        idx = np.arange(lo, min(n, lo + per))
        G._write_shard(out / G.SHARD.format(j), np.repeat(image, len(idx), 0), np.full(len(idx), -1),
                       [_caption(int(i)) for i in idx], idx.tolist(), lo)
    G.write_index(out, n, per, {"classes": [], "prompt_config": "pool_captions", "guidance_scale": 2.0, "steps": 50,
                                "seed": 0, "store_size": None, "batch_size": 64})
    whole = sys.getsizeof([None] * n) + n * sys.getsizeof(_caption(0))  # a list of every sample's caption alone
    got = {}
    peak = _peak(lambda: got.update(urls=GeneratedSet.read(out, "open_clip", prefix_n=n).take(n - 7)))
    assert len(got["urls"]) == n // per  # every shard, the last one cut
    assert peak < whole / 4, f"peak {peak / 1e6:.1f} MB opening {n:,} generated samples"
