"""Paper scale without surprises: every data stage of the paper path at N and 16·N samples, side by side.

    .venv/bin/python benchmarks/scale.py [--n 25000] [--factor 16] [--out /tmp/synscale-scale]

Writes stand-in data in the papers' layouts at both sizes, once: a LAION-like pool as img2dataset writes it (jpg +
txt + json per sample, 10,000 samples per shard, a parquet of key/caption/status beside each shard; 8x8 images,
captions of 6–14 words, 3% naming one of 100 classes) and a generated set as ``generate`` writes it (png + txt +
cls + json, 1,000 per shard, each shard's size and sha256 in its index). Then runs each stage in a fresh process
and prints its peak resident memory (the whole process, and the stage's own: above what the process held after its
imports, torch and pyarrow among them) and wall time at both sizes, and their ratios. Goal at 16× the data: the
stage's own peak memory at most 1.25× that at N (below a floor of 32 MB, allocator noise, it counts as flat) and
the time at most 20× (times under 0.5 s compared as 0.5 s).

Stages (what the paper path does with that data):
  pool_index      06/08/07: the sample index of the pool's shards, built (one pass over their tar headers)
  caption_pool    06: the pool's first n captions (``caption_pool``), iterated and fingerprinted
  prompt_set      06: the prompt set of those captions saved for the generation job (Parquet, streamed)
  rank_prompts    06: one generation rank (rank 3 of 8) reading its shards' prompts from that file
  generated_open  06: the generated set opened for open_clip (size + spot checks) and cut to its first n samples
  shard_verify    ``synscale generate --verify``: every shard hashed against its recorded sha256
  candidates      07: the captions searched (DuckDB over the parquet), the hits' images read at their offsets
  eval_decode     every image of the generated set decoded, in batches of 256
  list_reference  the old way, for contrast: every caption of the pool in one Python list (must fail the goal)

The extrapolation to the papers' counts (371M captions for 06, 2.32B for 07) takes the marginal time per sample
between the two sizes (fixed costs such as imports drop out) and the flat memory; it is printed for the stages
that meet the goal, for one process (the stages split by shard: k processes take 1/k of it). Times are this
machine's (the header names its CPU); run it on the node you plan to use.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FLOOR_MB = 32.0  # own memory below this counts as flat (allocator and page-cache noise)
FLOOR_S = 0.5    # times below this are compared as this (a 10 ms stage's ratio measures timer noise and start-up)
STAGES = ("pool_index", "caption_pool", "prompt_set", "rank_prompts", "generated_open", "shard_verify", "candidates",
          "eval_decode", "list_reference")
PAPER = {"pool_index": 371e6, "caption_pool": 371e6, "prompt_set": 371e6, "rank_prompts": 371e6 / 8,
         "generated_open": 371e6, "shard_verify": 371e6, "candidates": 2.32e9, "eval_decode": 371e6}
WORDS = ("photo of a plane at the airport sunset sky runway blue white jet engine wing tail view from window flight "
         "travel vacation aviation airline cabin seat landing takeoff cloud city night light wallpaper poster model "
         "toy kit vintage old new red green logo art drawing").split()
CLASSES = [f"{m} {n}" for m in ("Boeing", "Airbus", "Embraer", "Bombardier", "Cessna", "Beechcraft", "Dassault",
                                "Fokker", "Tupolev", "Lockheed") for n in range(100, 1100, 100)]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu() -> str:
    try:
        name = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or "unknown CPU"
    return f"{name}, {os.cpu_count()} cores"


# ----------------------------------------------------------------------------------------------------- data
def write_pool(out: Path, n: int, per_shard: int = 10_000, seed: int = 0) -> list[str]:
    """img2dataset's layout: NNNNN.tar (jpg, txt, json) + NNNNN.parquet (key, caption, status) per shard."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import webdataset as wds
    from PIL import Image

    done = out / f"complete-{n}"
    if not done.exists():
        out.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        jpg = []
        for v in range(16):  # a few distinct tiny images: the stages never look at pixels beyond decoding
            b = io.BytesIO()
            Image.fromarray(np.full((8, 8, 3), 16 * v, np.uint8)).save(b, format="JPEG", quality=90)
            jpg.append(b.getvalue())
        words, names = np.asarray(WORDS), np.asarray(CLASSES)
        for s, lo in enumerate(range(0, n, per_shard)):
            m = min(per_shard, n - lo)
            w = words[rng.integers(0, len(words), (m, 14))].tolist()
            caps = [" ".join(r[:k]) for r, k in zip(w, rng.integers(6, 15, m).tolist())]
            for i in np.flatnonzero(rng.random(m) < 0.03).tolist():
                caps[i] = f"{caps[i]} {names[rng.integers(0, len(names))]}"
            keys = [f"{s:05d}{j:04d}" for j in range(m)]
            with wds.TarWriter(str(out / f"{s:05d}.tar"), mtime=0.0) as tw:
                for j in range(m):
                    tw.write({"__key__": keys[j], "jpg": jpg[j % 16], "txt": caps[j],
                              "json": json.dumps({"key": keys[j], "caption": caps[j]}).encode()})
            pq.write_table(pa.table({"key": keys, "caption": caps, "status": ["success"] * m}),
                           out / f"{s:05d}.parquet")
        done.touch()
    return sorted(str(p) for p in out.glob("*.tar"))


def write_generated(out: Path, n: int, per_shard: int = 1000) -> Path:
    """A generated set as ``generate.generate_dataset`` writes it (its shard writer and index)."""
    from synscale.methods import generate as G

    if G.is_complete(out):
        return out
    out.mkdir(parents=True, exist_ok=True)
    images = np.stack([np.full((8, 8, 3), 16 * v, np.uint8) for v in range(16)])
    for j, lo in enumerate(range(0, n, per_shard)):
        hi = min(n, lo + per_shard)
        idx = np.arange(lo, hi)
        G._write_shard(out / G.SHARD.format(j), images[idx % 16], np.full(hi - lo, -1),
                       [f"generated caption {i}" for i in idx], idx.tolist(), lo)
    G.write_index(out, n, per_shard, {"classes": [], "prompt_config": "pool_captions", "guidance_scale": 2.0,
                                      "steps": 50, "seed": 0, "store_size": None, "batch_size": 64})
    return out


# ----------------------------------------------------------------------------------------------------- stages
def stage(name: str, root: Path, n: int) -> dict:
    """Run one stage on the data of size ``n`` under ``root`` in this process; returns what it counted."""
    pool, gen = root / f"pool-{n}", root / f"generated-{n}"
    urls = sorted(str(p) for p in pool.glob("*.tar"))
    if name == "pool_index":
        from synscale.data.samples import SampleIndex

        return {"samples": len(SampleIndex(urls))}
    if name == "caption_pool":
        from synscale.methods.clipdata import caption_pool

        p = caption_pool(None, n, "open_clip", shards=str(pool))
        return {"captions": sum(1 for _ in p.captions), "fingerprint": p.captions.fingerprint()[:12]}
    if name == "prompt_set":
        from synscale.methods.clipdata import caption_pool
        from synscale.studies.synthclip import caption_prompts

        p = caption_pool(None, n, "open_clip", shards=str(pool))
        ps = caption_prompts(p.captions, (), None, config="pool_captions")
        ps.save(root / f"job-{n}" / "prompts.parquet")
        return {"prompts": len(ps)}
    if name == "rank_prompts":
        from synscale.data import prompts as P

        ps = P.load(root / f"job-{n}" / "prompts.parquet", ())
        shard, world, rank = 1000, 8, 3
        got = 0
        for j in range(rank, -(-len(ps) // shard), world):  # generate_dataset's share: shards j ≡ rank (mod world)
            got += len(list(ps.prompts[j * shard:(j + 1) * shard]))
            ps.labels[j * shard:(j + 1) * shard]
        return {"prompts_read": got}
    if name == "generated_open":
        from synscale.methods.clipdata import GeneratedSet

        g = GeneratedSet.read(gen, "open_clip", prefix_n=n)
        return {"shards": len(g.take(n - 7))}
    if name == "shard_verify":
        from synscale.methods import generate as G

        return {"damaged": len(G.damaged_shards(gen, full=True))}
    if name == "candidates":
        from synscale.studies import retrieval

        found = retrieval.match_shards(urls, CLASSES, modes=("substring",))
        cand, images = found["substring"]
        k = min(len(images), 512)
        pixels = sum(int(images[i].sum() > 0) for i in range(0, len(images), max(1, len(images) // k)))
        return {"hits": len(cand), "decoded": pixels}
    if name == "eval_decode":
        from synscale.data.shards import read_pairs
        from synscale.methods import generate as G

        images = read_pairs(G.shard_urls(gen), n).images
        total = 0
        for a in range(0, len(images), 256):
            total += int(images[a:a + 256].shape[0])
        return {"decoded": total}
    if name == "list_reference":
        from synscale.data.arrays import scan_shards

        _, small = scan_shards(urls)
        captions = [b.decode() for b in small["txt"]]
        return {"captions": len(captions)}
    raise ValueError(f"unknown stage {name!r}: one of {', '.join(STAGES)}")


def measure(name: str, root: Path, n: int) -> dict:
    """The stage in a fresh process (its own cache under ``root``): peak RSS, RSS after imports, seconds."""
    code = ("import json, sys, time, resource\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "import scale\n"
            "scale.warm_imports()\n"
            "base = scale.rss_mb()\n"
            "t = time.perf_counter()\n"
            "got = scale.stage(sys.argv[2], scale.Path(sys.argv[3]), int(sys.argv[4]))\n"
            "print(json.dumps({'seconds': time.perf_counter() - t, 'peak_mb': scale.rss_mb(), 'base_mb': base,"
            " **got}))\n")
    env = {**os.environ, "SYNSCALE_CACHE": str(root / f"cache-{n}"), "SYNSCALE_OUTPUTS": str(root / "outputs")}
    if name == "pool_index":  # measured from scratch: the index of every shard is built in this process
        shutil.rmtree(root / f"cache-{n}" / "sample_index", ignore_errors=True)
    r = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), name, str(root), str(n)],
                       capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(f"stage {name} at {n:,} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def warm_imports() -> None:
    """What every stage imports anyway (numpy, pyarrow, PIL, webdataset, synscale's data layer): loaded before the
    baseline, so 'above imports' is the stage's own memory."""
    import pyarrow.parquet  # noqa: F401
    import webdataset  # noqa: F401
    from PIL import Image  # noqa: F401

    import synscale.data.prompts  # noqa: F401
    import synscale.data.samples  # noqa: F401
    import synscale.methods.clipdata  # noqa: F401
    import synscale.studies.retrieval  # noqa: F401
    import synscale.studies.synthclip  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=25_000, help="the smaller size (samples)")
    ap.add_argument("--factor", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("/tmp/synscale-scale"))
    ap.add_argument("--stages", nargs="*", default=list(STAGES))
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    a = ap.parse_args(argv)
    sizes = (a.n, a.n * a.factor)
    t = time.perf_counter()
    for n in sizes:
        write_pool(a.out / f"pool-{n}", n)
        os.environ.setdefault("SYNSCALE_CACHE", str(a.out / "cache-data"))
        write_generated(a.out / f"generated-{n}", n)
    print(f"# synscale scale benchmark: {cpu()}; data written/reused in {time.perf_counter() - t:.0f} s under {a.out}")
    print(f"| stage | own peak MB at {sizes[0]:,} | at {sizes[1]:,} | ratio | process peak MB | "
          f"seconds at {sizes[0]:,} | at {sizes[1]:,} | ratio | goal | at the paper's count, one process |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    failed, raw = [], {}
    for name in a.stages:
        small, big = (measure(name, a.out, n) for n in sizes)
        raw[name] = {"sizes": sizes, "small": small, "big": big}
        if a.json:
            a.json.write_text(json.dumps({"cpu": cpu(), "stages": raw}, indent=1))
        own = [max(0.0, r["peak_mb"] - r["base_mb"]) for r in (small, big)]
        rss = max(own[1], FLOOR_MB) / max(own[0], FLOOR_MB)
        sec = max(big["seconds"], FLOOR_S) / max(small["seconds"], FLOOR_S)
        ok = rss <= 1.25 and sec <= 20
        if not ok and name != "list_reference":
            failed.append(name)
        paper = PAPER.get(name)
        per = max(big["seconds"] - small["seconds"], 0.0) / (sizes[1] - sizes[0])  # marginal s per sample
        at = f"{paper * per / 3600:,.1f} h, {big['peak_mb']:,.0f} MB" if ok and paper else "—"
        print(f"| {name} | {own[0]:,.0f} | {own[1]:,.0f} | {rss:.2f} | {small['peak_mb']:,.0f} → "
              f"{big['peak_mb']:,.0f} | {small['seconds']:.1f} | {big['seconds']:.1f} | {sec:.1f} | "
              f"{'met' if ok else 'MISSED'} | {at} |")
    if failed:
        print(f"goal missed by: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
