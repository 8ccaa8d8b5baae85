"""Progress bars that suit where the code runs: widgets in JupyterLab, throttled text in the run log of a batch run.

Interactively (JupyterLab with ipywidgets, a terminal, torchrun) a bar is ``tqdm.auto``'s. In a run of the runner
(``SYNSCALE_BATCH=1`` in the kernel's environment) a bar is plain text on ``sys.stderr``, which the kernel's batch
set-up (:func:`synscale.orchestration.nb.batch_mode`) points at the run's ``run.log``, updated at most every
``TQDM_MININTERVAL`` seconds (papermill #765: a line per update would flood a log). No bar ever lands in a
rendered report.

A launched job (``synscale.runtime.launch``) runs where no notebook can see its bars, so its rank 0 also reports the
bar it last moved to a small JSON file (``SYNSCALE_PROGRESS_FILE``, set by the launcher), and the notebook that waits
for the job shows that as its own bar (:func:`follow`).
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.std import tqdm as _text_tqdm

FILE_ENV = "SYNSCALE_PROGRESS_FILE"  # a launched job's rank 0 reports its bars here


def batch() -> bool:
    """Whether this process is a runner's kernel (or a job it launched) rather than an interactive session."""
    return os.environ.get("SYNSCALE_BATCH") == "1"


def _report_to() -> str | None:
    """Where this process reports its bars: set for a launched job's rank 0 only."""
    path = os.environ.get(FILE_ENV)
    return path if path and os.environ.get("RANK", "0") == "0" else None


def write_report(path: str | Path, n: float, total: float | None, desc: str = "", unit: str = "it") -> None:
    """One progress report, written atomically (a reader never sees half a file)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    Path(tmp).write_text(json.dumps({"n": n, "total": total, "desc": desc, "unit": unit}))
    os.replace(tmp, path)


def read_report(path: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class _Reporting(_text_tqdm):
    """A text bar (in the job's log) that also reports its state to :data:`FILE_ENV`, at most every second."""

    def __init__(self, *args: Any, report_to: str, **kwargs: Any) -> None:
        self._report_to, self._reported = report_to, 0.0
        super().__init__(*args, **kwargs)
        self._report()

    def _report(self) -> None:
        write_report(self._report_to, self.n, self.total, self.desc.rstrip(": "), self.unit)
        self._reported = time.monotonic()

    def update(self, n: float = 1) -> bool | None:
        out = super().update(n)
        if time.monotonic() - self._reported >= 1.0 or (self.total and self.n >= self.total):
            self._report()
        return out

    def close(self) -> None:
        if not self.disable:
            self._report()
        super().close()


def bar(iterable: Any = None, **kwargs: Any):
    """A ``tqdm`` bar: ``tqdm.auto`` interactively, text on ``sys.stderr`` (the run log) in batch runs; in a launched
    job, text on the job's log that also reports to :data:`FILE_ENV` (a job's bar is never disabled: its caller's
    notebook follows it)."""
    if (report_to := _report_to()) is not None:
        kwargs.update(file=sys.stderr, ascii=True, disable=False)
        kwargs["mininterval"] = max(float(kwargs.get("mininterval", 0)), float(os.environ.get("TQDM_MININTERVAL", 30)))
        return _Reporting(iterable, report_to=report_to, **kwargs)
    if batch():
        kwargs.setdefault("file", sys.stderr)
        kwargs["mininterval"] = max(float(kwargs.get("mininterval", 0)), float(os.environ.get("TQDM_MININTERVAL", 30)))
        kwargs.setdefault("ascii", True)
        return _text_tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def follow(path: str | Path, finished: Callable[[], bool], desc: str, poll_s: float | None = None) -> None:
    """Show a launched job's reports (``path``) as a bar here until ``finished()``: the waiting notebook's view of
    work running in other processes (torchrun ranks, a SLURM job). Polls every ``poll_s`` seconds
    (``SYNSCALE_JOB_POLL_S``, default 2)."""
    poll = float(poll_s if poll_s is not None else os.environ.get("SYNSCALE_JOB_POLL_S", 2))
    b = bar(total=None, desc=desc)
    last, shown = None, 0.0
    while True:
        done = finished()
        rep = read_report(path)
        if rep and rep != last:
            b.total, b.unit, b.n = rep["total"], rep["unit"], rep["n"]
            b.set_description_str(f"{desc}: {rep['desc']}" if rep["desc"] else desc, refresh=False)
            last = rep
            if done or time.monotonic() - shown >= b.mininterval:
                b.refresh()
                shown = time.monotonic()
        if done:
            break
        time.sleep(poll)
    b.close()
