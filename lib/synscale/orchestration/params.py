"""Params files: load, validate against the notebook's parameters cell, expand grids, name runs.

A params file ``params/<stem>.yaml`` belongs to ``notebooks/<stem>.ipynb``::

    description: one line saying what the experiment answers
    defaults:            # values for the notebook's parameters cell
      seed: 0
    grid:                # a list of cartesian sub-grids; the runs are their union
      - {cfg: [2.0, 7.5], prompt_config: [classnames, clip_templates]}
    profiles:            # named overrides; a profile may replace the grid and name what it requires
      smoke: {n_images: 4, grid: [{cfg: [2.0]}]}
      mini: {}
      paper:
        n_images: 50
        requires: {sd15: "${SYNSCALE_SD15:-~/models/stable-diffusion-v1-5}"}
      rehearsal:         # a profile may extend another: its values, then these overrides
        extends: paper
        n_images: 2

Every error is a one-line :class:`ParamsError` naming the file, the key and what is allowed.
"""
from __future__ import annotations

import ast
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from synscale.runtime.paths import expand_path, notebooks_dir

TOP_KEYS = ("description", "after", "defaults", "grid", "profiles")
PROFILE_KEYS = ("grid", "requires", "extends")  # reserved keys inside a profile; the rest are parameter values


class ParamsError(ValueError):
    """A params file (or a request against it) is wrong; the message is one line."""


@dataclass(frozen=True)
class Run:
    """One executable point of a grid."""

    stem: str
    profile: str
    params: dict[str, Any]
    name: str
    key: str
    requires: dict[str, str] = field(default_factory=dict)
    after: tuple[str, ...] = ()  # notebooks to finish first when runs execute in parallel (ParamsFile.after)

    def dir(self, outputs: Path) -> Path:
        return Path(outputs) / self.stem / self.profile / self.name


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


_NO_DEFAULT = object()


def notebook_parameters(notebook: Path) -> dict[str, str]:
    """name -> type name, read from the notebook's ``parameters`` cell by papermill."""
    return {k: t for k, (t, _) in _inspect(notebook).items()}


def _inspect(notebook: Path) -> dict[str, tuple[str, Any]]:
    import papermill  # local: papermill pulls in nbformat/jupyter machinery

    info = papermill.inspect_notebook(str(notebook))
    if not info:
        raise ParamsError(f"{notebook}: no cell tagged 'parameters'; tag the cell holding the literals")
    return {name: _type_and_default(p) for name, p in info.items()}


def _type_and_default(p: dict) -> tuple[str, Any]:
    """The annotation papermill read (``x: float = 1``), else the type of the default literal."""
    try:
        value = ast.literal_eval(p.get("default", "None"))
    except (ValueError, SyntaxError):
        value = _NO_DEFAULT  # an expression: type not checked, value not known here
    annotated = p.get("inferred_type_name") or "None"
    if annotated != "None" or value is _NO_DEFAULT or value is None:
        return annotated, value
    return type(value).__name__, value


def code_source(notebook: Path) -> str:
    """The notebook's code cells, joined: what (with the params) decides a run's result."""
    nb = json.loads(Path(notebook).read_text())
    return "\n#--cell--\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in nb.get("cells", [])
        if c.get("cell_type") == "code"
    )


_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


def _type_ok(expected: str, value: Any) -> bool:
    if expected not in _TYPES:  # 'None' or an expression papermill could not type: anything goes
        return True
    if isinstance(value, bool) and expected != "bool":
        return False
    return isinstance(value, _TYPES[expected])


@dataclass
class ParamsFile:
    path: Path
    description: str
    defaults: dict[str, Any]
    grid: list[dict[str, list]]
    profiles: dict[str, dict[str, Any]]
    allowed: dict[str, str]  # parameter -> inferred type
    nb_defaults: dict[str, Any] = field(default_factory=dict)  # the parameters cell's literals
    has_grid: bool = False
    # notebooks whose cached data/models this one reuses: with ``--jobs`` > 1 its runs start after theirs (alone it
    # runs without them, recomputing what they would have cached)
    after: list[str] = field(default_factory=list)

    @property
    def stem(self) -> str:
        return self.path.stem

    # -- validation ---------------------------------------------------------------------------------
    def _err(self, where: str, msg: str) -> ParamsError:
        keys = ", ".join(sorted(self.allowed)) or "(none)"
        return ParamsError(f"{self.path}: {where}: {msg}; allowed keys: {keys}")

    def _check_value(self, where: str, key: str, value: Any) -> None:
        if key not in self.allowed:
            raise self._err(f"{where}.{key}", f"unknown key '{key}' (not in the notebook's parameters cell)")
        expected = self.allowed[key]
        if not _type_ok(expected, value):
            raise self._err(
                f"{where}.{key}",
                f"wrong type: expected {expected} (as in the notebook's parameters cell), "
                f"got {type(value).__name__} {value!r}",
            )

    def _check_grid(self, where: str, grid: Any) -> None:
        if not isinstance(grid, list) or not grid:
            raise self._err(where, "empty grid: give a non-empty list of sub-grids (mapping key -> list of values)")
        for i, sub in enumerate(grid):
            if not isinstance(sub, dict) or not sub:
                raise self._err(f"{where}[{i}]", "empty sub-grid: give a mapping of key -> non-empty list of values")
            for key, values in sub.items():
                if not isinstance(values, list) or not values:
                    raise self._err(f"{where}[{i}].{key}", "empty grid axis: give a non-empty list of values")
                for v in values:
                    self._check_value(f"{where}[{i}]", key, v)

    def validate(self) -> ParamsFile:
        for k, v in self.defaults.items():
            self._check_value("defaults", k, v)
        if self.has_grid:
            self._check_grid("grid", self.grid)
        for name, prof in self.profiles.items():
            if not isinstance(prof, dict):
                raise self._err(f"profiles.{name}", "a profile must be a mapping of overrides")
            for k, v in prof.items():
                if k == "grid":
                    self._check_grid(f"profiles.{name}.grid", v)
                elif k == "requires":
                    if not isinstance(v, dict) or not all(isinstance(p, str) for p in v.values()):
                        raise self._err(f"profiles.{name}.requires", "expected a mapping name -> path")
                elif k == "extends":
                    if v not in self.profiles or v == name:
                        raise self._err(f"profiles.{name}.extends", f"'{v}' is not another profile of this file "
                                        f"(profiles: {', '.join(sorted(self.profiles))})")
                    self.profile(name)  # a cycle fails here
                else:
                    self._check_value(f"profiles.{name}", k, v)
        return self

    def profile(self, name: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
        """A profile's overrides with those of the profile it ``extends`` (recursively) underneath."""
        prof = dict(self.profiles[name])
        parent = prof.pop("extends", None)
        if parent is None:
            return prof
        if parent in _seen + (name,):
            raise self._err(f"profiles.{name}.extends", f"profiles extend each other in a cycle: "
                            f"{' -> '.join((*_seen, name, parent))}")
        return {**self.profile(parent, _seen + (name,)), **prof}

    # -- expansion ----------------------------------------------------------------------------------
    def runs(self, profile: str, code: str = "", world: str = "") -> list[Run]:
        """The runs of one profile: the notebook's literals, the file's defaults, the profile's overrides,
        then each grid point. The resolved params name every parameter, so a run's params.yaml is complete.

        A run's key hashes its params and ``code``, and ``world`` (the mini world's manifest) when the run reads
        the mini world (no ``world`` parameter, or ``world: mini``), so rebuilding the mini world makes those runs
        stale and leaves runs on a folder world alone."""
        if profile not in self.profiles:
            raise ParamsError(
                f"{self.path}: unknown profile '{profile}'; allowed profiles: {', '.join(sorted(self.profiles))}"
            )
        prof = self.profile(profile)
        base = {**self.nb_defaults, **self.defaults}
        base.update({k: v for k, v in prof.items() if k not in PROFILE_KEYS})
        if "profile" in self.allowed:
            base["profile"] = profile
        grid = prof.get("grid", self.grid) or [{}]
        axes: list[str] = []
        for sub in grid:
            axes += [k for k in sub if k not in axes]
        requires = {k: expand_path(v) for k, v in (prof.get("requires") or {}).items()}
        seen: set[str] = set()
        out: list[Run] = []
        for sub in grid:
            keys = list(sub)
            for combo in itertools.product(*(sub[k] for k in keys)):
                params = dict(base)
                params.update(zip(keys, combo))
                pjson = canonical(params)
                if pjson in seen:
                    continue
                seen.add(pjson)
                phash = digest(pjson)[:8]
                label = "__".join(f"{k}={fmt_value(params.get(k))}" for k in axes)
                name = f"{label}__{phash}" if label else f"run__{phash}"
                stamp = (world,) if world and params.get("world", "mini") == "mini" else ()
                key = digest(pjson, code, *stamp)
                out.append(Run(self.stem, profile, params, name, key, requires, tuple(self.after)))
        return out


def fmt_value(v: Any) -> str:
    """A grid value as a path-safe token: ``7.5``, ``clip_templates``, ``a+b``."""
    if isinstance(v, bool):
        s = str(v).lower()
    elif isinstance(v, float):
        s = f"{v:g}"
    elif isinstance(v, (list, tuple)):
        s = "+".join(fmt_value(x) for x in v)
    else:
        s = str(v)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", s).strip("-")[:40] or "_"


def load(path: Path, notebook: Path | None = None) -> ParamsFile:
    """Read and validate ``params/<stem>.yaml`` against ``notebooks/<stem>.ipynb``."""
    path = Path(path)
    if notebook is None:
        notebook = notebooks_dir() / f"{path.stem}.ipynb"
    if not Path(notebook).exists():
        raise ParamsError(f"{path}: no notebook {notebook} with the same stem; name the params file after its notebook")
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f" at line {line + 1}" if line is not None else ""
        raise ParamsError(f"{path}: not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping; allowed keys: {', '.join(TOP_KEYS)}")
    for k in raw:
        if k not in TOP_KEYS:
            raise ParamsError(f"{path}: unknown top-level key '{k}'; allowed keys: {', '.join(TOP_KEYS)}")
    info = _inspect(Path(notebook))
    pf = ParamsFile(
        path=path,
        description=str(raw.get("description", "")),
        defaults=dict(raw.get("defaults") or {}),
        grid=raw.get("grid") or [],
        profiles={k: (v if v is not None else {}) for k, v in (raw.get("profiles") or {}).items()},
        allowed={k: t for k, (t, _) in info.items()},
        nb_defaults={k: v for k, (_, v) in info.items() if v is not _NO_DEFAULT},
        has_grid="grid" in raw,
        after=raw.get("after") or [],
    )
    if not isinstance(pf.after, list) or not all(isinstance(a, str) for a in pf.after):
        raise ParamsError(f"{path}: after: expected a list of notebook stems, got {pf.after!r}")
    return pf.validate()
