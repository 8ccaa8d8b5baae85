import os
import shutil
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
