"""The ``synscale`` command: the runner, every job and the study's tools behind one entry point.

    synscale run [NOTEBOOK ...] [--profile P]       the notebooks over their params grids (what ./run_all.sh runs)
    synscale check [NOTEBOOK ...] --profile paper   the dry run: plan, what is done, what the runs lack
    synscale generate | train | clip | finetune | caption | llm | metrics ...   one job
    synscale costs | findings | rehearsal ...

``synscale <command> --help`` says what a command makes and where. A job takes real flags for what a person sets,
and ``--spec JSON`` for what a notebook hands it when it launches the job (``SYNSCALE_LAUNCHER``).
"""
from __future__ import annotations

import importlib
import sys

from synscale.runtime.logs import route

#: command -> (module whose ``main(argv)`` runs it, what it makes and where)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("synscale.orchestration.run",
            "execute notebooks over their params grids: reports under outputs/<stem>/<profile>/ (./run_all.sh)"),
    "check": ("synscale.orchestration.run",
              "the dry run: the plan, what is done, every weight, folder and parameter the runs lack"),
    "generate": ("synscale.methods.generate",
                 "a synthetic image set (webdataset shards) in the shared cache <cache>/synthetic/"),
    "train": ("synscale.studies.supervised",
              "one classifier on real or synthetic images in the shared cache <cache>/classifiers/"),
    "clip": ("synscale.methods.openclip_train",
             "a CLIP trained by open_clip's trainer on webdataset shards (open_clip_train's flags)"),
    "finetune": ("synscale.studies.retrieval",
                 "a CLIP's image tower and zero-shot head finetuned on labelled images (Geng), <cache>/finetune/"),
    "caption": ("synscale.methods.captioning",
                "BLIP-2 captions of a folder world's images (IN-Captions), beside the world"),
    "llm": ("synscale.methods.llm",
            "LLM captions of a concept list (SynthCLIP), one JSON file per pass in <cache>/synthclip_captions/"),
    "metrics": ("synscale.methods.imagesets",
                "recognizability, diversity, FID and LPIPS of generated sets, a JSON file beside each set"),
    "costs": ("synscale.orchestration.costs", "the paper profiles' costs per notebook"),
    "ledger": ("synscale.orchestration.ledger",
               "the fidelity ledger: paper profiles beside the papers (docs/fidelity.md)"),
    "findings": ("synscale.analysis.findings", "the study's findings (claims, intervals, verdicts) as Markdown"),
    "prepare": ("synscale.data.world.folder",
                "an ImageNet-style folder world from a downloaded data set (FGVC-Aircraft for notebook 07)"),
    "labrun": ("synscale.orchestration.labrun",
               "run a notebook as JupyterLab's Run All does, with its wall time and peak memory"),
    "rehearsal": ("synscale.orchestration.rehearsal.cli",
                  "build the paper-shaped stand-ins and print the environment that points the study at them"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items())
    return f"usage: synscale <command> [--help] ...\n\n{__doc__.split(chr(10) + chr(10))[0]}\n\ncommands:\n{rows}\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"synscale: unknown command {name!r}; one of: {', '.join(COMMANDS)} (synscale --help)", file=sys.stderr)
        return 2
    route()  # the package's log lines on stderr
    module = importlib.import_module(COMMANDS[name][0])
    if name == "check":
        rest = ["--dry-run", *rest]
    return int(module.main(rest, prog=f"synscale {name}") or 0)


if __name__ == "__main__":
    raise SystemExit(main())
