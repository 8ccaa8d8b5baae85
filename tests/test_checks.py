"""Each notebook's parameter check (synscale.orchestration.checks): every shipped profile passes it, a wrong value is
one line naming the parameter, and the runner refuses such a run before any kernel starts."""
import pytest

from synscale.orchestration import checks
from synscale.orchestration import run as R
from synscale.orchestration.params import ParamsError


@pytest.fixture(scope="module")
def plans():
    return {prof: R.plan(R.experiments([]), prof) for prof in ("smoke", "mini", "paper", "rehearsal")}


def test_every_notebook_has_a_check_and_every_shipped_profile_passes_it(plans):
    stems = {r.stem[:2] for runs in plans.values() for r in runs}
    assert stems == set(checks.CHECKS) == {f"0{i}" for i in range(10)}
    checked = [(r.stem, r.profile, m) for runs in plans.values() for r in runs
               for m in checks.problems(r.stem, r.params)]
    assert sum(len(runs) for runs in plans.values()) >= 44 and checked == []


def _params(plans, stem):
    return dict(next(r.params for r in plans["mini"] if r.stem.startswith(stem)))


@pytest.mark.parametrize("stem, change, says", [
    ("00", {"build_into": "tmp"}, "build_into must be 'run' or 'shipped'"),
    ("01", {"prompt_configs": ["classnames", "haiku"]}, "unknown prompt_configs ['haiku']"),
    ("02", {"family": "dalle"}, "family must be one of ['sd', 'if', 'muse']"),
    ("03", {"specs": ["sd/classnames/2"]}, "specs must include 'real'"),
    ("04", {"sizes": [800, 400, 200]}, "sizes must be >= 3 increasing"),
    ("05", {"specs": ["real", "sd/classnames/2"]}, "specs must include 'sd/in_captions/2'"),
    ("06", {"modes": ["real", "fake"]}, "modes ['fake'] not allowed"),
    ("06", {"trainer": "synscale", "clip_model": "ViT-B-16"}, "set trainer: open_clip"),
    ("06", {"trainer": "open_clip", "clip_model": "ViT-Q-99"}, "unknown open_clip model 'ViT-Q-99'"),
    ("07", {"taus": [0.5, 0.2]}, "taus must be a non-empty increasing list"),
    ("08", {"sizes": [400, 8000]}, "the largest size 8000 needs a caption pool"),
])
def test_a_wrong_parameter_is_one_line_naming_it(plans, stem, change, says):
    p = {**_params(plans, stem), **change}
    found = checks.problems(stem, p)
    assert len(found) == 1 and says in found[0] and "\n" not in found[0], found
    with pytest.raises(ParamsError, match="notebook .* parameters: ") as e:
        checks.require(stem, p)  # what the notebook's own cell raises
    assert "\n" not in str(e.value)


def test_a_parameter_the_check_reads_but_the_notebook_lacks_is_one_line(plans):
    p = _params(plans, "06")
    del p["p_synthetic"]
    assert checks.problems("06_clip_mixing", p) == [
        "parameter 'p_synthetic' is not in notebook 06_clip_mixing's parameters cell, "
        "but synscale.orchestration.checks reads it: "
        "restore it there or update the check"]


def test_the_runner_lists_bad_parameters_before_any_kernel(toy_world, monkeypatch, capsys):
    monkeypatch.setitem(checks.CHECKS, "to", lambda p: [f"x must be odd, got {p['x']}"] if p["x"] % 2 == 0 else [])
    assert R.main(["toy", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "error: parameters the notebooks would reject (1):" and len(err) == 3, err
    assert err[1].startswith("  toy/smoke/x=2__") and err[1].endswith(": x must be odd, got 2")
    assert not (toy_world / "toy").exists()
    assert R.main(["toy", "--profile", "smoke", "--dry-run"]) == 0
    assert "parameters toy/smoke/x=2__" in capsys.readouterr().out
