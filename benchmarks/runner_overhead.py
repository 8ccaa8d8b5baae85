"""Runner overhead per run on this machine: papermill + kernel start + HTML report, measured side by side.

    .venv/bin/python benchmarks/runner_overhead.py [--repeats 5]

Runs the fixture notebook tests/fixtures/notebooks/toy.ipynb (a few lines of Python) through the runner's
``execute`` with and without the HTML report, and its code in-process, and prints medians and the overhead.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    os.environ.update(SYNSCALE_NOTEBOOKS=str(FIX / "notebooks"), SYNSCALE_PARAMS=str(FIX / "params"))
    from synscale.orchestration import params as P
    from synscale.orchestration.run import execute

    run = P.load(FIX / "params" / "toy.yaml", FIX / "notebooks" / "toy.ipynb").runs("smoke")[0]
    times: dict[str, list[float]] = {"runner+html": [], "runner": [], "in-process": []}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SYNSCALE_RUN_DIR"] = tmp
        for i in range(args.repeats):
            for label, html in (("runner+html", True), ("runner", False)):
                t = time.perf_counter()
                res = execute(run, Path(tmp) / f"{label}{i}", html=html)
                times[label].append(time.perf_counter() - t)
                assert res.ok, res.error
            os.environ["SYNSCALE_RUN_DIR"] = tmp
            t = time.perf_counter()
            from synscale import record  # what the notebook's code cells do

            record("y", run.params["x"] * run.params["scale"])
            record("label", run.params["label"])
            times["in-process"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:12s} median {v:7.3f} s over {args.repeats} runs")
    print(f"overhead per run (papermill + kernel start + provenance): {med['runner'] - med['in-process']:.2f} s; "
          f"HTML report adds {med['runner+html'] - med['runner']:.2f} s")


if __name__ == "__main__":
    main()
