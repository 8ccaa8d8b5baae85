"""Caption matching over a LAION-style pool: today's ``retrieval.match`` (a Python loop over every caption and class)
beside ``retrieval.match_metadata`` (DuckDB over img2dataset's parquet metadata), measured side by side.

    .venv/bin/python benchmarks/retrieval_matching.py [--sizes 1000000 10000000] [--out /tmp/pool]

Writes synthetic pools (100 aircraft-style class names, ~3% of captions name one; parquet files of 10,000 rows as
img2dataset writes them, with ~5% failed downloads), then times each engine in a fresh process on the same pool —
captions/s, peak resident memory above the process's own after imports, and the match count (which must agree) —
and extrapolates both to LAION-2B's 2.32 billion captions. ``retrieval.match`` needs the captions as a Python list,
so its memory includes reading them; its time does not.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

LAION_2B = 2_320_000_000
MAKERS = ["Boeing", "Airbus", "Embraer", "Bombardier", "Cessna", "Beechcraft", "Dassault", "Fokker", "Tupolev",
          "Lockheed"]
WORDS = ("photo of a plane at the airport sunset sky runway blue white jet engine wing tail view from window "
         "flight travel vacation aviation airline cabin seat landing takeoff cloud city night light wallpaper "
         "poster model toy kit vintage old new red green logo art drawing").split()


def classes() -> list[str]:
    return [f"{m} {n}" for m in MAKERS for n in ("100", "200", "300", "400", "500", "600", "700", "800", "900",
                                                   "1000")]


def write_pool(out: Path, n: int, rows_per_file: int = 10_000, seed: int = 0) -> list[Path]:
    """``n`` captions of 6–14 random words; 3% carry one class name, 5% of rows are failed downloads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(out.glob("*.parquet"))
    if len(files) == -(-n // rows_per_file):
        return files
    rng = np.random.default_rng(seed)
    names, words = np.asarray(classes()), np.asarray(WORDS)
    for s, lo in enumerate(range(0, n, rows_per_file)):
        m = min(rows_per_file, n - lo)
        lengths = rng.integers(6, 15, m)
        w = words[rng.integers(0, len(words), (m, 14))]
        caps = [" ".join(r[:k]) for r, k in zip(w.tolist(), lengths.tolist())]
        named = np.flatnonzero(rng.random(m) < 0.03)
        for i, c in zip(named.tolist(), rng.integers(0, len(names), len(named)).tolist()):
            cut = caps[i].find(" ", len(caps[i]) // 2)
            caps[i] = f"{caps[i][:cut]} {names[c]}{caps[i][cut:]}" if cut > 0 else f"{caps[i]} {names[c]}"
        status = np.where(rng.random(m) < 0.05, "failed_to_download", "success")
        table = pa.table({"key": [f"{s:05d}{j:04d}" for j in range(m)], "caption": caps, "status": status})
        pq.write_table(table, out / f"{s:05d}.parquet")
    return sorted(out.glob("*.parquet"))


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure(engine: str, pool: Path) -> dict:
    """One engine on one pool, in this process (called in a fresh one by :func:`main`)."""
    from synscale.studies import retrieval as R

    files, names = sorted(pool.glob("*.parquet")), classes()
    base = _rss_gb()
    if engine == "match":
        import pyarrow.parquet as pq

        caps = []
        for f in files:
            t = pq.read_table(f, columns=["caption", "status"])
            caps += [c for c, s in zip(t["caption"].to_pylist(), t["status"].to_pylist()) if s == "success"]
        t0 = time.perf_counter()
        found = R.match(caps, names, "substring")
        seconds, n, hits = time.perf_counter() - t0, len(caps), len(found)
    else:
        t0 = time.perf_counter()
        cand, _ = R.match_metadata(files, names, ["substring"])["substring"]
        seconds, n, hits = time.perf_counter() - t0, cand.searched, len(cand)
    return {"engine": engine, "captions": n, "matches": hits, "seconds": seconds, "captions_per_s": n / seconds,
            "peak_gb_above_imports": _rss_gb() - base}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7])
    ap.add_argument("--out", type=Path, default=Path("/tmp/synscale-bench-pool"))
    ap.add_argument("--measure", nargs=2, metavar=("ENGINE", "POOL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.measure:
        print(json.dumps(measure(a.measure[0], Path(a.measure[1]))))
        return
    rows = []
    for size in map(int, a.sizes):
        t0 = time.perf_counter()
        pool = a.out / f"n{size}"
        write_pool(pool, size)
        print(f"pool of {size:,} captions ready ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        for engine in ("match", "duckdb"):
            out = subprocess.run([sys.executable, __file__, "--measure", engine, str(pool)], capture_output=True,
                                 text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], file=sys.stderr)
    print("| pool | engine | captions searched | matches | s | captions/s | speed-up | peak GB above imports | "
          "LAION-2B at this rate |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(rows):
        ref = rows[i - i % 2]
        speed = r["captions_per_s"] / ref["captions_per_s"]
        assert r["matches"] == ref["matches"], f"engines disagree: {r['matches']} vs {ref['matches']}"
        print(f"| {int(a.sizes[i // 2]):,} | {r['engine']} | {r['captions']:,} | {r['matches']:,} | "
              f"{r['seconds']:.1f} | {r['captions_per_s'] / 1e3:,.0f}k | {speed:.0f}× | "
              f"{r['peak_gb_above_imports']:.2f} | {LAION_2B / r['captions_per_s'] / 3600:.1f} h |")


if __name__ == "__main__":
    main()
