"""Results that do not depend on how many cores a run gets: the study computes with a fixed number of threads.

torch's CPU kernels (and the BLAS libraries under numpy and scikit-learn) split sums over their threads, so the
order of additions — and the last bits of every result — depends on the thread count: the same classifier, seed and
data trained with 1 and with 2 threads ends with weights that differ by up to 0.2 and top-1 a point apart. The
study therefore pins the count (``SYNSCALE_THREADS``, default 1) wherever it computes: notebooks at their first
cell (:func:`synscale.orchestration.nb.header`), and the training and generation loops themselves (:func:`fixed`), so
the same seed gives the same numbers whatever ``--jobs``, the machine's cores or the caller's own thread setting. The
runner gets its parallelism from runs side by side instead.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

F = TypeVar("F", bound=Callable)
ENV = "SYNSCALE_THREADS"


def count() -> int:
    """The study's thread count: ``SYNSCALE_THREADS`` (default 1)."""
    n = int(os.environ.get(ENV, "1"))
    if n < 1:
        raise ValueError(f"{ENV}={n}: give a positive number of threads")
    return n


def pin(n: int | None = None) -> int:
    """Set torch's and the BLAS/OpenMP libraries' thread counts for this process (a notebook, a job); returns it."""
    import torch
    from threadpoolctl import threadpool_limits

    n = n or count()
    torch.set_num_threads(n)
    threadpool_limits(n)
    return n


@contextmanager
def fixed(n: int | None = None) -> Iterator[int]:
    """Within the block torch (and BLAS) use ``n`` threads (default :func:`count`); the caller's setting after."""
    import torch
    from threadpoolctl import threadpool_limits

    n = n or count()
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield n
    finally:
        torch.set_num_threads(old)


def pinned(fn: F) -> F:
    """Decorate a computation so it always runs with :func:`count` threads (:func:`fixed`)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with fixed():
            return fn(*args, **kwargs)

    return run  # type: ignore[return-value]


# -- instruction sets ----------------------------------------------------------------------------------------------
#: torch's CPU kernels, oneDNN's convolutions and MKL's BLAS each dispatch on the CPU's widest instruction set, and
#: AVX-512 and AVX2 kernels sum in other orders: the same seed then trains other weights on another CPU, and a verdict
#: near its interval's edge can flip. Capping all three to one set every x86-64 CPU of the last decade has makes the
#: numbers the same on any such machine (MKL's conditional numerical reproducibility, oneDNN's and ATen's dispatch).
ISA_ENV = "SYNSCALE_CPU_ISA"
ISAS: dict[str, dict[str, str]] = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2,STRICT"},
    "sse4": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "SSE4_2,STRICT"},
    "native": {},
}
#: numpy's OpenBLAS: its Haswell kernels are its AVX2 ones. A machine that sets OPENBLAS_CORETYPE itself (some do,
#: for older OpenBLAS builds that compute wrong results on their processor) keeps its own setting.
OPENBLAS = {"avx2": "Haswell", "sse4": "Nehalem"}


def isa() -> str:
    """The instruction set the study's CPU kernels are capped to: ``SYNSCALE_CPU_ISA`` (default ``avx2``), or
    ``native`` for none."""
    name = os.environ.get(ISA_ENV, "avx2")
    if name not in ISAS:
        raise ValueError(f"{ISA_ENV}={name!r}: choose one of {sorted(ISAS)}")
    return name


def isa_env(name: str | None = None) -> dict[str, str]:
    """The variables that cap a new process's CPU kernels to ``name`` (default :func:`isa`). They act only when set
    before the process imports torch and numpy: the runner puts them in every kernel's environment (and so in every
    job a kernel launches), and the Jupyter kernel ``synscale`` carries them for interactive sessions."""
    name = name or isa()
    env = {ISA_ENV: name, **ISAS[name]}
    if name in OPENBLAS:
        env["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", OPENBLAS[name])
    return env


def capability() -> str:
    """The instruction set torch's CPU kernels use in this process (``AVX512``, ``AVX2``, ``DEFAULT``)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()
