import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def toy_world(tmp_path, monkeypatch):
    """Runner pointed at a copy of the fixture notebook/params (tests may edit them) and a fresh outputs dir."""
    for sub in ("notebooks", "params"):
        shutil.copytree(FIXTURES / sub, tmp_path / sub)
    monkeypatch.setenv("SYNSCALE_NOTEBOOKS", str(tmp_path / "notebooks"))
    monkeypatch.setenv("SYNSCALE_PARAMS", str(tmp_path / "params"))
    out = tmp_path / "outputs"
    monkeypatch.setenv("SYNSCALE_OUTPUTS", str(out))
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: one torch thread is as fast and does not stall when other processes share the cores.
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SMOKE_STEMS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
_smoke: dict = {}


def _start_smoke_study() -> None:
    """``synscale run <every notebook> --profile smoke --jobs 2`` in the background, once per session: it starts
    when collection finds a test that needs it, so the unit tests before that test run beside it on the cores its
    kernels leave idle (the suite's wall time, not its work, shrinks)."""
    if _smoke:
        return
    out = Path(tempfile.mkdtemp(prefix="synscale-smoke-"))
    log = open(out.parent / f"{out.name}.log", "w")
    _smoke.update(out=out / "outputs", log=log, proc=subprocess.Popen(
        [sys.executable, "-m", "synscale", "run", *SMOKE_STEMS, "--profile", "smoke", "--jobs", "2"],
        env={**os.environ, "SYNSCALE_OUTPUTS": str(out / "outputs")}, stdout=log, stderr=subprocess.STDOUT,
        text=True))


def pytest_collection_finish(session):
    """After ``-k``/``-m`` deselection: only a session that will run a test of the smoke study starts it."""
    if not session.config.option.collectonly and any("smoke_study" in i.fixturenames for i in session.items):
        _start_smoke_study()


def pytest_sessionfinish(session, exitstatus):
    if _smoke:
        if _smoke["proc"].poll() is None:
            _smoke["proc"].kill()
            _smoke["proc"].wait()
        _smoke["log"].close()
        shutil.rmtree(_smoke["out"].parent, ignore_errors=True)
        Path(_smoke["log"].name).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def smoke_study():
    """Every notebook on ``smoke`` in one runner call, as ``./run_all.sh --profile smoke`` does: two at a time, one
    outputs tree, later notebooks after those whose caches they reuse (params ``after:``: 05 evaluates the
    classifiers 04 trained), the runner's start-up paid once. The runner goes on after a failed notebook. Started
    in the background at collection (:func:`_start_smoke_study`); this waits for it. Returns the outputs folder and
    a ``CompletedProcess`` whose ``stderr`` is the runner's log."""
    _start_smoke_study()
    proc = _smoke["proc"]
    try:
        proc.wait(timeout=1500)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _smoke["log"].flush()
    text = Path(_smoke["log"].name).read_text()
    return _smoke["out"], subprocess.CompletedProcess(proc.args, proc.returncode, text, text)
