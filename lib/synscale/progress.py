"""Progress bars that suit where the code runs: widgets in JupyterLab, throttled text in the run log of a batch run.

Interactively (JupyterLab with ipywidgets, a terminal, torchrun) a bar is ``tqdm.auto``'s. In a run of the runner
(``SYNSCALE_BATCH=1`` in the kernel's environment) a bar is plain text on ``sys.stderr``, which the kernel's batch
set-up (:func:`synscale.nb.batch_mode`) points at the run's ``run.log``, updated at most every
``TQDM_MININTERVAL`` seconds (papermill #765: a line per update would flood a log). No bar ever lands in a
rendered report.
"""
from __future__ import annotations

import os
import sys
from typing import Any


def batch() -> bool:
    """Whether this process is a runner's kernel (or a job it launched) rather than an interactive session."""
    return os.environ.get("SYNSCALE_BATCH") == "1"


def bar(iterable: Any = None, **kwargs: Any):
    """A ``tqdm`` bar: ``tqdm.auto`` interactively, text on ``sys.stderr`` (the run log) in batch runs."""
    if batch():
        from tqdm.std import tqdm

        kwargs.setdefault("file", sys.stderr)
        kwargs["mininterval"] = max(float(kwargs.get("mininterval", 0)), float(os.environ.get("TQDM_MININTERVAL", 30)))
        kwargs.setdefault("ascii", True)
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
