"""What a ``paper`` run costs, computed from its params: images generated per family, training samples, LLM captions,
disk for the generated images, and A100-hours for each at a stated rate.

Rates (``RATES``): Stable Diffusion v1.5's is the papers' own (0.9 s per 512 px image, 50 DDIM steps, saved at 256 px,
one A100; SynthCLIP sec. 4.1). No paper gives IF's, aMUSEd's, the LLMs' or the trainers' rates: those are our
assumptions, named as such in ``RATES`` and in the README, to be replaced by what ``benchmarks/trainer_throughput.py``
and a generation job's ``images_per_s`` measure on your GPUs. Training hours are samples processed (iterations ×
batch, or epochs × pairs) ÷ the architecture's throughput. Image metrics (a ViT-B/16 forward pass per image) are
not counted. Disk assumes ~0.1 MB per generated image stored as a 256 px PNG (an assumption, not a measurement).

``synscale costs`` prints the table the README shows.
"""
from __future__ import annotations

import functools
import math

import pandas as pd

from synscale.methods.train import Recipe
from synscale.orchestration import params as P
from synscale.runtime.paths import notebooks_dir, params_dir
from synscale.studies.supervised import curve_sizes

SD_SECONDS_PER_IMAGE = 0.9   # SynthCLIP sec. 4.1: SD v1.5, 512 px, 50 DDIM steps, saved at 256 px, one A100
MB_PER_IMAGE = 0.1           # assumed size of one 256 px PNG
IMAGENET_CLASSES = 1000
IMAGENET_TRAIN = 1_281_167  # the real curve's last point
#: the notebooks this module has a cost model of (the study's)
COSTED = ("00_mini_world", "01_prompt_design", "02_cfg_sweep", "03_synthetic_1p3m", "04_scaling", "05_ood",
          "06_clip_mixing", "07_retrieval_baseline", "08_synthclip", "09_generators")
#: the paper's three families' image columns; every other generator's images are counted under "other images"
FAMILY_COLUMNS = {"sd": "SD images", "if": "IF images", "muse": "aMUSEd images"}
#: (rate per A100, source): seconds per generated image, training images per second, LLM captions per second
RATES = {
    "sd": (SD_SECONDS_PER_IMAGE, "s/image, SynthCLIP sec. 4.1"),
    "if": (3.0, "s/image, assumed (IF-I-XL 64 px + IF-II-L to 256 px, 50 steps each, as Imagen's 256 px "
                "and as the paper profiles run it)"),
    "muse": (0.3, "s/image, assumed (aMUSEd-256; not measured here)"),
    "sdxl": (5.0, "s/image, assumed (SDXL base, 1024 px, 50 steps, fp16)"),
    "sd3": (3.0, "s/image, assumed (SD3-medium, 1024 px, 28 steps, fp16)"),
    "flux_schnell": (2.0, "s/image, assumed (FLUX.1-schnell, 1024 px, 4 steps, bf16)"),
    "pixart_sigma": (2.0, "s/image, assumed (PixArt-Sigma XL-2, 1024 px, 20 steps, fp16)"),
    "vit_base_patch16_224": (1200.0, "img/s, assumed (ViT-B/16 at 224 px, AMP; benchmarks/trainer_throughput.py)"),
    "vit_large_patch16_224": (350.0, "img/s, assumed (ViT-L/16 at 224 px, AMP)"),
    "clip": (1000.0, "img/s, assumed (open_clip ViT-B/16, AMP)"),
    "llm": (50.0, "captions/s, assumed (a 7B LLM under vLLM, ~40 tokens each)"),
}


def hours(n: float, what: str) -> float:
    """A100-hours for ``n`` images (a generator), samples (a trainer) or captions (the LLM) at ``RATES[what]``."""
    rate = RATES[what][0]
    return n * rate / 3600 if RATES[what][1].startswith("s/image") else n / rate / 3600


def _load(stem: str, profile: str = "paper") -> dict:
    return P.load(params_dir() / f"{stem}.yaml", notebooks_dir() / f"{stem}.ipynb").runs(profile)[0].params


def _images(per_family: dict[str, int], family: str, n: int) -> None:
    per_family[family] = per_family.get(family, 0) + int(n)


def _supervised(p: dict, specs: list[str], sizes: list[int], large_specs=(), large_sizes=()) -> dict:
    """Generated images (chunks of n_per_class × 1000 up to each curve's largest size) and ViT samples processed,
    over the sizes each curve trains (``supervised.curve_sizes``: max_sizes, the real set's end)."""
    chunk = p["n_per_class"] * IMAGENET_CLASSES
    images: dict[str, int] = {}
    samples, train_h = 0, 0.0
    for recipe, curves, ds in ((p["recipe"], specs, sizes), (p.get("large_recipe") or {}, large_specs, large_sizes)):
        rec = Recipe.from_dict(recipe)
        for s in curves:
            todo = curve_sizes(s.split("/")[0], ds, p.get("max_sizes"), IMAGENET_TRAIN)
            n = sum(rec.schedule(d)[0] * rec.batch_size for d in todo)
            samples += n
            train_h += hours(n, rec.arch)
            if s != "real" and todo:
                images[s] = max(images.get(s, 0), math.ceil(max(todo) / chunk) * chunk)
    per_family: dict[str, int] = {}
    for s, n in images.items():
        _images(per_family, s.split("/")[0], n)
    return {"images": per_family, "train_samples": samples, "train_hours": train_h}


def _generators(p: dict) -> tuple[dict[str, int], int, float]:
    """09: per generator, its swept sets at D_I (whole chunks, one per guidance scale), then its best scale's chunks
    beyond D_I to the largest size (counted once, whichever scale wins); a ViT-B/16 per scale at D_I and per size
    of the best curve (sizes equal to D_I are the sweep's model)."""
    from synscale.studies import generators as G

    chunk = p["n_per_class"] * IMAGENET_CLASSES
    d_i = p["d_i"] or chunk
    rec = Recipe.from_dict(p["recipe"])
    images, samples = {}, 0
    at = math.ceil(d_i / chunk) * chunk
    for g, scales in G.guidance_for(p["generators"], p["guidance"]).items():
        images[g] = len(scales) * at + max(0, math.ceil(max(p["sizes"]) / chunk) * chunk - at)
        trained = [d_i] * len(scales) + [d for d in p["sizes"] if d != d_i]
        samples += sum(rec.schedule(d)[0] * rec.batch_size for d in trained) * len(p["train_seeds"])
    return images, samples, hours(samples, rec.arch)


def paper_costs(profile: str = "paper") -> pd.DataFrame:
    """One row per notebook's ``profile`` (``paper`` or a variant of it), and a total: images per family, training
    samples, LLM captions, A100-hours of each at ``RATES``, disk for generated images."""
    rows = []
    _params = functools.partial(_load, profile=profile)
    p = _params("01_prompt_design")
    rows.append(("01_prompt_design", {"sd": len(p["prompt_configs"]) * len(p["cfg_scales"]) * p["n_per_class"] * 1000},
                 0, 0.0, 0, "image metrics (oracle, FID Inception, LPIPS) of each set"))
    p = _params("02_cfg_sweep")
    n = p["n_per_class"] * IMAGENET_CLASSES
    sweep = {f: len(v) * n for f, v in p["cfg_scales"].items()}
    sweep["sd"] += len(p["sd_prompt_configs"]) * len(p["sd_prompt_cfg_scales"]) * n  # Table A6, some sets shared
    rows.append(("02_cfg_sweep", sweep, 0, 0.0, 0, "three runs (one per family); SD sets partly shared with 01"))
    p = _params("03_synthetic_1p3m")
    c = _supervised(p, p["specs"], [p["n_per_class"] * IMAGENET_CLASSES])
    rows.append(("03_synthetic_1p3m", c["images"], c["train_samples"], c["train_hours"], 0,
                 "one ViT-B/16 per configuration at D_I (Tables A4-A6)"))
    p = _params("04_scaling")
    c = _supervised(p, p["specs"], p["sizes"], p["large_specs"], p["large_sizes"])
    rows.append(("04_scaling", c["images"], c["train_samples"], c["train_hours"], 0,
                 "ViT-B/16 per configuration and size; ViT-L to 8M (its own chunks: 03's D_I sets differ)"))
    p = _params("05_ood")
    c = _supervised(p, [s for s in p["specs"] if s != "real" and p["d_i"] not in p["sizes"]], [p["d_i"]])
    rows.append(("05_ood", {}, c["train_samples"], c["train_hours"], 0,
                 "04's models evaluated; one more ViT-B/16 per synthetic curve at D_I (probes; real's is 04's 1.28M)"))
    p = _params("06_clip_mixing")
    syn = max(p["scales"]) + (p["cfg_n"] * len(p["cfg_table"]) if p["cfg_captions"] else
                              sum(min(p["scales"]) for g in p["cfg_table"] if g != p["cfg"]))
    own = p["hparam_model"] not in ("", p["clip_model"])  # Table A10's own architecture: S and L at each scale
    a10 = [("real", n) for n in p["hparam_scales"] for _ in range(2 if own or n not in p["scales"] else 1)]
    a11 = ([("synthetic", p["cfg_n"]) for g in p["cfg_table"]] if p["cfg_captions"] else  # CC12M, every CFG
           [("synthetic", min(p["scales"])) for g in p["cfg_table"] if g != p["cfg"]])  # the pool, the other CFGs
    runs = [(m, n) for n in p["scales"] for m in p["modes"]] + a11 + a10
    n = sum(p["epochs"] * n for _, n in runs)
    rows.append(("06_clip_mixing", {"sd": syn}, n, hours(n, "clip"), 0,
                 f"{len(runs) - len(a10)} ViT-B/16 CLIPs (Table A11's {len(a11)} included) and Table A10's {len(a10)} "
                 f"{p['hparam_model'] or 'ViT-B/16'} (open_clip, {p['epochs']} epochs; all at ViT-B/16's rate)"))
    p = _params("07_retrieval_baseline")
    n_max = max(p["sizes"])
    pool = 341_000  # the retrieved arm: every size within Geng's LAION-2B pool, then the pool
    n = p["epochs"] * len(p["train_seeds"]) * (sum(p["sizes"]) + sum(k for k in p["sizes"] if k < pool) + pool)
    rows.append(("07_retrieval_baseline", {"sd": n_max}, n, hours(n, "clip"), n_max,
                 "LLaMA-2 writes one caption per synthetic image; a 2B-caption pool is scanned; finetuning runs"))
    p = _params("08_synthclip")
    captions = p["pool_concepts"] * p["passes"]
    lo = min(p["sizes"])
    ablations = 2 * lo if p["ablations"] else 0  # random sampling and C_rand at the smallest size
    mixes = [sum(m) for m in p["mixed_sizes"]] or [2 * lo]  # Table 7: real + synthetic pairs per mix
    clips = [*p["sizes"], *(p["real_sizes"] or p["sizes"]), *(mixes if p["mixed"] else []), ablations]
    n = sum(p["epochs"] * n for n in clips)
    images = sum(p["sizes"]) + ablations  # at most: the balanced sets of different sizes share most captions
    rows.append(("08_synthclip", {"sd": images}, n, hours(n, "clip"), captions,
                 "Mistral captions of the concept pool; SynthCLIP per size, real CLIPs, the mix, two ablations "
                 "(images: at most, the balanced sets overlap)"))
    p = _params("09_generators")
    rows.append(("09_generators", *_generators(p), 0,
                 f"{len(p['generators'])} generators: a guidance sweep at D_I (one ViT-B/16 per scale), then each "
                 "one's curve at its best scale (04's real curve reused)"))
    out = []
    for stem, images, samples, train_h, caps, what in rows:
        gen_h = sum(hours(n, f) for f, n in images.items())
        out.append({"notebook": stem, **{c: images.get(f, 0) for f, c in FAMILY_COLUMNS.items()},
                    "other images": sum(n for f, n in images.items() if f not in FAMILY_COLUMNS),
                    "generation A100-h": round(gen_h),
                    "training samples": samples, "training A100-h": round(train_h), "LLM captions": caps,
                    "LLM A100-h": round(hours(caps, "llm")), "A100-h": round(gen_h + train_h + hours(caps, "llm")),
                    "disk GB": round(sum(images.values()) * MB_PER_IMAGE / 1000), "what": what})
    df = pd.DataFrame(out)
    total = {c: int(df[c].sum()) if c != "notebook" and c != "what" else "" for c in df.columns}
    return pd.concat([df, pd.DataFrame([{**total, "notebook": "total", "what": "the whole study"}])],
                     ignore_index=True)


def rates_markdown() -> str:
    """The rates behind the hours, each with its source (README)."""
    return "\n".join(f"- {k}: {v:g} {src}" for k, (v, src) in RATES.items())


def markdown(df: pd.DataFrame) -> str:
    """The table as README markdown (numbers with thousands separators)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in r) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "synscale costs") -> int:
    import argparse

    ap = argparse.ArgumentParser(prog=prog, description="Print what each notebook's paper profile costs: images "
                                 "generated, training samples, LLM captions, A100-hours, disk.")
    ap.add_argument("--profile", default="paper", help="paper (default) or paper-lite, the budget profile")
    print(markdown(paper_costs(ap.parse_args(argv).profile)))
    print("\nA100 rates (replace the assumed ones with your measurements):\n" + rates_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

