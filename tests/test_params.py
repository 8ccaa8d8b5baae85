"""Params files: grid expansion, run naming and keys, and the one-line validation errors."""
import re
import shutil

import pytest
from conftest import FIXTURES

from synscale.orchestration import params as P

NB = FIXTURES / "notebooks" / "toy.ipynb"
ALLOWED = "allowed keys: fail, flags, label, scale, sleep_s, x"


def write(tmp_path, text, stem="toy"):
    p = tmp_path / f"{stem}.yaml"
    p.write_text(text)
    return p


def load(tmp_path, text):
    return P.load(write(tmp_path, text), NB)


def test_notebook_parameters_are_read_with_types():
    assert P.notebook_parameters(NB) == {
        "x": "int", "scale": "float", "label": "str", "fail": "bool", "sleep_s": "float", "flags": "list",
    }


def test_grid_is_union_of_cartesian_subgrids_in_order():
    runs = P.load(FIXTURES / "params" / "toy.yaml", NB).runs("mini")
    got = [(r.params["x"], r.params["scale"], r.params["label"]) for r in runs]
    assert got == [(1, 0.5, "a"), (1, 2.0, "a"), (2, 0.5, "a"), (2, 2.0, "a"), (3, 1.0, "b")]


def test_duplicate_points_across_subgrids_run_once(tmp_path):
    pf = load(tmp_path, "grid:\n  - {x: [1, 2]}\n  - {x: [2, 3]}\nprofiles: {smoke: {}}\n")
    assert [r.params["x"] for r in pf.runs("smoke")] == [1, 2, 3]


def test_profile_overrides_defaults_and_may_replace_grid(tmp_path):
    pf = load(tmp_path, "defaults: {x: 1, scale: 3.0}\ngrid: [{x: [1, 2]}]\n"
                        "profiles:\n  smoke: {scale: 0.5, grid: [{label: [p, q]}]}\n  mini: {}\n")
    smoke = pf.runs("smoke")
    assert [(r.params["x"], r.params["scale"], r.params["label"]) for r in smoke] == [(1, 0.5, "p"), (1, 0.5, "q")]
    assert [r.params["x"] for r in pf.runs("mini")] == [1, 2]
    assert all(r.params["scale"] == 3.0 for r in pf.runs("mini"))


def test_no_grid_gives_one_run(tmp_path):
    runs = load(tmp_path, "defaults: {x: 4}\nprofiles: {smoke: {}}\n").runs("smoke")
    assert len(runs) == 1 and runs[0].name.startswith("run__")
    # resolved params are complete: the notebook's literals fill what the file leaves out
    assert runs[0].params == {"x": 4, "scale": 1.0, "label": "a", "fail": False, "sleep_s": 0.0, "flags": [1, 2]}


def test_run_names_are_hive_style_with_hash8():
    runs = P.load(FIXTURES / "params" / "toy.yaml", NB).runs("mini")
    assert runs[0].name.startswith("x=1__scale=0.5__label=a__")
    assert all(re.fullmatch(r"[A-Za-z0-9.=+_-]+__[0-9a-f]{8}", r.name) for r in runs)
    assert len({r.name for r in runs}) == len(runs)
    assert runs[-1].name.startswith("x=3__scale=1__label=b__")  # axes absent from a sub-grid show their value


def test_fmt_value_is_path_safe():
    assert P.fmt_value(7.5) == "7.5" and P.fmt_value(1.0e-3) == "0.001" and P.fmt_value(True) == "true"
    assert P.fmt_value("a photo/of x") == "a-photo-of-x" and P.fmt_value([1, "b"]) == "1+b"


def test_run_key_depends_on_params_and_code_but_is_stable():
    pf = P.load(FIXTURES / "params" / "toy.yaml", NB)
    a, b = pf.runs("smoke", "code v1"), pf.runs("smoke", "code v1")
    assert [r.key for r in a] == [r.key for r in b]
    assert len({r.key for r in a}) == len(a)
    c = pf.runs("smoke", "code v2")
    assert all(x.key != y.key and x.name == y.name for x, y in zip(a, c))  # same dir, new key


def test_run_key_carries_the_mini_world_only_for_runs_that_read_it(tmp_path):
    pf = P.load(FIXTURES / "params" / "toy.yaml", NB)  # no `world` parameter: the mini world
    a, b = pf.runs("smoke", "code", world="manifest 1"), pf.runs("smoke", "code", world="manifest 2")
    assert all(x.key != y.key and x.name == y.name for x, y in zip(a, b))
    nb = tmp_path / "nb.ipynb"
    nb.write_text(NB.read_text().replace('x = 1\\n', 'x = 1\\nworld = \\"mini\\"\\n', 1))
    (tmp_path / "p.yaml").write_text("profiles: {mini: {}, paper: {world: /data/imagenet}}\n")
    pf = P.load(tmp_path / "p.yaml", nb)
    assert pf.runs("mini", "code", world="m1")[0].key != pf.runs("mini", "code", world="m2")[0].key
    assert pf.runs("paper", "code", world="m1")[0].key == pf.runs("paper", "code", world="m2")[0].key


def test_code_source_reads_code_cells_only():
    src = P.code_source(NB)
    assert "record(\"y\"" in src and "Toy notebook" not in src


@pytest.mark.parametrize("text, where, what", [
    ("defaults: {xx: 1}\nprofiles: {smoke: {}}\n", "defaults.xx", "unknown key 'xx'"),
    ("profiles: {smoke: {scal: 1.0}}\n", "profiles.smoke.scal", "unknown key 'scal'"),
    ("grid: [{y: [1]}]\nprofiles: {smoke: {}}\n", "grid[0].y", "unknown key 'y'"),
    ("defaults: {x: '3'}\nprofiles: {smoke: {}}\n", "defaults.x", "wrong type: expected int"),
    ("defaults: {scale: 1e-3}\nprofiles: {smoke: {}}\n", "defaults.scale", "expected float"),
    ("defaults: {x: true}\nprofiles: {smoke: {}}\n", "defaults.x", "expected int"),
    ("grid: [{fail: [false, 'yes']}]\nprofiles: {smoke: {}}\n", "grid[0].fail", "expected bool"),
    ("grid: []\nprofiles: {smoke: {}}\n", "grid", "empty grid"),
    ("grid:\nprofiles: {smoke: {}}\n", "grid", "empty grid"),
    ("grid: [{}]\nprofiles: {smoke: {}}\n", "grid[0]", "empty sub-grid"),
    ("grid: [{x: []}]\nprofiles: {smoke: {}}\n", "grid[0].x", "empty grid axis"),
    ("profiles: {smoke: {grid: []}}\n", "profiles.smoke.grid", "empty grid"),
])
def test_validation_errors_are_one_line_naming_file_key_and_allowed(tmp_path, text, where, what):
    with pytest.raises(P.ParamsError) as e:
        load(tmp_path, text)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(str(tmp_path / "toy.yaml") + f": {where}: ")
    assert what in msg and msg.endswith(ALLOWED)


def test_int_is_accepted_for_a_float_parameter(tmp_path):
    assert load(tmp_path, "defaults: {scale: 2}\nprofiles: {smoke: {}}\n").runs("smoke")[0].params["scale"] == 2


def test_unknown_top_level_key_and_bad_yaml_and_unknown_profile(tmp_path):
    with pytest.raises(P.ParamsError, match=r"toy.yaml: unknown top-level key 'grids'; allowed keys: description"):
        load(tmp_path, "grids: []\n")
    with pytest.raises(P.ParamsError, match=r"toy.yaml: not valid YAML at line \d"):
        load(tmp_path, "defaults:\n  x: [1\n")
    pf = load(tmp_path, "profiles: {smoke: {}, mini: {}}\n")
    with pytest.raises(P.ParamsError, match=r"unknown profile 'papr'; allowed profiles: mini, smoke"):
        pf.runs("papr")


def test_notebook_without_parameters_cell_or_twin(tmp_path):
    nb = tmp_path / "bare.ipynb"
    src = (FIXTURES / "notebooks" / "toy.ipynb").read_text().replace('"parameters"', '"other"')
    nb.write_text(src)
    with pytest.raises(P.ParamsError, match="no cell tagged 'parameters'"):
        P.load(write(tmp_path, "profiles: {smoke: {}}\n", "bare"), nb)
    shutil.copy(FIXTURES / "params" / "toy.yaml", tmp_path / "lonely.yaml")
    with pytest.raises(P.ParamsError, match="no notebook .*lonely.ipynb with the same stem"):
        P.load(tmp_path / "lonely.yaml", tmp_path / "lonely.ipynb")


def test_requires_paths_expand_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TOYW", str(tmp_path))
    pf = load(tmp_path, "profiles:\n  paper: {requires: {w: '${TOYW:-/x}/w', v: '${NOPE_VAR:-/y}'}}\n")
    assert pf.runs("paper")[0].requires == {"w": f"{tmp_path}/w", "v": "/y"}
