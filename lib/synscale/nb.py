"""The two lines every notebook starts and ends with: a provenance header and the measured wall time."""
from __future__ import annotations

import time

from . import __version__
from .paths import run_dir
from .results import environment, git_state, record


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
    """Print versions, git state, device and where results go; start the notebook's clock."""
    env, git = environment(), git_state()
    sha = (git["git_sha"] or "unknown")[:10] + ("+dirty" if git["git_dirty"] else "")
    pk = env["packages"]
    print(
        f"synscale {__version__} | git {sha} | python {env['python']} | torch {env['torch']} "
        f"(CUDA {env['cuda']}) | diffusers {pk['diffusers']} | timm {pk['timm']} | "
        f"open_clip {pk['open_clip_torch']} | device {env['device']}\nresults -> {run_dir()}"
    )
    return Clock()
