"""Where a job's processes run: in this process, under ``torchrun`` on this node, or as a SLURM job through
``submitit`` (its local executor runs the same path on one machine). The job code is the same in all three.

A *job* is a module with a ``main(argv)`` — a command of ``synscale`` (``synscale generate``, ``synscale train``, …;
the launchers run it as ``python -m <module>``) — whose result is a folder in the shared cache, keyed by what it
is made from and written atomically, so a finished job is never redone and a killed one resumes. The notebook asks
for the result (``ensure_*``); when it is missing the library launches the job with the launcher chosen by
``SYNSCALE_LAUNCHER`` and waits for it, then reads the result. The notebook itself never runs under a launcher,
so its report is computed once.

``SYNSCALE_LAUNCHER``:

=====================  =====================================================================================
``inprocess``          (default) the job runs in the calling process: the mini world, tests, one GPU
``torchrun:N``         ``torchrun --standalone --nproc-per-node N -m <job>`` on this node (N GPUs; on CPUs gloo)
``submitit-local:N``   submitit's local executor with N tasks (the SLURM code path on one machine)
``slurm:N`` / ``slurm:NxM``  a SLURM job through submitit: N tasks (GPUs) per node on M nodes; more parameters
                       from ``SYNSCALE_SLURM`` (``partition=gpu,account=abc,constraint=h100``; submitit's
                       ``slurm_*`` names without the prefix) and ``SYNSCALE_SLURM_TIMEOUT_MIN`` (default 4320)
=====================  =====================================================================================

Ranks split work evenly (generation shards, captioning images, DDP batches), so a barrier that waits long is a
fault: ``SYNSCALE_DIST_TIMEOUT_S`` bounds it (:func:`synscale.runtime.distributed.dist_init`).
"""
from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from synscale.runtime import integrity, logs
from synscale.runtime.progress import FILE_ENV, follow

logger = logs.logger(__name__)

KINDS = ("inprocess", "torchrun", "submitit-local", "slurm")
ENV = "SYNSCALE_LAUNCHER"


class LaunchError(RuntimeError):
    """A job failed or the launcher is misconfigured (one line: what, and the log to read)."""


@dataclass(frozen=True)
class Launcher:
    kind: str = "inprocess"
    nproc: int = 1   # processes (GPUs) per node
    nodes: int = 1
    slurm: dict[str, str] = field(default_factory=dict)  # submitit slurm_* parameters, without the prefix
    timeout_min: int = 4320

    @classmethod
    def parse(cls, text: str | None, slurm: str | None = None, timeout_min: int | None = None) -> Launcher:
        """``inprocess`` | ``torchrun[:N]`` | ``submitit-local[:N]`` | ``slurm[:N[xM]]`` (see the module)."""
        text = (text or "inprocess").strip()
        kind, _, size = text.partition(":")
        if kind not in KINDS:
            raise LaunchError(f"{ENV}={text!r}: the launcher must be one of {', '.join(KINDS)} (e.g. torchrun:8, "
                              f"submitit-local:2, slurm:8x4)")
        try:
            n, _, m = (size or "1").partition("x")
            nproc, nodes = int(n), int(m or 1)
            assert nproc >= 1 and nodes >= 1 and (nodes == 1 or kind == "slurm")
        except (ValueError, AssertionError):
            raise LaunchError(f"{ENV}={text!r}: expected <kind>:<processes per node>[x<nodes>] with positive "
                              f"numbers (nodes only for slurm), e.g. torchrun:8 or slurm:8x4") from None
        opts = {}
        for item in filter(None, (slurm or "").split(",")):
            k, eq, v = item.partition("=")
            if not eq or not k.strip():
                raise LaunchError(f"SYNSCALE_SLURM={slurm!r}: expected comma-separated key=value pairs, e.g. "
                                  f"partition=gpu,account=abc")
            opts[k.strip()] = v.strip()
        return cls(kind, nproc, nodes, opts, int(timeout_min or 4320))

    @classmethod
    def from_env(cls) -> Launcher:
        return cls.parse(os.environ.get(ENV), os.environ.get("SYNSCALE_SLURM"),
                         int(os.environ.get("SYNSCALE_SLURM_TIMEOUT_MIN", 0) or 0) or None)

    @property
    def inprocess(self) -> bool:
        return self.kind == "inprocess"

    def __str__(self) -> str:
        return self.kind if self.inprocess else f"{self.kind}:{self.nproc}" + (f"x{self.nodes}" if self.nodes > 1
                                                                                 else "")


def _child_env(report: Path) -> dict[str, str]:
    """The job's environment: this one, with the job's processes running their work in-process (a job never
    launches another), the package importable from a source checkout, and rank 0's bars reported to ``report``."""
    lib = str(Path(__file__).resolve().parents[2])
    return {**os.environ, ENV: "inprocess", FILE_ENV: str(report),
            "PYTHONPATH": os.pathsep.join(filter(None, [lib, os.environ.get("PYTHONPATH")]))}


def _tail(log: Path, n: int = 3) -> str:
    """The job's own error (a traceback's last line, wherever torchrun's summary put it), else the log's end."""
    lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()] if log.exists() else []
    errors = [x.strip() for x in lines if re.search(r"\b\w+(Error|Exception|Interrupt): ", x)
              and "torch.distributed.elastic" not in x]
    return errors[-1] if errors else " | ".join(lines[-n:])


def run_job(module: str, argv: list[str], logs: Path | str, name: str, launcher: Launcher | None = None,
            python: str | None = None) -> float:
    """Run ``module.main(argv)`` with ``launcher`` (default: :meth:`Launcher.from_env`) and wait for it; seconds
    taken. Output goes to ``<logs>/<name>.log`` (torchrun) or submitit's folder ``<logs>/submitit``; a failure raises
    :class:`LaunchError` naming the log and its last lines. ``python``: another environment's interpreter for the
    job's processes (default this one's; an in-process job always runs here)."""
    launcher = launcher or Launcher.from_env()
    logs = Path(logs)
    t0 = time.perf_counter()
    if launcher.inprocess:
        rc = importlib.import_module(module).main(list(argv))
        if rc:
            raise LaunchError(f"job {name} ({module}) exited with {rc}")
        return time.perf_counter() - t0
    logs.mkdir(parents=True, exist_ok=True)
    logger.info(f"[{launcher}] job {name}: python -m {module} … (log in {logs})")
    report = logs / f"{name}.progress.json"  # the job's rank 0 reports its bars here; this process follows them
    report.unlink(missing_ok=True)
    if launcher.kind == "torchrun":
        log = logs / f"{name}.log"
        cmd = [python or sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               str(launcher.nproc), "-m", module, *argv]
        with open(log, "a") as f:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=_child_env(report))
            try:
                follow(report, lambda: proc.poll() is not None, f"job {name}")
            finally:
                if proc.poll() is None:  # interrupted here (a notebook's stop button): stop the job's ranks too
                    proc.terminate()
                    proc.wait()
        if proc.returncode:
            raise LaunchError(f"job {name} failed under {launcher} (exit {proc.returncode}; log {log}): "
                              f"{_tail(log)}")
    else:
        _submitit(module, argv, logs, name, launcher, report, python)
    return time.perf_counter() - t0


def _submitit(module: str, argv: list[str], logs: Path, name: str, launcher: Launcher, report: Path,
              python: str | None = None) -> None:
    import submitit

    folder = logs / "submitit"
    ex = submitit.AutoExecutor(folder=folder, cluster="local" if launcher.kind == "submitit-local" else "slurm",
                               **({"python": python} if python else {}))
    params = {"name": name, "timeout_min": launcher.timeout_min, "tasks_per_node": launcher.nproc}
    if launcher.kind == "slurm":
        params.update(nodes=launcher.nodes, gpus_per_node=launcher.nproc,
                      **{f"slurm_{k}": v for k, v in launcher.slurm.items()})
    ex.update_parameters(**params)
    old = {k: os.environ.get(k) for k in (ENV, "PYTHONPATH", FILE_ENV)}
    os.environ.update({k: _child_env(report)[k] for k in old})  # the job's processes inherit them
    conf = os.environ.get("SLURM_CONF")
    try:
        # submitted from inside an allocation (the runner under srun), a job would inherit its SLURM_* settings
        # (CPU binding, GPUs, task counts): submitit's clean_env hides them, except where slurm.conf lies
        with submitit.helpers.clean_env():
            if conf:
                os.environ["SLURM_CONF"] = conf
            job = ex.submit(task, module, list(argv))
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    try:
        follow(report, job.done, f"job {name}")
        results = job.results()
    except Exception as e:  # submitit's FailedJobError carries the job's stderr
        msg = str(e).strip().splitlines()
        raise LaunchError(f"job {name} failed under {launcher} (job {job.job_id}; logs in {folder}): "
                          + " | ".join(x for x in msg[-3:] if x.strip())) from None
    bad = [r for r in results if r]
    if bad:
        raise LaunchError(f"job {name} under {launcher}: a task exited with {bad[0]} (logs in {folder})")


def run_spec(module: str, job: Path, spec: dict, name: str, launcher: Launcher | None = None,
             python: str | None = None) -> float:
    """Launch the job ``python -m <module> --spec <job>/spec.json`` (each job's ``main`` takes ``--spec``) with ``spec``
    written there first, its logs beside it; wait for it (:func:`run_job`). Seconds taken."""
    path = integrity.write_json(Path(job) / "spec.json", spec)
    return run_job(module, ["--spec", str(path)], job, name, launcher, python)


def task(module: str, argv: list[str]) -> int:
    """One submitit task: torch.distributed's environment from SLURM's (or the local executor's), then the job."""
    import submitit

    env = submitit.JobEnvironment()
    if env.num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    os.environ[ENV] = "inprocess"
    return int(importlib.import_module(module).main(list(argv)) or 0)
