"""06's and 07's rehearsals on LAION stand-ins of N and 16·N captions: does a notebook's memory stay flat in its pool?

    .venv/bin/python benchmarks/rehearsal_pool.py [--n 6250] [--factor 16] [--root /tmp/synscale-rehearsal-pool]

The rehearsal's stand-ins are built once (``synscale rehearsal build``); then, per size, a LAION-400M stand-in (06's
caption pool: the mini world's captions and images, repeated) and a LAION-2B stand-in (07's retrieval pool: 2% of
its captions name an aircraft variant, one names the rare Cessna 172) are written as img2dataset writes them, and
``synscale run 06`` and ``synscale run 07 --profile rehearsal`` run on them, each in a fresh runner with fresh
caches. The table gives each notebook's peak resident memory (the largest process of the run, its kernel: wait4's
``ru_maxrss`` over the runner's descendants) and wall time at both sizes, and their ratios. Memory does not depend
on the machine's load; the times do. Goal: memory ratio at most 1.25 at 16× the pool.

06 reads only its largest scale's captions of the pool (a shard prefix), so its pool's size should not show at all;
07 searches the whole pool (DuckDB over the parquet beside the shards), scores and finetunes on what it finds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

GOAL = 1.25


def write_pools(root: Path, n: int) -> dict[str, str]:
    """The two LAION stand-ins of ``n`` captions under ``root``, written once; returns the variables naming them."""
    from synscale.data.world import open_world
    from synscale.orchestration.rehearsal import data as D

    out = {"SYNSCALE_LAION": root / f"laion400m-{n}", "SYNSCALE_LAION2B": root / f"laion2b-{n}"}
    if not all((p / "DONE").exists() for p in out.values()):
        world = open_world("mini", 0)
        x, _ = world.split("pool")
        caps = world.captions("pool")
        take = np.arange(n) % len(x)  # the mini world's 40k pool pairs, repeated
        for var, captions in (("SYNSCALE_LAION", [caps[i] for i in take]),
                              ("SYNSCALE_LAION2B", D.aircraft_captions(n, seed=2, named=0.02))):
            D.img2dataset(out[var], x[take], captions, shard_size=1000, seed=2)
            (out[var] / "DONE").write_text(str(n))
    return {k: str(v) for k, v in out.items()}


def run(stem: str, env: dict[str, str], outputs: Path) -> dict:
    """``synscale run <stem> --profile rehearsal`` in a child; its peak RSS (the largest descendant) and time."""
    code = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
            "rc = subprocess.run(sys.argv[1:]).returncode; "
            "print(json.dumps({'rc': rc, 'seconds': time.perf_counter() - t, "
            "'peak_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))")
    cmd = [sys.executable, "-c", code, sys.executable, "-m", "synscale", "run", stem, "--profile", "rehearsal",
           "--no-html", "--jobs", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env,
                                                                    "SYNSCALE_OUTPUTS": str(outputs)})
    last = [line for line in res.stdout.splitlines() if line.startswith("{")]
    if not last or json.loads(last[-1])["rc"] != 0:
        raise SystemExit(f"{stem} failed at {outputs}: {res.stderr[-2000:]}")
    return json.loads(last[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=6250, help="the smaller pool (captions)")
    ap.add_argument("--factor", type=int, default=16)
    ap.add_argument("--root", type=Path, default=Path("/tmp/synscale-rehearsal-pool"))
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    a = ap.parse_args(argv)
    from synscale.orchestration.rehearsal.cli import build

    t0 = time.perf_counter()
    env = build(a.root / "standins")
    sizes = (a.n, a.n * a.factor)
    pools = {n: write_pools(a.root / "pools", n) for n in sizes}
    print(f"# stand-ins and pools of {sizes[0]:,} and {sizes[1]:,} captions ready in {time.perf_counter() - t0:.0f} s "
          f"under {a.root}")
    rows = []
    for stem in ("06", "07"):
        got = {n: run(stem, {**env, **pools[n]}, a.root / f"outputs-{stem}-{n}") for n in sizes}
        lo, hi = got[sizes[0]], got[sizes[1]]
        mem, sec = hi["peak_mb"] / lo["peak_mb"], hi["seconds"] / lo["seconds"]
        rows.append({"notebook": stem, **{f"peak_mb_{n}": got[n]["peak_mb"] for n in sizes},
                     **{f"seconds_{n}": got[n]["seconds"] for n in sizes}, "memory_ratio": mem, "time_ratio": sec,
                     "goal": "met" if mem <= GOAL else "MISSED"})
    print(f"| notebook | peak MB at {sizes[0]:,} | at {sizes[1]:,} | ratio | seconds at {sizes[0]:,} | at {sizes[1]:,} "
          f"| ratio | memory goal (≤ {GOAL}) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['notebook']} | {r[f'peak_mb_{sizes[0]}']:,.0f} | {r[f'peak_mb_{sizes[1]}']:,.0f} | "
              f"{r['memory_ratio']:.2f} | {r[f'seconds_{sizes[0]}']:.0f} | {r[f'seconds_{sizes[1]}']:.0f} | "
              f"{r['time_ratio']:.2f} | {r['goal']} |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0 if all(r["goal"] == "met" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
