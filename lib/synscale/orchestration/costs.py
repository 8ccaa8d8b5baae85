"""What a ``paper`` run costs, computed from its params: images generated per family, GPU-hours where a paper gives a
rate, training samples, LLM captions, and disk for the generated images.

Rates are the papers' own where they give one: Stable Diffusion v1.5 at 0.9 s per 512 px image, 50 DDIM steps, saved
at 256 px, on one A100 (SynthCLIP sec. 4). No paper gives IF's, aMUSEd's, BLIP-2's or the LLMs' rates, so their
images and captions are counted, not timed. Training is counted in samples processed (iterations × batch, or epochs
× pairs); measure a model's throughput on your GPUs (``benchmarks/trainer_throughput.py``) to turn it into hours.
Disk assumes ~0.1 MB per generated image stored as a 256 px PNG (an assumption, not a measurement here).

``synscale costs`` prints the table the README shows.
"""
from __future__ import annotations

import math

import pandas as pd

from synscale.methods.train import Recipe
from synscale.orchestration import params as P
from synscale.runtime.checkpoint import iterations_for
from synscale.runtime.paths import notebooks_dir, params_dir

SD_SECONDS_PER_IMAGE = 0.9   # SynthCLIP sec. 4: SD v1.5, 512 px, 50 DDIM steps, saved at 256 px, one A100
MB_PER_IMAGE = 0.1           # assumed size of one 256 px PNG
IMAGENET_CLASSES = 1000


def _params(stem: str) -> dict:
    return P.load(params_dir() / f"{stem}.yaml", notebooks_dir() / f"{stem}.ipynb").runs("paper")[0].params


def _images(per_family: dict[str, int], family: str, n: int) -> None:
    per_family[family] = per_family.get(family, 0) + int(n)


def _supervised(p: dict, specs: list[str], sizes: list[int], large_specs=(), large_sizes=()) -> dict:
    """Generated images (chunks of n_per_class × 1000 up to each curve's largest size) and ViT samples processed."""
    chunk = p["n_per_class"] * IMAGENET_CLASSES
    images: dict[str, int] = {}
    samples = 0
    real_max = 1_281_167
    for recipe, curves, ds in ((p["recipe"], specs, sizes), (p.get("large_recipe") or {}, large_specs, large_sizes)):
        rec = Recipe.from_dict(recipe)
        for s in curves:
            todo = [d for d in ds if s != "real" or d <= real_max]
            samples += sum(iterations_for(d, rec.base_size, rec.base_iters, rec.base_warmup)[0] * rec.batch_size
                           for d in todo)
            if s != "real" and todo:
                images[s] = max(images.get(s, 0), math.ceil(max(todo) / chunk) * chunk)
    per_family: dict[str, int] = {}
    for s, n in images.items():
        _images(per_family, s.split("/")[0], n)
    return {"images": per_family, "train_samples": samples}


def paper_costs() -> pd.DataFrame:
    """One row per notebook's paper profile: images per family, SD GPU-hours at the paper's rate, training samples
    processed, LLM captions, disk for generated images."""
    rows = []
    p = _params("01_prompt_design")
    rows.append(("01_prompt_design", {"sd": len(p["prompt_configs"]) * len(p["cfg_scales"]) * p["n_per_class"] * 1000},
                 0, 0, "image metrics (oracle, FID Inception, LPIPS) of each set"))
    p = _params("02_cfg_sweep")
    n = p["n_per_class"] * IMAGENET_CLASSES
    sweep = {f: len(v) * n for f, v in p["cfg_scales"].items()}
    sweep["sd"] += len(p["sd_prompt_configs"]) * len(p["sd_prompt_cfg_scales"]) * n  # Table A6, some sets shared
    rows.append(("02_cfg_sweep", sweep, 0, 0, "three runs (one per family); SD sets partly shared with 01"))
    p = _params("03_synthetic_1p3m")
    c = _supervised(p, p["specs"], [p["n_per_class"] * IMAGENET_CLASSES])
    rows.append(("03_synthetic_1p3m", c["images"], c["train_samples"], 0, "one ViT-B/16 per configuration at D_I"))
    p = _params("04_scaling")
    c = _supervised(p, p["specs"], p["sizes"], p["large_specs"], p["large_sizes"])
    rows.append(("04_scaling", c["images"], c["train_samples"], 0,
                 "ViT-B/16 per configuration and size; ViT-L to 8M (its own chunks: 03's D_I sets differ)"))
    rows.append(("05_ood", {}, 0, 0, "04's models evaluated; per-class metrics of 50 images/class per curve"))
    p = _params("06_clip_mixing")
    syn = max(p["scales"]) + sum(min(p["scales"]) for g in p["cfg_table"] if g != p["cfg"])
    runs = [(m, n) for n in p["scales"] for m in p["modes"]] + [("real", n) for n in p["hparam_scales"]]
    rows.append(("06_clip_mixing", {"sd": syn}, sum(p["epochs"] * n for _, n in runs), 0,
                 f"{len(runs)} ViT-B/16 CLIPs (open_clip, {p['epochs']} epochs)"))
    p = _params("07_retrieval_baseline")
    n_max = max(p["sizes_per_class"]) * 100  # FGVC-Aircraft's 100 classes
    rows.append(("07_retrieval_baseline", {"sd": n_max},
                 sum(p["epochs"] * k * 100 for k in p["sizes_per_class"]) * 2, n_max,
                 "LLaMA-2 writes one caption per synthetic image; a 2B-caption pool is scanned; finetuning runs"))
    p = _params("08_synthclip")
    captions = p["pool_concepts"] * p["passes"]
    clips = [max(p["sizes"])] * 3 + list(p["sizes"]) + [min(p["sizes"])] * 2  # real+synth per size, mixed, ablations
    rows.append(("08_synthclip", {"sd": 2 * max(p["sizes"]) + min(p["sizes"])},
                 sum(p["epochs"] * n for n in clips), captions,
                 "Mistral captions of the concept pool; SynthCLIP, CC12M and mixed CLIPs (open_clip)"))
    out = []
    for stem, images, samples, caps, what in rows:
        sd = images.get("sd", 0)
        out.append({"notebook": stem, "SD images": sd, "IF images": images.get("if", 0),
                    "aMUSEd images": images.get("muse", 0),
                    "SD A100-hours": round(sd * SD_SECONDS_PER_IMAGE / 3600),
                    "disk GB": round(sum(images.values()) * MB_PER_IMAGE / 1000),
                    "training samples": samples, "LLM captions": caps, "what": what})
    return pd.DataFrame(out)


def markdown(df: pd.DataFrame) -> str:
    """The table as README markdown (numbers with thousands separators)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in r) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "synscale costs") -> int:
    import argparse

    argparse.ArgumentParser(prog=prog, description="Print what each notebook's paper profile costs: images "
                            "generated, training samples, disk.").parse_args(argv)
    print(markdown(paper_costs()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

