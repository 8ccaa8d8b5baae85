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
