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


#: the two studies the suite runs through the runner: every notebook on ``smoke`` (``_template`` too) and every
#: numbered notebook's ``rehearsal`` on the paper-shaped stand-ins
#: 09's smoke runs in tests/test_generators.py instead, with a generator added as a registry entry (one run, not two)
SMOKE_STEMS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb") if p.stem != "09_generators")
REHEARSAL_STEMS = sorted(p.stem for p in (ROOT / "notebooks").glob("0*.ipynb"))
_bg: dict[str, dict] = {}
_standins: dict = {}


def standins_root() -> tuple[Path, dict[str, str]]:
    """The rehearsal's stand-ins (models, data, prepared captions and folders), built once per session."""
    if not _standins:
        from synscale.orchestration.rehearsal.cli import build

        root = Path(tempfile.mkdtemp(prefix="synscale-standins-"))
        _standins.update(root=root, env=build(root))
    return _standins["root"], _standins["env"]


def _start(name: str) -> None:
    """``synscale run <notebooks> --profile <name> --jobs 2`` in the background, once per session. It starts when
    collection finds a test that needs it, so the unit tests before that test run beside it on the cores its kernels
    leave idle: the suite's wall time shrinks, not its work."""
    if name in _bg:
        return
    stems, env = (SMOKE_STEMS, {}) if name == "smoke" else (REHEARSAL_STEMS, standins_root()[1])
    root = Path(tempfile.mkdtemp(prefix=f"synscale-{name}-"))
    log = open(root / "runner.log", "w")
    _bg[name] = dict(root=root, out=root / "outputs", log=log, proc=subprocess.Popen(
        [sys.executable, "-m", "synscale", "run", *stems, "--profile", name, "--jobs", "2"],
        env={**os.environ, **env, "SYNSCALE_OUTPUTS": str(root / "outputs")}, stdout=log, stderr=subprocess.STDOUT,
        text=True))


def _wait(name: str, timeout: float) -> tuple[Path, subprocess.CompletedProcess]:
    """The outputs folder of a background study and a ``CompletedProcess`` whose stdout and stderr are its log."""
    _start(name)
    proc = _bg[name]["proc"]
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _bg[name]["log"].flush()
    text = (_bg[name]["root"] / "runner.log").read_text()
    return _bg[name]["out"], subprocess.CompletedProcess(proc.args, proc.returncode, text, text)


def pytest_collection_modifyitems(session, config, items):
    """The tests that wait on a background study run last (smoke's, then the rehearsal's): until its last notebook
    ends a study keeps only one core busy, and the other tests fill the other one instead of waiting."""
    def waits(item) -> int:
        names = getattr(item, "fixturenames", ())
        return 2 if "rehearsal_study" in names else (1 if "smoke_study" in names else 0)

    items.sort(key=waits)  # stable: file order within each group


def pytest_collection_finish(session):
    """After ``-k``/``-m`` deselection: only a session that will run a study's tests starts that study."""
    if session.config.option.collectonly:
        return
    for name, fixture in (("smoke", "smoke_study"), ("rehearsal", "rehearsal_study")):
        if any(fixture in item.fixturenames for item in session.items):
            _start(name)


def pytest_sessionfinish(session, exitstatus):
    for bg in _bg.values():
        if bg["proc"].poll() is None:
            bg["proc"].kill()
            bg["proc"].wait()
        bg["log"].close()
        shutil.rmtree(bg["root"], ignore_errors=True)
    if _standins:
        shutil.rmtree(_standins["root"], ignore_errors=True)


@pytest.fixture(scope="session")
def smoke_study():
    """Every notebook on ``smoke`` in one runner call, as ``./run_all.sh --profile smoke`` does: two at a time, one
    outputs tree, later notebooks after those whose caches they reuse (params ``after:``: 05 evaluates the
    classifiers 04 trained), the runner's start-up paid once. The runner goes on after a failed notebook. Started
    in the background at collection; this waits for it."""
    return _wait("smoke", timeout=1500)


@pytest.fixture(scope="session")
def standins():
    """The stand-ins, built once per session (models, data, and the captions and folders a user prepares)."""
    return standins_root()


@pytest.fixture(scope="session")
def rehearsal_study():
    """Every notebook's rehearsal in one runner call, two at a time, as ``./run_all.sh --profile rehearsal``;
    started in the background at collection, this waits for it."""
    return _wait("rehearsal", timeout=2400)
