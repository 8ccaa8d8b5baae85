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


#: pinned but not imported by the package: what they are for
NOT_IMPORTED = {
    "accelerate": "diffusers' and transformers' low-memory weight loading",
    "jupyterlab": "exploring the notebooks", "ipywidgets": "progress widgets", "ipykernel": "the synscale kernel",
    "nbconvert": "HTML reports (through papermill's runner)", "nbstripout": "the pre-commit hook",
    "pytest": "the suite", "ruff": "the lint gate", "pre-commit": "the hooks", "torch-fidelity": "FID's Inception",
    "pyarrow": "DuckDB's Arrow tables", "tokenizers": "transformers' and open_clip's tokenizers",
}


def imported_distributions() -> set[str]:
    """The distributions of every third-party top-level module that lib/, notebooks and benchmarks import."""
    import ast
    import json
    import sys
    from importlib.metadata import packages_distributions

    sources = [p.read_text() for d in ("lib", "benchmarks") for p in (ROOT / d).rglob("*.py")]
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        sources += ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    tops = set()
    for src in sources:
        code = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!")))  # no magics
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                tops |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops.add(node.module.split(".")[0])
    dists = packages_distributions()
    third = {t for t in tops if t not in sys.stdlib_module_names and t not in ("synscale", "vllm")}
    unknown = sorted(t for t in third if t not in dists)
    assert not unknown, f"imported but not installed: {unknown}"
    return {dists[t][0].lower().replace("_", "-") for t in third}


def test_every_direct_import_is_pinned_and_every_pin_is_used():
    norm = lambda n: n.lower().replace("_", "-")
    req = {norm(k) for k in pins((ROOT / "env" / "requirements.txt").read_text().splitlines())}
    used = imported_distributions()
    assert used - req == set(), f"imported but not pinned in env/requirements.txt: {sorted(used - req)}"
    idle = req - used - {norm(k) for k in NOT_IMPORTED}
    assert idle == set(), f"pinned but never imported (drop them, or say what they are for): {sorted(idle)}"


def test_lock_holds_every_pin_at_its_version():
    norm = lambda n: n.lower().replace("_", "-")
    req = {norm(k): v for k, v in pins((ROOT / "env" / "requirements.txt").read_text().splitlines()).items()}
    lock = {norm(k): v for k, v in pins((ROOT / "env" / "requirements.lock").read_text().splitlines()).items()}
    assert len(lock) > 2 * len(req)  # the transitive packages too
    assert {k: lock.get(k) for k in req} == req
    assert "requirements.lock" in (ROOT / "env" / "bootstrap.sh").read_text()


def test_every_variable_the_study_reads_is_in_the_readmes_table():
    text = "\n".join(p.read_text() for d in ("lib",) for p in (ROOT / d).rglob("*.py"))
    text += "".join((ROOT / f).read_text() for f in ("run_all.sh", "run_tests.sh", "env/bootstrap.sh"))
    read = set(re.findall(r"SYNSCALE_[A-Z0-9_]*[A-Z0-9]", text))
    read -= {"SYNSCALE_PEAK", "SYNSCALE_SD15"}  # labrun's output marker, a docstring's example
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| variable | default | what |"):]
    table = table[:table.index("\n\n")]
    assert len(read) > 30
    assert sorted(v for v in read if f"`{v}`" not in table) == []
