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
