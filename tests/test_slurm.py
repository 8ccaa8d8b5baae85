"""The SLURM launcher against a real scheduler: a one-node cluster on this machine (``env/slurm-local.sh``: munge,
slurmctld, slurmd, two fake GPUs), started once per test session. Where it cannot start the tests fail with the
reason: submitit's local executor is not proof that jobs survive a scheduler."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from synscale.runtime import launch
from synscale.runtime.launch import Launcher

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[1]
JOB = ("synscale.orchestration.costs", ["--profile", "paper-lite"])  # a real job of the study that ends in seconds


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    r = subprocess.run([str(ROOT / "env" / "slurm-local.sh"), "start", str(state)], capture_output=True, text=True,
                       timeout=600)
    if r.returncode:
        pytest.fail(f"the local SLURM cluster did not start: {(r.stderr or r.stdout).strip()[-500:]}")
    yield state
    subprocess.run([str(ROOT / "env" / "slurm-local.sh"), "stop", str(state)], timeout=60)


def _jobs(name: str) -> list[str]:
    """Every job SLURM lists under ``name`` (finished ones stay listed: MinJobAge)."""
    out = subprocess.run(["squeue", "-h", "--states=all", "-n", name, "-o", "%i"], capture_output=True, text=True,
                         timeout=60).stdout
    return out.split()


def _settled(job_id: str, seconds: float = 60) -> str:
    """The job's state once SLURM has finished with it (submitit sees the result before the job leaves RUNNING)."""
    end = time.monotonic() + seconds
    while (state := launch.slurm_state(job_id)) in launch.LIVE and time.monotonic() < end:
        time.sleep(0.5)
    return state


def _scontrol(*args: str) -> None:
    subprocess.run(["scontrol", *args], check=True, capture_output=True, timeout=60)


def test_a_two_task_job_asks_one_gpu_per_task(cluster, tmp_path):
    """One GPU per task unless told otherwise (the fake GPUs accept it); the jobs below ask none (gpus_per_node=0:
    a CPU partition rejected every job before)."""
    gpu = f"gpu-{os.getpid()}"
    launch.run_job(*JOB, tmp_path, gpu, Launcher.parse("slurm:2", "", 5))
    assert len(_jobs(gpu)) == 1
    shown = subprocess.run(["scontrol", "show", "job", _jobs(gpu)[0]], capture_output=True, text=True).stdout
    assert "gpu:2" in shown.replace("gres/gpu", "gpu") or "gpu=2" in shown


def test_a_restarted_runner_waits_on_its_job_and_submits_none(cluster, tmp_path, monkeypatch):
    """The runner is killed while its job is queued (held here, so it cannot finish meanwhile) and the job keeps
    running; the next runner finds it and waits: SLURM lists one job, not two."""
    name = f"restart-{os.getpid()}"
    real_follow = launch.follow
    monkeypatch.setenv("SYNSCALE_SLURM_KEEP", "1")

    def killed(report, done, label):
        _scontrol("hold", json.loads((tmp_path / f"{name}.submitted.json").read_text())["job_id"])
        raise KeyboardInterrupt

    monkeypatch.setattr(launch, "follow", killed)
    with pytest.raises(KeyboardInterrupt):
        launch.run_job(*JOB, tmp_path, name, Launcher.parse("slurm:1", "gpus_per_node=0", 5))
    (job_id,) = _jobs(name)
    assert launch.slurm_state(job_id) == "PENDING"

    def released(report, done, label):
        _scontrol("release", job_id)
        return real_follow(report, done, label)

    monkeypatch.setattr(launch, "follow", released)
    launch.run_job(*JOB, tmp_path, name, Launcher.parse("slurm:1", "gpus_per_node=0", 5))
    assert _jobs(name) == [job_id] and _settled(job_id) == "COMPLETED"


def test_interrupting_the_wait_leaves_no_job_in_the_queue(cluster, tmp_path, monkeypatch):
    name = f"stop-{os.getpid()}"

    def interrupted(report, done, label):
        raise KeyboardInterrupt

    monkeypatch.setattr(launch, "follow", interrupted)
    with pytest.raises(KeyboardInterrupt):
        launch.run_job(*JOB, tmp_path, name, Launcher.parse("slurm:1", "gpus_per_node=0", 5))
    (job_id,) = _jobs(name)
    assert _settled(job_id) in ("CANCELLED", "GONE")
    assert not subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout.strip()
