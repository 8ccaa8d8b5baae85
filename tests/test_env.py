"""The environment: one pinned list for pip and conda; notebooks committed stripped; the entry scripts agree."""
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pins(lines):
    return {m.group(1).lower(): m.group(2) for m in (re.match(r"\s*([A-Za-z0-9_.-]+)==(\S+)", l) for l in lines) if m}


def test_environment_yml_pins_match_requirements():
    req = pins((ROOT / "env" / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins(pip) == req
    assert "python=3.11" in env["dependencies"]
    unpinned = [l for l in (ROOT / "env" / "requirements.txt").read_text().splitlines()
                if l.strip() and not l.startswith("#") and "==" not in l]
    assert unpinned == []


def test_constraints_pin_torch_as_requirements_do():
    req = pins((ROOT / "env" / "requirements.txt").read_text().splitlines())
    con = pins((ROOT / "env" / "constraints.txt").read_text().splitlines())
    assert con == {"torch": req["torch"], "torchvision": req["torchvision"]}


def committed_notebooks():
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "*.ipynb"], capture_output=True, text=True)
    return [ROOT / p for p in out.stdout.split()] or sorted(ROOT.glob("notebooks/*.ipynb"))


def test_committed_notebooks_are_stripped():
    nbs = committed_notebooks()
    assert nbs
    res = subprocess.run([str(Path(__import__("sys").executable).parent / "nbstripout"), "--verify", *map(str, nbs)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./run_tests.sh" in readme and "./run_tests.sh" in ci
    assert "./run_all.sh" in readme
