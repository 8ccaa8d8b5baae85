"""The package speaks through logging: module loggers under ``synscale``, routed once by the caller; prints only
where printing is the point (a command's output, a notebook's own text)."""
import ast
import io
import logging
from pathlib import Path

from synscale.runtime.logs import route

LIB = Path(__file__).resolve().parents[1] / "lib" / "synscale"
#: functions whose prints are their output: a command's result on stdout, a notebook's header and wall time
PRINTING = {"main", "usage", "_print_plan", "header", "wall_time"}


def test_the_library_logs_instead_of_printing():
    stray = []
    for path in LIB.rglob("*.py"):
        tree = ast.parse(path.read_text())
        parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                f = node
                while f in parents and not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    f = parents[f]
                if getattr(f, "name", None) not in PRINTING:
                    stray.append(f"{path.relative_to(LIB)}:{node.lineno}")
    assert stray == [], f"print outside a command's output (log through logs.logger(__name__)): {stray}"
    loggers = [p for p in LIB.rglob("*.py") if "logs.logger(__name__)" in p.read_text()]
    assert len(loggers) >= 6


def test_route_sends_package_records_once_and_leaves_other_loggers_alone():
    stream = io.StringIO()
    try:
        route(stream)
        route(stream)  # a second route replaces the first: still one line per record
        logging.getLogger("synscale.methods.generate").info("generated a set")
        logging.getLogger("synscale.methods.generate").debug("noise")
        logging.getLogger("somebody.else").warning("theirs")
    finally:
        route()
    assert stream.getvalue() == "generated a set\n"
    assert logging.getLogger("synscale").propagate  # the user's root handlers (and pytest's capture) see them too


def test_a_fresh_clip_is_created_without_open_clips_random_init_notice(caplog):
    from synscale.methods import clip

    before = logging.getLogger().level
    with caplog.at_level(logging.WARNING):
        clip.create()
    assert not [r for r in caplog.records if "No pretrained weights" in r.getMessage()]
    assert logging.getLogger().level == before and not logging.getLogger().filters


def test_a_module_run_as_a_job_logs_under_its_dotted_name(tmp_path):
    """A job runs as ``python -m synscale.methods.generate``, as ``__main__``: its lines still go under its dotted
    name, and so reach the route."""
    import os
    import subprocess
    import sys

    (tmp_path / "jobpkg").mkdir()
    (tmp_path / "jobpkg" / "__init__.py").write_text("")
    job = "from synscale.runtime.logs import logger\nprint(logger(__name__).name)\n"
    (tmp_path / "jobpkg" / "job.py").write_text(job)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "jobpkg.job"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip() == "jobpkg.job"
