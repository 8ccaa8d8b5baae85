"""Results as files: ``record`` metrics, ``record_table`` tidy tables, ``savefig`` figures, ``collect`` them.

Inside a run (the runner sets ``SYNSCALE_RUN_DIR``) everything lands in the run directory::

    metrics.json   {name: value}, written on every record() so a crash keeps what was recorded
    tables/<name>.csv
    figures/<name>.png

``collect(stem, profile)`` builds one summary table per experiment from its finished run directories.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from synscale.runtime.integrity import write_json
from synscale.runtime.paths import ROOT, outputs_dir, run_dir

METRICS = "metrics.json"
PROVENANCE = "provenance.json"
PARAMS = "params.yaml"
SUMMARY = "summary.csv"
KEY_PACKAGES = (
    "torch", "torchvision", "diffusers", "transformers", "open_clip_torch", "timm", "webdataset",
    "torchmetrics", "accelerate", "papermill", "numpy", "pandas", "scikit-learn", "statsmodels",
)


def _jsonable(value: Any) -> Any:
    """numpy/torch scalars and arrays -> plain Python; NaN/inf -> None (JSON has neither)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def record(name: str, value: Any) -> Any:
    """Record one metric of this run (a number, string or small list/dict) and return it."""
    path = run_dir() / METRICS
    metrics = read_json(path)
    metrics[name] = _jsonable(value)
    write_json(path, metrics)
    return value


def record_table(name: str, df: pd.DataFrame) -> Path:
    """Save a tidy (long) table of this run as ``tables/<name>.csv``; return its path."""
    d = run_dir() / "tables"
    d.mkdir(exist_ok=True)
    path = d / f"{name}.csv"
    df.to_csv(path, index=False)
    return path


HEADLINE = "HEADLINE"  # figures/HEADLINE names the figure the index page shows for the run


def savefig(fig: Any, name: str, dpi: int = 110, headline: bool = False) -> Path:
    """Save a matplotlib figure as ``figures/<name>.png`` (it still shows inline in the notebook); ``headline``:
    the experiment's main figure, shown on ``outputs/index.html``."""
    d = run_dir() / "figures"
    d.mkdir(exist_ok=True)
    path = d / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    if headline:
        (d / HEADLINE).write_text(path.name)
    return path


# -- provenance -----------------------------------------------------------------------------------------
def git_state(root: Path = ROOT) -> dict[str, Any]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20)
        return out.stdout.strip() if out.returncode == 0 else ""

    try:
        sha = git("rev-parse", "HEAD") or None
        dirty = bool(git("status", "--porcelain", "--untracked-files=no")) if sha else None
    except (OSError, subprocess.SubprocessError):
        sha, dirty = None, None
    return {"git_sha": sha, "git_dirty": dirty}


def environment() -> dict[str, Any]:
    """Python, package versions, torch/CUDA and the device a run will see."""
    versions = {}
    for pkg in KEY_PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu_count": os.cpu_count(),
        "packages": versions,
    }
    try:
        import torch

        cuda = torch.cuda.is_available()
        env.update(
            torch=torch.__version__,
            cuda=torch.version.cuda,
            cuda_available=cuda,
            device=torch.cuda.get_device_name(0) if cuda else "cpu",
            gpu_count=torch.cuda.device_count() if cuda else 0,
        )
    except ImportError:
        env.update(torch=None, cuda=None, cuda_available=False, device="cpu", gpu_count=0)
    return env


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# -- collection -----------------------------------------------------------------------------------------
def finished_runs(stem: str, profile: str, outputs: Path | None = None) -> list[Path]:
    base = (Path(outputs) if outputs else outputs_dir()) / stem / profile
    if not base.is_dir():
        return []
    return sorted(
        d for d in base.iterdir()
        if d.is_dir() and not d.name.startswith(".") and read_json(d / PROVENANCE).get("status") == "done"
    )


def _flat_scalars(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat_scalars(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def collect(stem: str, profile: str, outputs: Path | None = None, write: bool = True) -> pd.DataFrame:
    """One row per finished run: run id, its params (``param.<k>``) and its scalar metrics.

    Written to ``outputs/<stem>/<profile>/summary.csv`` (``write=False`` only returns it).
    """
    import yaml

    rows = []
    runs = finished_runs(stem, profile, outputs)
    for d in runs:
        params = yaml.safe_load((d / PARAMS).read_text()) or {}
        prov = read_json(d / PROVENANCE)
        row = {"run": d.name, "duration_s": prov.get("duration_s"), "git_sha": prov.get("git_sha")}
        row.update({f"param.{k}": v for k, v in params.items() if not isinstance(v, (list, dict))})
        row.update(_flat_scalars(read_json(d / METRICS)))
        rows.append(row)
    df = pd.DataFrame(rows)
    if write and rows:
        df.to_csv(runs[0].parent / SUMMARY, index=False)
    return df


def collect_table(stem: str, profile: str, table: str, outputs: Path | None = None) -> pd.DataFrame:
    """Concatenate ``tables/<table>.csv`` of every finished run, with ``run`` and ``param.<k>`` columns."""
    import yaml

    frames = []
    for d in finished_runs(stem, profile, outputs):
        path = d / "tables" / f"{table}.csv"
        if path.exists():
            df = pd.read_csv(path)
            params = yaml.safe_load((d / PARAMS).read_text()) or {}
            df.insert(0, "run", d.name)
            for k, v in params.items():
                if not isinstance(v, (list, dict)):
                    df[f"param.{k}"] = v
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
