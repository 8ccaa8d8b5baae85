"""Every notebook: params file beside it, valid, with the three profiles; executed on smoke through the runner."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synscale import params as P

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


@pytest.mark.notebook
@pytest.mark.parametrize("stem", STEMS)
def test_notebook_runs_on_smoke_through_the_runner(stem, tmp_path):
    env = {**os.environ, "SYNSCALE_OUTPUTS": str(tmp_path)}
    res = subprocess.run([sys.executable, "-m", "synscale.run", stem, "--profile", "smoke"],
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
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
