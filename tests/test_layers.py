"""The package's import graph points one way, and importing it touches no disk.

Every intra-package import counts, at module level or inside a function: a function-level import that closed a
cycle would only hide it until the function runs, so the graph with all of them must be acyclic.
"""
import ast
import os
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "lib" / "synscale"


def _module(path: Path) -> str:
    parts = ("synscale",) + path.relative_to(PKG).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (anywhere in its text)."""
    files = {_module(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[mod].update(t for t in targets if t in files and t != mod)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 40 and sum(map(len, graph.values())) > 100  # the walk saw the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


#: the package's layer folders, bottom up: a module imports only from its own layer or the layers below
LAYERS = ["runtime", "data", "methods", "analysis", "studies", "orchestration"]
#: the package's face: the only modules outside a layer folder
FACE = {"synscale", "synscale.__main__"}


def layer(module: str) -> int:
    """The layer of a module: the folder it lives in. The package's face (the notebooks' ``record`` helpers, the
    ``synscale`` command's entry) sits above every layer for the imports it makes, and below them for the
    imports it receives: it imports only ``runtime`` (the face's helpers) and ``orchestration`` (the command)."""
    parts = module.split(".")
    assert parts[0] == "synscale"
    if module in FACE:
        return -1
    assert parts[1] in LAYERS, f"{module} lies outside the layer folders {LAYERS}: move it into one"
    return LAYERS.index(parts[1])


def test_every_module_lives_in_a_layer_folder():
    mods = import_graph()
    outside = sorted(m for m in mods if m not in FACE and m.split(".")[1] not in LAYERS)
    assert outside == [], f"modules outside the layer folders {LAYERS}: {outside}"
    assert {m.split(".")[1] for m in mods if m not in FACE} == set(LAYERS)


def test_face_imports_only_runtime_and_the_command():
    graph = import_graph()
    assert {layer(m) for m in graph["synscale"]} == {0}
    assert {layer(m) for m in graph["synscale.__main__"]} <= {LAYERS.index("orchestration")}
    assert not any("synscale" in deps or "synscale.__main__" in deps for m, deps in graph.items() if m not in FACE)


def test_imports_point_down_the_layers():
    graph = import_graph()
    up = [f"{a} -> {b}" for a, bs in graph.items() if a not in FACE for b in bs if layer(b) > layer(a)]
    assert not up, "imports up the layers: " + ", ".join(sorted(up))
    assert layer("synscale.data.world.folder") == 1 and layer("synscale.runtime.launch") == 0


def test_runtime_layer_imports_nothing_above_it():
    graph = import_graph()
    for m in ("paths", "distributed", "threads", "integrity", "launch"):
        m = f"synscale.runtime.{m}"
        assert all(layer(n) == 0 for n in graph[m]), (m, graph[m])


def test_importing_every_module_writes_nothing(tmp_path):
    """Every module imported in a fresh process whose caches, outputs, home and temp point at empty folders."""
    dirs = {k: tmp_path / k for k in ("home", "cache", "outputs", "tmp", "mpl", "xdg")}
    for d in dirs.values():
        d.mkdir()
    env = {**os.environ, "HOME": str(dirs["home"]), "SYNSCALE_CACHE": str(dirs["cache"]),
           "SYNSCALE_OUTPUTS": str(dirs["outputs"]), "TMPDIR": str(dirs["tmp"]), "MPLCONFIGDIR": str(dirs["mpl"]),
           "XDG_CACHE_HOME": str(dirs["xdg"])}
    modules = sorted(m for m in import_graph() if not m.endswith("__main__"))
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint(len(sys.argv) - 1)"
    before = subprocess.run(["git", "-C", str(PKG), "status", "--porcelain", "--ignored", "lib"],
                            capture_output=True, text=True).stdout
    out = subprocess.run([sys.executable, "-c", code, *modules], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) == len(modules)
    # importing timm / open_clip / diffusers makes torch's compile-cache folder (empty) in TMPDIR: torch's, not ours
    written = sorted(str(p.relative_to(tmp_path)) for d in dirs.values() for p in d.rglob("*")
                     if not p.relative_to(tmp_path).parts[1].startswith("torchinductor_"))
    assert written == [], written
    after = subprocess.run(["git", "-C", str(PKG), "status", "--porcelain", "--ignored", "lib"],
                           capture_output=True, text=True).stdout
    assert [x for x in after.splitlines() if "__pycache__" not in x] == \
           [x for x in before.splitlines() if "__pycache__" not in x]
