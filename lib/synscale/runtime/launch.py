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
                       ``slurm_*`` names without the prefix, and its shared ``gpus_per_node`` (default N; 0 on a
                       CPU partition: no GRES asked), ``cpus_per_task``, ``mem_gb``) and
                       ``SYNSCALE_SLURM_TIMEOUT_MIN`` (default 4320)
=====================  =====================================================================================

Batch life on SLURM: a submitted job's id is recorded beside its logs (``<name>.submitted.json``). A runner that
starts again (its own allocation ended, it was killed) finds the record and waits on that job while SLURM still
has it queued or running, instead of submitting a second; a job gone without a result is submitted again and
resumes from its own checkpoints. A job that reaches its time limit or is preempted is requeued by submitit
(:class:`Task` is checkpointable) and resumes the same way. Interrupting the wait (a notebook's stop button)
cancels the job, unless ``SYNSCALE_SLURM_KEEP=1``.

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

import submitit

from synscale.runtime import integrity, logs
from synscale.runtime.progress import FILE_ENV, follow

logger = logs.logger(__name__)

KINDS = ("inprocess", "torchrun", "submitit-local", "slurm")
ENV = "SYNSCALE_LAUNCHER"
#: submitit's parameters shared by its executors (given in SYNSCALE_SLURM without a prefix, as integers)
SHARED = ("gpus_per_node", "cpus_per_task", "mem_gb")
#: SLURM states in which a recorded job will still produce its result (a runner waits on it)
LIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
        "SUSPENDED", "STAGE_OUT", "SIGNALING")


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


def submitit_params(launcher: Launcher, name: str) -> dict:
    """submitit's parameters of a job: its name, time limit and tasks; on SLURM the nodes, the GPUs per node
    (``gpus_per_node`` in ``SYNSCALE_SLURM``, default one per task; none asked when 0, as a CPU partition needs),
    CPUs and memory where given, and every other ``SYNSCALE_SLURM`` key as ``slurm_<key>``."""
    params = {"name": name, "timeout_min": launcher.timeout_min, "tasks_per_node": launcher.nproc}
    if launcher.kind == "slurm":
        shared = {k: v for k, v in launcher.slurm.items() if k in SHARED}
        try:
            shared = {k: int(v) for k, v in shared.items()}
        except ValueError:
            raise LaunchError(f"SYNSCALE_SLURM: {', '.join(SHARED)} take whole numbers, got {shared}") from None
        gpus = shared.pop("gpus_per_node", launcher.nproc)
        params.update(nodes=launcher.nodes, **({"gpus_per_node": gpus} if gpus else {}), **shared,
                      **{f"slurm_{k}": v for k, v in launcher.slurm.items() if k not in SHARED})
    return params


def _record(logs: Path, name: str) -> Path:
    return logs / f"{name}.submitted.json"


def _recorded_job(logs: Path, name: str, launcher: Launcher, folder: Path):
    """The SLURM job a runner before this one submitted for ``name`` and SLURM still runs or queues (so this
    runner waits on it instead of submitting another), else None (none recorded, or it ended: submit again)."""
    import json

    rec = _record(logs, name)
    if launcher.kind != "slurm" or not rec.exists():
        return None
    try:
        job_id = json.loads(rec.read_text())["job_id"]
    except (json.JSONDecodeError, KeyError):
        return None
    job = submitit.SlurmJob(folder=folder, job_id=str(job_id))
    state = slurm_state(str(job_id)) or (job.state.split()[0].upper() if job.state else "UNKNOWN")
    if state in LIVE:
        logger.info(f"[{launcher}] job {name}: SLURM job {job_id} from an earlier runner is {state}: waiting on it")
        return job
    logger.info(f"[{launcher}] job {name}: SLURM job {job_id} from an earlier runner is {state}: submitting again "
                "(it resumes from its checkpoints)")
    return None


def slurm_state(job_id: str) -> str | None:
    """A job's state as ``squeue`` lists it (``PENDING``, ``RUNNING``, ...; ``COMPLETED`` etc. while SLURM still
    lists it), ``"GONE"`` when SLURM no longer knows it, None without ``squeue`` (then submitit's ``sacct`` view
    decides; a cluster without accounting has none)."""
    try:
        r = subprocess.run(["squeue", "-h", "--states=all", "-j", job_id, "-o", "%T"], capture_output=True,
                           text=True, timeout=60)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    lines = r.stdout.split()
    if r.returncode and "Invalid job id" not in r.stderr:
        return None
    return lines[0].upper() if lines else "GONE"


def _submitit(module: str, argv: list[str], logs: Path, name: str, launcher: Launcher, report: Path,
              python: str | None = None) -> None:
    folder = logs / "submitit"
    job = _recorded_job(logs, name, launcher, folder)
    if job is None:
        ex = submitit.AutoExecutor(folder=folder, cluster="local" if launcher.kind == "submitit-local" else "slurm",
                                   **({"python": python} if python else {}))
        ex.update_parameters(**submitit_params(launcher, name))
        old = {k: os.environ.get(k) for k in (ENV, "PYTHONPATH", FILE_ENV)}
        os.environ.update({k: _child_env(report)[k] for k in old})  # the job's processes inherit them
        conf = os.environ.get("SLURM_CONF")
        try:
            # submitted from inside an allocation (the runner under srun), a job would inherit its SLURM_* settings
            # (CPU binding, GPUs, task counts): submitit's clean_env hides them, except where slurm.conf lies
            with submitit.helpers.clean_env():
                if conf:
                    os.environ["SLURM_CONF"] = conf
                job = ex.submit(Task(), module, list(argv))
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        integrity.write_json(_record(logs, name), {"job_id": str(job.job_id), "launcher": str(launcher),
                                                   "folder": str(folder)})
    try:
        follow(report, job.done, f"job {name}")
        results = job.results()
    except KeyboardInterrupt:  # the notebook's stop button: the job stops too, unless asked to keep running
        if os.environ.get("SYNSCALE_SLURM_KEEP", "") not in ("1", "true", "yes"):
            job.cancel(check=False)
            _record(logs, name).unlink(missing_ok=True)
            logger.warning(f"[{launcher}] job {name}: interrupted; cancelled job {job.job_id}")
        else:
            logger.warning(f"[{launcher}] job {name}: interrupted; job {job.job_id} keeps running (a new runner "
                           "waits on it)")
        raise
    except Exception as e:  # submitit's FailedJobError carries the job's stderr
        msg = str(e).strip().splitlines()
        raise LaunchError(f"job {name} failed under {launcher} (job {job.job_id}; logs in {folder}): "
                          + " | ".join(x for x in msg[-3:] if x.strip())) from None
    _record(logs, name).unlink(missing_ok=True)
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
    env = submitit.JobEnvironment()
    if env.num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    os.environ[ENV] = "inprocess"
    return int(importlib.import_module(module).main(list(argv)) or 0)


class Task(submitit.helpers.Checkpointable):
    """:func:`task` as submitit's checkpointable callable: at its time limit or on preemption submitit requeues
    the job with the same arguments (``Checkpointable.checkpoint``), and the job resumes from its own checkpoints
    (every job's result is resumable: generation shards, trainer checkpoints, caption passes)."""

    def __call__(self, module: str, argv: list[str]) -> int:
        return task(module, argv)
