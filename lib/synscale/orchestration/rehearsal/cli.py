"""``synscale rehearsal``: build the stand-ins and print the environment that points the study at them.

    synscale rehearsal build --root /tmp/rehearsal   # models, data, and the user's preparation steps
    eval "$(synscale rehearsal env --root /tmp/rehearsal)"
    ./run_all.sh --profile rehearsal                 # every notebook's paper path, in minutes on a CPU
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from synscale.orchestration.rehearsal import data

STAMP = "REHEARSAL.json"
REGISTRY = "generators.yaml"


def env(root: Path) -> dict[str, str]:
    """The variables a user sets to point the paper profiles at their weights and data, here at the stand-ins."""
    root = Path(root).resolve()
    out = {"HF_HOME": str(root / "hf"), "TORCH_HOME": str(root / "torch"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    out.update({k: str(root / v) for k, v in data.ROOTS.items()})
    out["SYNSCALE_GENERATORS"] = str(root / REGISTRY)
    return out


def write_registry(root: Path) -> Path:
    """The generator registry the rehearsal runs with: ``params/generators.yaml`` as it is, except that each
    stand-in whose pipeline fixes its image side in code samples at :data:`today.SIDE` (FLUX.1's pipeline draws 128
    latent pixels whatever its config says: 4,096 tokens per image, 1 s each on a CPU core)."""
    import yaml

    from synscale.data import generators
    from synscale.orchestration.rehearsal import today

    doc = yaml.safe_load(generators.registry_file().read_text())
    for key in today.FIXED_SIDE:
        doc["generators"][key].setdefault("call", {}).update(height=today.SIDE, width=today.SIDE)
    out = Path(root) / REGISTRY
    out.write_text("# written by synscale rehearsal build from params/generators.yaml: the stand-ins' image side\n"
                   + yaml.safe_dump(doc, sort_keys=False))
    return out


def prepare(root: Path) -> None:
    """What a user computes once from their data, with the study's own commands (``synscale prepare``, ``synscale
    caption``; here against the stand-ins):
    BLIP-2 captions of ImageNet-train (the IN-Captions prompts) and FGVC-Aircraft as class folders."""
    from synscale.orchestration import cli

    e = env(root)
    old = {k: os.environ.get(k) for k in e}
    os.environ.update(e)
    try:
        cli.main(["prepare", "aircraft", "--src", str(Path(root) / data.AIRCRAFT_SOURCE),
                  "--out", e["SYNSCALE_AIRCRAFT"]])
        cli.main(["caption", "--root", e["SYNSCALE_IMAGENET"], "--split", "train", "--model", "paper:blip2",
                  "--batch-size", "16"])
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def build(root: Path, force: bool = False) -> dict[str, str]:
    """Stand-in models (``synscale.orchestration.rehearsal.standins``: the papers' and today's), data roots
    (``synscale.orchestration.rehearsal.data``) and the prepared
    captions and folders under ``root``, once (``REHEARSAL.json`` marks a finished build); returns :func:`env`."""
    from synscale.orchestration.rehearsal import standins

    root = Path(root)
    stamp = root / STAMP
    if stamp.exists() and not force:
        return env(root)
    t0 = time.perf_counter()
    e = env(root)
    built = standins.build_all(Path(e["HF_HOME"]), Path(e["TORCH_HOME"]))
    data.build_all(root)
    write_registry(root)
    prepare(root)
    stamp.write_text(json.dumps({"models": built, "seconds": round(time.perf_counter() - t0, 1)}, indent=1))
    return e


def main(argv: list[str] | None = None, prog: str = "synscale rehearsal") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["build", "env"])
    ap.add_argument("--root", type=Path, required=True, help="where the stand-ins live (a few tens of MB)")
    ap.add_argument("--force", action="store_true", help="rebuild even when a finished build is there")
    a = ap.parse_args(argv)
    e = build(a.root, a.force) if a.command == "build" else env(a.root)
    print("\n".join(f"export {k}={v}" for k, v in e.items()))
    return 0


