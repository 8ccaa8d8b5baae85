"""Issue 33: nothing that grows with the data is held whole. A caption pool read from shards, the prompt set of its
captions and its fingerprint, that set's Parquet file as a generation rank reads it, and a generated set opened for
open_clip are walked here at two sizes under ``tracemalloc``: Python's peak allocation may not grow by more than a
quarter of what a list of the added captions takes. Materialising any of them (``list(captions)``,
``tuple(prompts)``, a list of every sample) fails these tests; ``benchmarks/scale.py`` shows the same at 25k and
400k samples, and extrapolates to the papers' counts."""
from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pytest

N, PER_SHARD = 24_000, 2_000
SMALL = N // 2  # both sizes fill whole Parquet row groups (8,192 rows) and caption chunks (1 MB)


def _caption(i: int) -> str:
    return f"photo {i:06d} of a red passenger jet over the sea at sunset, seen from the beach below the runway"


def _as_list(n: int) -> int:
    """Bytes of a Python list of the first ``n`` captions."""
    return sys.getsizeof([None] * n) + n * sys.getsizeof(_caption(0))


def _peak(fn, warm: tuple[int, ...] = (64,), sizes: tuple[int, int] = (SMALL, N)) -> int:
    for n in warm:  # imports and first-call caches (a set's shards hashed on first open) outside the measurement
        fn(n)
    peaks = []
    for n in sizes:
        tracemalloc.start()
        try:
            fn(n)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    return peaks[1] - peaks[0]


def _check(growth: int, what: str, n: int = N, small: int = SMALL) -> None:
    allowed = (_as_list(n) - _as_list(small)) / 4
    assert growth < allowed, (f"{what}: peak allocation grew {growth / 1e6:.2f} MB from {small:,} to {n:,} samples; "
                              f"a list of the added captions is {4 * allowed / 1e6:.2f} MB")


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    from synscale.data import shards

    root = tmp_path_factory.mktemp("lazy")
    urls = shards.write_pairs(np.zeros((N, 4, 4), np.uint8), [_caption(i) for i in range(N)], root / "pool",
                              shard_size=PER_SHARD)
    shards.read_pairs(urls, N)  # the sample index, built once (one pass over the tar headers)
    return root, urls


def test_a_caption_pool_its_prompt_set_and_fingerprint_stay_lazy(pool):
    from synscale.data import shards
    from synscale.data.samples import chunked_sha256
    from synscale.studies.synthclip import caption_prompts

    _, urls = pool
    seen = {}

    def walk(n):
        ps = caption_prompts(shards.read_pairs(urls, n).captions, ())  # 06's prompt set of the pool's captions
        seen[n] = (sum(1 for _ in ps.prompts), chunked_sha256(ps.prompts), ps.prompts[n - 1])

    _check(_peak(walk), "a caption pool's prompt set, walked and fingerprinted")
    assert seen[N][0] == N and seen[N][2] == _caption(N - 1)
    assert seen[N][1] == chunked_sha256(iter([_caption(i) for i in range(N)]))


def test_a_generation_rank_reads_only_its_rows_of_the_saved_prompt_set(pool):
    from synscale.data import prompts as P
    from synscale.data import shards
    from synscale.studies.synthclip import caption_prompts

    root, urls = pool
    paths = {n: caption_prompts(shards.read_pairs(urls, n).captions, ()).save(root / f"prompts-{n}.parquet")
             for n in (64, SMALL, N)}
    got = {}

    def rank_3_of_8(n):
        ps = P.load(paths[n], ())
        got[n] = [ps.prompts[i] for i in range(3 * n // 8, 4 * n // 8)]

    growth = _peak(rank_3_of_8)
    assert got[N][0] == _caption(3 * N // 8) and len(got[N]) == N // 8
    assert growth < (_as_list(N) - _as_list(SMALL)) / 8 * 1.5  # an eighth of the rows, read as a list: no more


def test_a_generated_set_opens_for_open_clip_without_a_list_of_its_samples(tmp_path):
    """06's generated sets (up to 371M images) open for open_clip from the sample counts their index recorded at
    write time: no tar header is read and no per-sample list is made."""
    from synscale.methods import generate as G
    from synscale.methods.clipdata import GeneratedSet

    n_gen, per = 8_000, 500  # opening reads the index, not the samples: no row group or text chunk to outgrow
    small = n_gen // 2
    image = np.zeros((1, 4, 4, 3), np.uint8)
    full = tmp_path / f"set-{n_gen}"  # generate's own shard writer and index, without a pipeline
    full.mkdir()
    for j, lo in enumerate(range(0, n_gen, per)):
        idx = np.arange(lo, min(n_gen, lo + per))
        G._write_shard(full / G.SHARD.format(j), np.repeat(image, len(idx), 0), np.full(len(idx), -1),
                       [_caption(int(i)) for i in idx], idx.tolist(), lo)
    for n in (small, n_gen):  # the smaller set: the first shards of the full one (hard links), with its own index
        out = tmp_path / f"set-{n}"
        out.mkdir(exist_ok=True)
        for j in range(n // per if n != n_gen else 0):
            for f in full.glob(G.SHARD.format(j) + "*"):  # the shard and its records
                (out / f.name).hardlink_to(f)
        G.write_index(out, n, per, {"classes": [], "prompt_config": "pool_captions", "guidance_scale": 2.0,
                                    "steps": 50, "seed": 0, "store_size": None, "batch_size": 64})
    got = {}
    growth = _peak(lambda n: got.update({n: GeneratedSet.read(tmp_path / f"set-{n}", "open_clip", prefix_n=n)
                                         .take(n - 7)}), warm=(small, n_gen), sizes=(small, n_gen))
    assert len(got[n_gen]) == n_gen // per  # every shard, the last one cut
    _check(growth, "a generated set opened for open_clip", n_gen, small)
