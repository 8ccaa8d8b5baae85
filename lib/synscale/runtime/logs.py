"""The package speaks through :mod:`logging`: every module logs to its own logger under ``synscale``
(:func:`logger`, ``logging.getLogger(__name__)`` also when the module runs as ``python -m``). Where the records
go is the caller's choice, made once:

- the ``synscale`` command (and a job it runs) shows INFO and above on stderr, one plain line each;
- a batch kernel of the runner writes INFO and above to its run's ``run.log``
  (:func:`synscale.orchestration.nb.batch_mode`);
- an interactive session configures nothing: Python's last-resort handler shows warnings and above.
"""
from __future__ import annotations

import logging
import sys
from typing import TextIO

ROOT = "synscale"


def logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, where a module run as ``python -m synscale.…`` (a launched job), whose
    ``__name__`` is ``__main__``, still logs under its dotted name, so its lines reach the ``synscale`` logger's
    route."""
    if name == "__main__":
        name = getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None) or ROOT
    return logging.getLogger(name)


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when a record comes (a notebook's, a test's capture), like logging's
    own last-resort handler, not on the stream there was when the route was made."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler sets it in __init__; the property always answers sys.stderr
        pass


def route(stream: TextIO | None = None, level: int = logging.INFO, fmt: str = "%(message)s") -> logging.Handler:
    """Send the package's records at ``level`` and above to ``stream`` (default: whatever ``sys.stderr`` is then),
    replacing an earlier route. They still propagate: a handler the user put on the root logger (or pytest's capture)
    gets them too, and Python's last-resort handler, which acts only where no handler exists, prints nothing twice.
    Returns the handler."""
    logger = logging.getLogger(ROOT)
    for h in [h for h in logger.handlers if getattr(h, "_synscale_route", False)]:
        logger.removeHandler(h)
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(logging.Formatter(fmt))
    handler._synscale_route = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
