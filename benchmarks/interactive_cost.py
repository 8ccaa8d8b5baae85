"""What opening each notebook in JupyterLab and running all its cells costs: wall time and the kernel's peak memory.

Each notebook runs as JupyterLab runs it (``synscale.orchestration.labrun``: a Jupyter server session, the cells over
the kernel's websocket, the parameters cell as written, i.e. the mini study), in notebook order, into one outputs
folder, so a later notebook reuses what an earlier one cached, as it does for a user who works through them in order.
With ``--cache`` the runs start from the caches of a finished study (the user who opens JupyterLab after
``./run_all.sh``: generated sets, classifiers and CLIP runs are reused); without it from empty ones.

    .venv/bin/python benchmarks/interactive_cost.py --outputs /tmp/interactive [--cache outputs/_cache] [00 01 ...]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from synscale.orchestration import labrun
from synscale.runtime.paths import ROOT


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stems", nargs="*", help="notebook stems or prefixes (default: 00-08)")
    ap.add_argument("--outputs", type=Path, required=True, help="a fresh outputs folder")
    ap.add_argument("--cache", type=Path, help="the caches to start from (default: <outputs>/_cache, empty)")
    a = ap.parse_args(argv)
    notebooks = sorted((ROOT / "notebooks").glob("0*.ipynb"))
    if a.stems:
        notebooks = [n for n in notebooks if any(n.stem.startswith(s) for s in a.stems)]
    env = {"SYNSCALE_OUTPUTS": str(a.outputs.resolve()), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if a.cache:
        env["SYNSCALE_CACHE"] = str(a.cache.resolve())
    print("| notebook | wall time (min) | kernel peak memory (GB) |\n|---|---|---|", flush=True)
    for nb in notebooks:
        r = labrun.run_all(nb, env={**os.environ, **env})
        print(f"| {nb.stem} | {r.wall_s / 60:.1f} | {r.peak_rss_mb / 1024:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
