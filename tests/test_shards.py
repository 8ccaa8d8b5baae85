"""(image, caption) shards for open_clip's trainer: listing, reading, writing, exact n-sample prefixes, and the
commands and runs built on them (synscale.data.shards, synscale.methods.clip's open_clip section)."""
import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

from synscale.data import shards
from synscale.methods import clip


def _images(n, size=8):
    return (np.arange(n * size * size, dtype=np.int64).reshape(n, size, size) % 251).astype(np.uint8)


@pytest.fixture(scope="module")
def laion_like(tmp_path_factory):
    """img2dataset's layout: jpg, txt and json per sample, 10 samples per shard, 3 shards."""
    root = tmp_path_factory.mktemp("laion")
    x = np.stack([np.full((16, 16, 3), 8 * i, np.uint8) for i in range(30)])
    for s in range(3):
        with wds.TarWriter(str(root / f"{s:05d}.tar")) as w:
            for i in range(10 * s, 10 * s + 10):
                buf = io.BytesIO()
                Image.fromarray(x[i]).save(buf, format="JPEG", quality=95)
                w.write({"__key__": f"{i:09d}", "jpg": buf.getvalue(), "txt": f"caption {i}", "json": b"{}"})
    return root, x


def test_brace_folds_consecutive_shards_into_patterns():
    urls = [f"/d/{i:05d}.tar" for i in (0, 1, 2, 5)] + ["/e/shard-00007.tar", "/f/cut-first3.tar"]
    assert shards.brace(urls) == ["/d/{00000..00002}.tar", "/d/00005.tar", "/e/shard-00007.tar", "/f/cut-first3.tar"]
    assert shards.brace([f"/d/{i:05d}.tar" for i in range(41408)]) == ["/d/{00000..41407}.tar"]


def test_list_and_read_pairs_of_img2dataset_shards(laion_like, tmp_path):
    root, x = laion_like
    urls = shards.list_shards(root)
    assert [u.rsplit("/", 1)[1] for u in urls] == ["00000.tar", "00001.tar", "00002.tar"]
    assert shards.list_shards(f"{root}/{{00000..00001}}.tar") == urls[:2]
    p = shards.read_pairs(root, 15)
    assert p.urls == urls[:2] and p.sizes.tolist() == [10, 10] and len(p.images) == 15
    assert list(p.captions) == [f"caption {i}" for i in range(15)]
    assert np.abs(p.images[[3, 14]].astype(int) - x[[3, 14]]).max() <= 2  # JPEG, read at its tar offset
    with pytest.raises(ValueError, match="need 31 pairs"):
        shards.read_pairs(root, 31)
    with pytest.raises(FileNotFoundError, match="no webdataset shards"):
        shards.list_shards(tmp_path / "nothing")


def test_written_pairs_read_back_exactly_and_prefixes_hold_exactly_n_samples(tmp_path):
    x = _images(25)
    caps = [f"c{i}" for i in range(25)]
    urls = shards.write_pairs(x, caps, tmp_path / "pool", shard_size=10)
    assert len(urls) == 3 and shards.write_pairs(x, caps, tmp_path / "pool", shard_size=10) == urls
    p = shards.read_pairs(urls, 25)
    assert np.array_equal(p.images[:], x) and list(p.captions) == caps and p.sizes.tolist() == [10, 10, 5]
    assert shards.subset_shards(p.urls, p.sizes, 20, tmp_path / "cut") == urls[:2]  # on a boundary: no copy
    cut = shards.subset_shards(p.urls, p.sizes, 13, tmp_path / "cut")
    assert cut[0] == urls[0] and cut[1] != urls[1]
    q = shards.read_pairs(cut, 13)
    assert np.array_equal(q.images[:], x[:13]) and list(q.captions) == caps[:13] and q.sizes.tolist() == [10, 3]
    with pytest.raises(ValueError, match="cannot take 26 samples"):
        shards.subset_shards(p.urls, p.sizes, 26, tmp_path / "cut")


def test_open_clip_command_follows_table_a3_and_weighs_mixed_sources_per_shard():
    real = [f"/laion/{i:05d}.tar" for i in range(100)]
    syn = [f"/syn/shard-{i:05d}.tar" for i in range(1000)]
    argv = clip.open_clip_argv([real], 1_000_000, "real-1m", "/logs")
    a = dict(zip(argv, argv[1:]))
    assert argv[:3] == [sys.executable, "-m", "torch.distributed.run"] and "synscale.methods.openclip_train" in argv
    assert a["--train-data"] == "/laion/{00000..00099}.tar" and a["--batch-size"] == "1024"  # 8192 over 8 GPUs
    assert (a["--lr"], a["--wd"], a["--eps"], a["--warmup"], a["--epochs"]) == ("0.001", "0.5", "1e-08", "600", "32")
    assert "--dataset-resampled" not in argv
    # the last epoch's checkpoint only (32 of a ViT-B/16 with AdamW's moments are ~57 GB), unless asked
    assert "--delete-previous-checkpoint" in argv
    assert "--delete-previous-checkpoint" not in clip.open_clip_argv([real], 10, "x", "/l", keep_all_checkpoints=True)
    forced = dict(zip(*[iter(clip.open_clip_argv([real], 100_000_000, "x", "/l", force="L", nproc=1)[3:])] * 2))
    assert (forced["--batch-size"], forced["--lr"], forced["--warmup"]) == ("32768", "0.0005", "2000")
    argv = clip.open_clip_argv([real], 80, "x", "/l", nproc=1, batch_scale=1 / 1024, epochs=1)
    tiny = dict(zip(argv, argv[1:]))
    assert (tiny["--batch-size"], tiny["--warmup"]) == ("8", "9")  # warm-up ends before the run's last step
    argv = clip.open_clip_argv([real], 1_000_000, "x", "/l", nproc=8, gpu_batch=256)
    accum = dict(zip(argv, argv[1:]))
    assert (accum["--batch-size"], accum["--accum-freq"]) == ("256", "4") and "--grad-checkpointing" in accum
    src, w = clip.mode_sources("synthetic+real", real, syn, 0.5)
    argv = clip.open_clip_argv(src, 1_000_000, "mixed", "/logs", weights=w, nproc=1)
    a = dict(zip(argv, argv[1:]))
    assert argv[1:3] == ["-m", "synscale.methods.openclip_train"] and "--dataset-resampled" in argv
    assert a["--train-data"] == "/laion/{00000..00099}.tar::/syn/shard-{00000..00999}.tar"
    f_real, f_syn = (float(v) for v in a["--train-data-upsampling-factors"].split("::"))
    assert f_real * 100 == pytest.approx(f_syn * 1000)  # each source's shards together draw half the samples
    with pytest.raises(ValueError, match="needs the synthetic shards"):
        clip.mode_sources("synthetic", real, None)


def test_open_clip_run_failure_names_its_log_and_last_lines(tmp_path, monkeypatch):
    x = _images(8)
    urls = shards.write_pairs(x, [f"c{i}" for i in range(8)], tmp_path / "pool", shard_size=8)
    kw = dict(label="bad", epochs=1, nproc=1, device="cpu", precision="fp32", workers=0)
    with pytest.raises(ValueError, match="unknown open_clip model 'no-such-model'"):
        clip.train_open_clip([urls], 8, tmp_path / "logs", model="no-such-model", **kw)
    fake = tmp_path / "python"  # a trainer process that fails the way open_clip_train does, without its imports
    fake.write_text("#!/bin/sh\necho 'Traceback (most recent call last):'\necho 'RuntimeError: CUDA out of memory'\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    msg = r"open_clip run bad-\w+ failed \(exit 1; log .*bad-\w+\.out\):.*out of memory"
    with pytest.raises(RuntimeError, match=msg):
        clip.train_open_clip([urls], 8, tmp_path / "logs", model=clip.MINI_NAME, **kw)


def test_clip_features_of_shard_images_equal_those_of_the_decoded_array(tmp_path):
    from synscale.methods import evaluate

    x = _images(6, size=32)
    p = shards.read_pairs(shards.write_pairs(x, [f"c{i}" for i in range(6)], tmp_path / "pool"), 6)
    model, _, _ = clip.create()
    assert torch.equal(evaluate.image_features(model, p.images, batch_size=4), evaluate.image_features(model, x))


def test_the_mini_pool_is_written_once_under_the_cache_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNSCALE_CACHE", str(tmp_path))
    x = _images(12)
    p = shards.mini_pool(x, [f"c{i}" for i in range(12)], seed=3)
    assert Path(p.urls[0]).parent == tmp_path / "shards" / "mini_pool_s3_12"
    assert np.array_equal(p.images[np.arange(12)], x) and list(p.captions) == [f"c{i}" for i in range(12)]
    assert shards.mini_pool(x, [f"c{i}" for i in range(12)], seed=3).urls == p.urls


def test_selected_pairs_are_copied_out_byte_for_byte_in_source_order(tmp_path):
    x = _images(25)
    caps = [f"c{i}" for i in range(25)]
    urls = shards.write_pairs(x, caps, tmp_path / "pool", shard_size=10)
    rows = [22, 3, 9, 10, 3]
    out = shards.select_pairs(urls, rows, tmp_path / "sel", shard_size=3)
    assert len(out) == 2 and shards.select_pairs(urls, rows, tmp_path / "sel", shard_size=3) == out
    q = shards.read_pairs(out, 4)
    assert np.array_equal(q.images[:], x[[3, 9, 10, 22]]) and list(q.captions) == ["c3", "c9", "c10", "c22"]
    with pytest.raises(ValueError, match="rows up to 30 asked"):
        shards.select_pairs(urls, [30], tmp_path / "sel")


def test_reshard_splits_a_small_set_for_every_rank_and_worker(tmp_path):
    x = _images(10)
    urls = shards.write_pairs(x, [f"c{i}" for i in range(10)], tmp_path / "pool", shard_size=10)  # one shard
    assert shards.reshard(urls, 1, tmp_path / "s") == urls
    four = shards.reshard(urls, 4, tmp_path / "s")
    assert len(four) == 4 and shards.reshard(urls, 4, tmp_path / "s") == four  # written once
    back = shards.read_pairs(four, 10)
    assert list(back.captions) == [f"c{i}" for i in range(10)] and np.array_equal(back.images[np.arange(10)], x)


# ------------------------------------------------------------------------ member keys: webdataset's base_plus_ext
def _dotted_shard(path):
    """A shard as ``tar -cf`` writes one from folders: a ``./`` prefix, folder entries, a dotted folder name and a
    multi-dot extension. Samples (webdataset's keys): ./000001, ./000002, some.dir/000003, some.dir/000004."""
    import tarfile

    members = ["./", "./000001.jpg", "./000001.txt", "./000002.jpg", "./000002.txt", "some.dir/",
               "some.dir/000003.jpg", "some.dir/000003.txt", "some.dir/000004.seg.png", "some.dir/000004.txt"]
    with tarfile.open(path, "w") as tf:
        for name in members:
            info = tarfile.TarInfo(name)
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                data = f"{name}\n".encode()  # distinct bytes per member, so copies can be checked
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return str(path)


def _wds_samples(url):
    """webdataset's own reading of a shard: ``[(key, {ext: bytes})]`` in order."""
    ds = wds.WebDataset(url, shardshuffle=False)
    return [(s["__key__"], {k: v for k, v in s.items() if not k.startswith("__")}) for s in ds]


def test_member_keys_group_as_webdataset_groups_them(tmp_path):
    import tarfile

    from synscale.data.arrays import iter_samples

    url = _dotted_shard(tmp_path / "dotted.tar")
    with tarfile.open(url) as tf:
        keys = [shards.member_key(m) for m in tf]
        names = [m.name for m in tf]
        folders = [m.isdir() for m in tf]
    assert [k for k, d in zip(keys, folders) if d] == [None, None]  # folders ("." and "some.dir") are no sample
    grouped = [k for i, k in enumerate(keys) if k is not None and k not in keys[:i]]
    want = ["./000001", "./000002", "some.dir/000003", "some.dir/000004"]
    assert grouped == want == [k for k, _ in _wds_samples(url)]
    assert dict(_wds_samples(url))["some.dir/000004"].keys() == {"seg.png", "txt"}
    assert len(list(iter_samples([url]))) == 4  # the rows select_pairs / subset_shards count agree
    assert len({n.split(".", 1)[0] for n in names}) == 2  # the former split: "" and "some" only


@pytest.mark.parametrize("n", [1, 3])
def test_prefix_of_a_dotted_shard_keeps_exactly_n_webdataset_samples(tmp_path, n):
    url = _dotted_shard(tmp_path / "dotted.tar")
    out = shards.subset_shards([url], [4], n, tmp_path / "cut")
    assert len(out) == 1 and out[0] != url
    assert _wds_samples(out[0]) == _wds_samples(url)[:n]


def test_selected_rows_of_a_dotted_shard_are_webdatasets_samples(tmp_path):
    url = _dotted_shard(tmp_path / "dotted.tar")
    out = shards.select_pairs([url], [1, 3], tmp_path / "sel")
    src = _wds_samples(url)
    assert _wds_samples(out[0]) == [src[1], src[3]]  # ./000002 and some.dir/000004, bytes as they were
    assert [k for k, _ in _wds_samples(out[0])] == ["./000002", "some.dir/000004"]


def test_a_pool_is_never_a_list_of_the_whole(laion_like, monkeypatch):
    """At 371M captions a Python list of the pool (or of its offsets) does not fit a node: read_pairs, the caption
    pool and the prompt set built from it keep the captions lazy, and reading one caption or a slice reads one
    shard's index, not every shard's."""
    from synscale.data import samples
    from synscale.methods.clipdata import caption_pool
    from synscale.studies.synthclip import caption_prompts

    root, _ = laion_like
    pool = caption_pool(None, 25, "open_clip", shards=str(root))
    assert isinstance(pool.captions, samples.Captions) and not isinstance(pool.captions, (list, tuple))
    assert not isinstance(pool.images, np.ndarray) and not hasattr(pool.images, "offsets")
    assert isinstance(pool.take(12)[1], samples.Captions)
    ps = caption_prompts(pool.captions[:25], (), None, config="pool_captions")
    assert isinstance(ps.prompts, samples.Captions) and ps.labels.strides == (0,)  # -1 everywhere, no memory
    reads = []
    real = samples.SampleIndex.shard_columns
    monkeypatch.setattr(samples.SampleIndex, "shard_columns",
                        lambda self, s, names=samples.COLUMNS: reads.append(s) or real(self, s, names))
    assert pool.captions[21] == "caption 21" and reads == [2]
    assert list(pool.captions[3:6]) == ["caption 3", "caption 4", "caption 5"] and reads == [2, 0]
    assert pool.captions[:2] + ["x"] == ["caption 0", "caption 1", "x"] == ["caption 0"] + pool.captions[1:2] + ["x"]
    assert pool.captions.fingerprint() == __import__("hashlib").sha256(
        "\n".join(f"caption {i}" for i in range(25)).encode()).hexdigest()


def test_a_generated_set_opens_for_open_clip_from_its_index_without_reading_a_header(tmp_path, monkeypatch):
    """371M generated images: opening the set and cutting its first n samples reads the index's counts, never the
    shards' tar headers or images."""
    from synscale.data import arrays
    from synscale.methods import generate as G
    from synscale.methods.clipdata import GeneratedSet

    out = tmp_path / "set"
    out.mkdir()
    ims = np.zeros((10, 8, 8, 3), np.uint8)
    for j in range(3):
        G._write_shard(out / G.SHARD.format(j), ims, np.full(10, -1), [f"c{j * 10 + i}" for i in range(10)],
                       list(range(10)), 10 * j)
    G.write_index(out, 30, 10, {"classes": []})
    monkeypatch.setattr(arrays, "iter_keyed_samples", lambda *a: (_ for _ in ()).throw(AssertionError("scanned")))
    monkeypatch.setenv("SYNSCALE_CACHE", str(tmp_path / "cache"))
    g = GeneratedSet.read(out, "open_clip", prefix_n=25)
    cut = g.take(25)
    assert g._images is None and cut[:2] == [str(out / G.SHARD.format(0)), str(out / G.SHARD.format(1))]
    assert cut[2].endswith("-first5.tar")
