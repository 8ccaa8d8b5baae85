"""Self-checking cache files: atomic writes, size + sha256 records, damaged entries redone and never read."""
import json
import os

import numpy as np
import pytest

from synscale.runtime import integrity as I


def test_a_checked_file_round_trips_and_a_damaged_one_is_moved_aside_and_redone(tmp_path):
    f = tmp_path / "logits.npy"
    x = np.arange(12.0).reshape(3, 4)
    I.save(f, lambda tmp: np.save(tmp, x))
    assert not list(tmp_path.glob(".*tmp*")) and json.loads(I.sidecar(f).read_text())["size"] == f.stat().st_size
    assert np.array_equal(I.load(f, np.load), x)
    data = bytearray(f.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte inside the array: np.load would read it without complaint
    f.write_bytes(bytes(data))
    with pytest.warns(I.CacheDamageWarning, match=r"logits\.npy is damaged \(sha256 differs"):
        assert I.load(f, np.load) is None
    assert not f.exists() and (tmp_path / "logits.npy.damaged").exists()


@pytest.mark.parametrize("case", ["truncated", "no record", "unparsable"])
def test_json_caches_half_written_or_corrupted_are_recomputed(tmp_path, case):
    f = tmp_path / "metrics.json"
    I.save_json(f, {"fid": 1.5})
    assert I.load_json(f) == {"fid": 1.5}
    if case == "truncated":
        f.write_text(f.read_text()[:5])
    elif case == "no record":  # a writer killed between the rename and its record
        I.sidecar(f).unlink()
    else:  # matches its record but is not JSON (a broken writer): still never read
        f.write_text("{not json")
        I.write_json(I.sidecar(f), I.record(f))
    with pytest.warns(I.CacheDamageWarning):
        assert I.load_json(f) is None
    assert I.load_json(f) is None  # missing now: recompute, no second warning


def test_damage_names_what_is_wrong(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    rec = I.record(f)
    assert I.damage(f, rec) is None
    assert I.damage(tmp_path / "b.bin", rec) == "missing"
    f.write_bytes(b"ab")
    assert I.damage(f, rec) == "2 bytes where 3 were written"
    f.write_bytes(b"abd")
    os.utime(f, ns=(1, 1))  # a new mtime: the per-process memo does not hide the change
    assert "sha256" in I.damage(f, rec)


def test_temporary_names_keep_the_suffix_and_are_per_process(tmp_path):
    t = I.tmp_name(tmp_path / "x.npy")
    assert t.name == f".x.{os.getpid()}.tmp.npy" and t.parent == tmp_path
    t.write_bytes(b"")
    assert I.stale_tmps(tmp_path / "x.npy") == [t]


def test_reads_hash_small_files_and_a_sample_of_large_ones(tmp_path, monkeypatch):
    """At paper scale every process hashing every shard of a set read terabytes per run: a read checks the size,
    and hashes files up to SYNSCALE_VERIFY_BYTES and a fixed 1-in-64 sample of larger ones; SYNSCALE_VERIFY=full
    hashes every file, =size none. A flipped byte in a large file outside the sample passes a read; a full check
    (``synscale generate --verify``) finds it."""
    from synscale.runtime import integrity as I

    files = [tmp_path / f"{i:05d}.tar" for i in range(1000)]
    for f in files:
        f.write_bytes(b"x" * 100)
    recs = {f: I.record(f) for f in files}
    for f in files:
        f.write_bytes(b"y" + b"x" * 99)  # same size, other bytes
    I._VERIFIED.clear()
    monkeypatch.setenv("SYNSCALE_VERIFY_BYTES", "50")
    caught = [f for f in files if I.damage(f, recs[f]) is not None]
    assert 0 < len(caught) < 50  # the sample: about 1000/64 files
    assert caught == [f for f in files if I.damage(f, recs[f]) is not None]  # the same files every time
    assert all(I.damage(f, recs[f], full=True) for f in files)
    monkeypatch.setenv("SYNSCALE_VERIFY", "full")
    assert all(I.damage(f, recs[f]) for f in files)
    monkeypatch.setenv("SYNSCALE_VERIFY", "size")
    assert not any(I.damage(f, recs[f]) for f in files)
    monkeypatch.setenv("SYNSCALE_VERIFY_BYTES", "1000")
    monkeypatch.setenv("SYNSCALE_VERIFY", "auto")
    assert all(I.damage(f, recs[f]) for f in files)  # small files: always hashed
    monkeypatch.setenv("SYNSCALE_VERIFY", "sometimes")
    with pytest.raises(ValueError, match="SYNSCALE_VERIFY='sometimes'"):
        I.damage(files[0], recs[files[0]])
