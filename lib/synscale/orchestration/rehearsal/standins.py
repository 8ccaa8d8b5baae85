"""Every stand-in the rehearsal builds, by role: the papers' models (:mod:`.models`) and today's generators
(:mod:`.today`), each role a key of :data:`synscale.data.weights.PAPER`."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from synscale.orchestration.rehearsal import models, today

STANDINS: dict[str, Callable[[Path, Path], str]] = {**models.STANDINS, **today.STANDINS}


def build_all(hf_home: Path, torch_home: Path, only: list[str] | None = None) -> dict[str, str]:
    """Build the stand-ins named in ``only`` (default: all) -> {role: repo id or file path}."""
    roles = list(STANDINS) if only is None else list(only)
    unknown = [r for r in roles if r not in STANDINS]
    if unknown:
        raise ValueError(f"unknown stand-in(s) {unknown}; known: {', '.join(STANDINS)}")
    return {r: STANDINS[r](Path(hf_home), Path(torch_home)) for r in roles}
