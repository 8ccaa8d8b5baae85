"""The two lines every notebook starts and ends with (a provenance header, the measured wall time), and the kernel
set-up of batch runs that keeps progress bars and warnings out of the rendered report."""
from __future__ import annotations

import logging
import os
import sys
import time
from importlib.metadata import version

from synscale.analysis.plots import house_style
from synscale.runtime.logs import route
from synscale.runtime.paths import run_dir
from synscale.runtime.progress import batch
from synscale.runtime.results import environment, git_state, record
from synscale.runtime.threads import capability, pin


class Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def wall_time(self) -> float:
        """Record ``wall_time_s`` of the notebook so far, print it, and return it."""
        dt = time.perf_counter() - self.t0
        record("wall_time_s", round(dt, 2))
        print(f"wall time of this notebook: {dt:.1f} s ({dt / 60:.1f} min)")
        return dt


def header() -> Clock:
    """Print versions, git state, device and where results go; pin the thread count (``synscale.runtime.threads``: the
    same numbers whatever the cores); set the house style of figures and tables; start the notebook's clock."""
    threads = pin()
    house_style()
    env, git = environment(), git_state()
    sha = (git["git_sha"] or "unknown")[:10] + ("+dirty" if git["git_dirty"] else "")
    pk = env["packages"]
    where = "" if batch() else f"\nresults -> {run_dir()}"  # a report lies in its run's folder already
    print(
        f"synscale {version('synscale')} | git {sha} | python {env['python']} | torch {env['torch']} "
        f"(CUDA {env['cuda']}) | diffusers {pk['diffusers']} | timm {pk['timm']} | "
        f"open_clip {pk['open_clip_torch']} | device {env['device']} | {threads} thread(s), "
        f"{capability()} CPU kernels{where}"
    )
    return Clock()


def batch_mode() -> None:
    """Point this kernel's stderr — progress bars, warnings, library log messages, C-level writes — at the run's
    ``run.log`` instead of the notebook, so a rendered report holds what its cells print and show.

    The runner starts every kernel with this line (``IPKernelApp.exec_lines``, before the first cell) and with
    ipykernel's fd capture off; JupyterLab never calls it, so interactive sessions keep their widgets and warnings.
    Cell errors still reach the report: ipykernel sends tracebacks on their own channel, not through stderr."""
    log = open(run_dir() / "run.log", "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    old = sys.stderr
    try:
        old.flush()
    except (AttributeError, ValueError):
        pass
    os.dup2(log.fileno(), 2)  # C-level writes and child processes (DataLoader workers) go there too
    sys.stderr = log
    for logger in [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                           if isinstance(v, logging.Logger))]:
        for h in logger.handlers:
            if isinstance(h, logging.StreamHandler) and h.stream in (old, sys.__stderr__):
                h.setStream(log)
    route(log)  # the package's own log lines (INFO and above) go there too
