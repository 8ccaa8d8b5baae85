"""The fidelity ledger: every published row a notebook reproduces has a run of its paper profile or a declared gap,
declared gaps and extensions are real, every setting names a key of the paper profile, and the page is current."""
from pathlib import Path

import pytest

from synscale.orchestration import ledger as L

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def grid():
    return L.grid()


def test_every_published_row_runs_or_is_a_declared_gap(grid):
    missing = grid[grid.status == "missing"]
    assert missing.empty, "published rows no paper profile makes (run them or declare a gap in ledger.yaml):\n" + \
        missing[["notebook", "source", "row"]].to_string()
    assert (grid.status == "run").sum() >= 150 and set(grid.notebook) == set(L.GRIDS)


def test_the_grids_are_the_published_tables():
    """Independent of the ledger's own reading: 03 trains every configuration of Tables A4-A6."""
    import pandas as pd

    ref = pd.read_csv(ROOT.parent / "shared" / "reference" / "fan_tableA4_A6_configs.csv") \
        if (ROOT.parent / "shared" / "reference").exists() else L.table("fan_tableA4_A6_configs")
    specs = {L._spec(s) for s in L.paper_params("03_synthetic_1p3m")[0]["specs"]}
    assert len(ref) == 52 and all(L.spec_of(r.t2i_model, r.prompt_config, r.cfg_scale) in specs
                                  for r in ref.itertuples())


def test_a_profile_that_loses_a_row_fails(grid, monkeypatch):
    real = L.paper_params

    def fewer(stem):
        runs = real(stem)
        if stem == "03_synthetic_1p3m":
            runs = [{**p, "specs": [s for s in p["specs"] if s != "sd/word2sen/2.0"]} for p in runs]
        return runs

    monkeypatch.setattr(L, "paper_params", fewer)
    g = L.grid()
    assert list(g[g.status == "missing"].row) == ["sd/word2sen/2"]


def test_declared_gaps_and_extensions_are_what_they_say(grid):
    gaps = {(g["notebook"], g["row"]) for g in L.ledger()["gaps"]}
    ext = {(g["notebook"], g["row"]) for g in L.ledger()["extensions"]}
    status = {(r.notebook, r.row): r.status for r in grid.itertuples()}
    assert {k: status.get(k) for k in gaps if status.get(k) != "gap"} == {}, "stale gaps (now run, or no such row)"
    assert {k: status.get(k) for k in ext if status.get(k) != "extension"} == {}, "stale extensions"


def test_every_setting_is_read_from_the_paper_profile():
    s = L.settings()
    assert len(s) == len(L.ledger()["settings"]) and (s.ours != "").all()
    assert set(s.notebook) >= set(L.GRIDS)


def test_the_page_is_current():
    page = ROOT / L.PAGE
    assert page.read_text(encoding="utf-8") == L.render(), "docs/fidelity.md is stale: run `synscale ledger`"


def test_the_readme_counts_are_the_ledgers(grid):
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    n = {k: int((grid.status == k).sum()) for k in ("run", "gap", "extension")}
    assert f"{n['run']} rows run, {n['gap']} are declared gaps" in text
    assert f"{n['extension']} runs are extensions" in text
