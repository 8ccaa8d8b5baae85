"""The process's place in a multi-process launch (torchrun, accelerate, SLURM through submitit): rank, world size,
device and process group. The runtime layer: it imports nothing of the package, as ``open_clip_train/distributed.py``
and ``timm/utils/distributed.py`` keep theirs apart from the models.
"""
from __future__ import annotations

import os
from datetime import timedelta

import torch


def dist_env() -> tuple[int, int]:
    """``(rank, world_size)`` from torchrun / accelerate environment variables (``(0, 1)`` when unset)."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is not in [0, WORLD_SIZE={world}): fix the launcher's environment")
    return rank, world


def default_device() -> str:
    """This process's accelerator: ``cuda:<LOCAL_RANK>`` where CUDA is, else ``cpu`` (the mini world)."""
    return f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if torch.cuda.is_available() else "cpu"


def dist_init(timeout_s: float | None = None) -> tuple[int, int]:
    """``(rank, world_size)`` with the process group initialised on first use under a multi-process launcher
    (NCCL on GPUs, gloo on CPUs), else ``(0, 1)``. ``timeout_s`` (default ``SYNSCALE_DIST_TIMEOUT_S``, else
    torch's default) bounds a wait at a barrier: ranks of a job split work evenly, so a long wait is a fault."""
    rank, world_size = dist_env()
    if world_size > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            if torch.cuda.is_available():
                torch.cuda.set_device(default_device())
            t = timeout_s if timeout_s is not None else os.environ.get("SYNSCALE_DIST_TIMEOUT_S")
            kw = {"timeout": timedelta(seconds=float(t))} if t else {}
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", **kw)
    return rank, world_size


def barrier() -> None:
    """Wait for every rank (a no-op in one process)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
