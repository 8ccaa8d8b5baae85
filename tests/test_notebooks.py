"""Every notebook: params file beside it, valid, with the three profiles; executed on smoke through the runner."""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synscale.orchestration import params as P

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
STEMS = [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("stem", STEMS)
def test_params_file_is_valid_with_the_three_profiles(stem):
    pf = P.load(ROOT / "params" / f"{stem}.yaml", ROOT / "notebooks" / f"{stem}.ipynb")
    assert {"smoke", "mini", "paper"} <= set(pf.profiles), f"{stem}: profiles smoke, mini and paper are required"
    assert pf.description
    for profile in ("smoke", "mini"):
        assert pf.runs(profile)
    assert "profile" in pf.allowed and "seed" in pf.allowed


@pytest.mark.parametrize("stem", STEMS)
def test_parameters_cell_is_the_mini_study(stem):
    """papermill's convention: the parameters cell is what an interactive run uses. JupyterLab's Run All must run
    the default (mini) study, never a paper-scale value (a ViT-B/16 at batch 4096 on a laptop's CPU)."""
    import papermill

    pf = P.load(ROOT / "params" / f"{stem}.yaml", ROOT / "notebooks" / f"{stem}.ipynb")
    cell = {k: ast.literal_eval(v["default"]) for k, v in papermill.inspect_notebook(
        str(ROOT / "notebooks" / f"{stem}.ipynb")).items()}
    mini = pf.runs("mini")[0].params
    assert cell == mini, {k: (cell.get(k), mini.get(k)) for k in set(cell) | set(mini) if cell.get(k) != mini.get(k)}


def test_a_notebook_runs_through_a_jupyter_server_as_written(tmp_path):
    """JupyterLab's path: a server session for the notebook, its cells sent over the kernel's websocket, no
    papermill and no injected cell; results land in outputs/_interactive/<stem>/."""
    from synscale.orchestration import labrun

    r = labrun.run_all(ROOT / "notebooks" / "_template.ipynb", env={"SYNSCALE_OUTPUTS": str(tmp_path)})
    assert r.cells >= 4 and r.peak_rss_mb > 0
    metrics = json.loads((tmp_path / "_interactive" / "_template" / "metrics.json").read_text())
    assert {"mean", "std", "wall_time_s"} <= set(metrics) and metrics["wall_time_s"] > 0
    with pytest.raises(labrun.CellError, match=r"code cell \d+ of \d+ raised"):
        bad = tmp_path / "bad.ipynb"
        bad.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "1 / 0", "metadata": {}, "outputs": [],
                                              "execution_count": None}], "metadata": {}, "nbformat": 4,
                                   "nbformat_minor": 5}))
        labrun.run_all(bad)


@pytest.mark.notebook
@pytest.mark.parametrize("stem", [s for s in STEMS if s != "09_generators"])  # 09: tests/test_generators.py
def test_notebook_runs_on_smoke_through_the_runner(stem, smoke_study):
    tmp_path, res = smoke_study
    assert res.returncode in (0, 1), res.stderr[-3000:]  # 1: some notebook failed (each test says which)
    assert (tmp_path / stem / "smoke").is_dir(), f"{stem} did not run: " + res.stderr[-3000:]
    failed = sorted((tmp_path / stem / "smoke").glob("*/FAILED"))
    assert not failed, "\n".join(f"{f.parent}: {f.read_text()}" + (f.parent / "run.log").read_text()[-3000:]
                                  for f in failed)
    runs = [d for d in (tmp_path / stem / "smoke").iterdir() if d.is_dir()]
    assert runs
    for d in runs:
        prov = json.loads((d / "provenance.json").read_text())
        assert prov["status"] == "done" and prov["profile"] == "smoke"
        metrics = json.loads((d / "metrics.json").read_text())
        assert metrics.get("wall_time_s", 0) > 0, "every notebook prints and records its wall time"
        assert len(metrics) >= 2
        assert "Traceback" not in (d / "report.html").read_text()
    assert (tmp_path / "index.html").exists() and (tmp_path / stem / "smoke" / "summary.csv").exists()


@pytest.mark.notebook
def test_verdicts_do_not_depend_on_the_cpus_instruction_set(smoke_study, tmp_path):
    """03's claims again with every kernel capped to SSE4 (no AVX at all) and a cache of its own, so that every
    set and classifier is made anew under that cap: the numbers differ in their last bits, the verdicts do not."""
    import pandas as pd

    out, _ = smoke_study
    env = {**os.environ, "SYNSCALE_OUTPUTS": str(tmp_path), "SYNSCALE_CACHE": str(tmp_path / "_cache"),
           "SYNSCALE_CPU_ISA": "sse4"}
    res = subprocess.run([sys.executable, "-m", "synscale", "run", "03", "--profile", "smoke", "--no-html"],
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]

    def claims(root):
        (run,) = [d for d in (root / "03_synthetic_1p3m" / "smoke").iterdir() if d.is_dir()]
        prov = json.loads((run / "provenance.json").read_text())
        return prov["cpu_isa"], pd.read_csv(run / "tables" / "findings.csv").set_index("key")

    (isa_a, a), (isa_b, b) = claims(out), claims(tmp_path)
    assert (isa_a, isa_b) == ("avx2", "sse4") and len(a) >= 2
    assert a.verdict.to_dict() == b.verdict.to_dict()
    assert not a.effect.equals(b.effect)  # other kernels did run: the same verdicts are not the same numbers
