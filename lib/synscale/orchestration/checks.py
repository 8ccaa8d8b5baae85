"""Each notebook's parameter checks, in one place: the runner calls :func:`problems` for every run of the plan before
any kernel starts (``--dry-run`` lists what it finds), and the notebook calls :func:`require` on its own namespace,
so a run opened in JupyterLab fails the same way. One line per problem, naming the parameter and what it may be.

What these check is the parameters alone (ranges, allowed names, how parameters fit together); what depends on
files on disk is :mod:`synscale.orchestration.preflight`'s, and what depends on computed data (a pool too small, a
balancing threshold below ``min_t``) stays where it is computed.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from synscale.analysis.reference import PAPER_MODEL
from synscale.data import generators
from synscale.data import prompts as P
from synscale.data.world import OOD_SPLITS
from synscale.data.world.downstream import TASKS
from synscale.data.world.text import dataset_templates
from synscale.methods import clip
from synscale.methods.generate import steps_for
from synscale.orchestration.build import COMPONENTS
from synscale.orchestration.params import ParamsError
from synscale.studies import generators as G
from synscale.studies.retrieval import MODES as MATCH_MODES
from synscale.studies.supervised import PAPER_SPEC, check_specs

Check = Callable[[Mapping[str, Any]], list[str]]
CHECKS: dict[str, Check] = {}  # notebook number ("06") -> its check


def _check(number: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[number] = fn
        return fn
    return register


def _raises(fn: Callable, *args: Any) -> list[str]:
    """What a library validator (spec parser, sampler-steps lookup, open_clip model lookup) says, as a problem."""
    try:
        fn(*args)
    except (ValueError, KeyError) as e:
        return [str(e).strip("'\"")]
    return []


def _templates(key: str, p: Mapping[str, Any]) -> list[str]:
    return [] if p[key] in (7, 80) else [f"{key} must be 7 (open_clip's simple set) or 80 (OpenAI's), got {p[key]}"]


def _trainer(p: Mapping[str, Any], data_key: str) -> list[str]:
    if p["trainer"] not in ("synscale", "open_clip"):
        return [f"trainer must be 'synscale' (in memory, mini world) or 'open_clip' (shards), got {p['trainer']!r}"]
    if p["trainer"] == "synscale" and (p[data_key] or p["clip_model"] != clip.MINI_NAME):
        return [f"trainer 'synscale' trains the mini CLIP on the mini world in memory; for {data_key} or "
                f"clip_model {p['clip_model']!r} set trainer: open_clip"]
    return _raises(clip.image_size, p["clip_model"])


@_check("00")
def _mini_world(p: Mapping[str, Any]) -> list[str]:
    out = [] if p["build_into"] in ("run", "shipped") else [f"build_into must be 'run' or 'shipped', got "
                                                             f"{p['build_into']!r}"]
    if set(p["components"]) - set(COMPONENTS):
        out.append(f"unknown components {sorted(set(p['components']) - set(COMPONENTS))}; known: {COMPONENTS}")
    fams = set(generators.generators(mini=True))  # the generators the mini world ships (the registry's mini: true)
    if set(p["cfg_low"]) != fams or set(p["cfg_high"]) != fams or set(p["gen_steps"]) != fams:
        out.append(f"cfg_low, cfg_high and gen_steps need one value for each mini generator: {', '.join(sorted(fams))}")
    return out + _templates("clip_templates", p)


@_check("01")
def _prompt_design(p: Mapping[str, Any]) -> list[str]:
    out = []
    if unknown := sorted(set(p["prompt_configs"]) - set(P.CONFIGS)):
        out.append(f"unknown prompt_configs {unknown}; known: {list(P.CONFIGS)}")
    if not p["cfg_scales"] or min(p["cfg_scales"]) < 0:
        out.append(f"cfg_scales must be a non-empty list of scales >= 0, got {p['cfg_scales']}")
    if p["n_per_class"] < 2:
        out.append(f"n_per_class must be >= 2 (diversity and LPIPS need pairs), got {p['n_per_class']}")
    return out + _raises(steps_for, p["gen_steps"], p["family"])


@_check("02")
def _cfg_sweep(p: Mapping[str, Any]) -> list[str]:
    fam = p["family"]
    if fam not in PAPER_MODEL:
        return [f"family must be one of {list(PAPER_MODEL)}, got {fam!r}"]
    out = [] if p["cfg_scales"].get(fam) else [f"cfg_scales has no list for family {fam!r}: add cfg_scales.{fam} "
                                                 "in the params file"]
    if bad := sorted({p["prompt_config"], *p["sd_prompt_configs"]} - set(P.CONFIGS)):
        out.append(f"unknown prompt configs {bad}; known: {list(P.CONFIGS)}")
    if p["n_per_class"] < 2:
        out.append(f"n_per_class must be >= 2, got {p['n_per_class']}")
    return out + _raises(steps_for, p["gen_steps"], fam)


def _specs(p: Mapping[str, Any], *keys: str) -> list[str]:
    out = [m for k in keys for m in _raises(check_specs, p[k], p["gen_steps"])]
    return out + ([] if "real" in p["specs"] else ["specs must include 'real': every synthetic configuration is "
                                                   "compared with it"])


@_check("03")
def _synthetic_1p3m(p: Mapping[str, Any]) -> list[str]:
    return _specs(p, "specs") + ([] if p["n_per_class"] >= 2 else [f"n_per_class must be >= 2, got "
                                                                   f"{p['n_per_class']}"])


@_check("04")
def _scaling(p: Mapping[str, Any]) -> list[str]:
    out = _specs(p, "specs", "large_specs")
    sizes, large = list(p["sizes"]), p["large_specs"]
    if len(sizes) < 3 or sorted(sizes) != sizes:
        out.append(f"sizes must be >= 3 increasing training-set sizes, got {sizes}")
    if set(large) - set(p["specs"]) or (large and not set(p["large_sizes"]) & set(sizes)):
        out.append("large_specs must be curves of specs and large_sizes must share a size with sizes, so the larger "
                   f"backbone is compared with the base one; got {large} at {p['large_sizes']} vs {p['specs']} at "
                   f"{sizes}")
    return out


@_check("05")
def _ood(p: Mapping[str, Any]) -> list[str]:
    out = _specs(p, "specs")
    bad = sorted(set(p["ood_splits"]) - set(OOD_SPLITS))
    bad += sorted(set(p["probe_tasks"]) - set(TASKS)) if not p["probe_root"] else []
    if bad:
        out.append(f"unknown OOD splits / probe tasks {bad}; known: {list(OOD_SPLITS)} / {list(TASKS)}")
    if len(p["sizes"]) < 3:
        out.append(f"sizes must hold >= 3 sizes for per-class fits, got {p['sizes']}")
    if not out and PAPER_SPEC not in {str(s) for s in check_specs(p["specs"])}:
        out.append(f"specs must include {PAPER_SPEC!r}: the paper's per-class and OOD analyses are on it")
    return out


@_check("06")
def _clip_mixing(p: Mapping[str, Any]) -> list[str]:
    out = []
    modes, scales = p["modes"], list(p["scales"])
    if sorted(set(modes) - set(clip.DATA_MODES)) or not modes:
        out.append(f"modes {sorted(set(modes) - set(clip.DATA_MODES)) or modes} not allowed; choose from "
                   f"{list(clip.DATA_MODES)}")
    if len(scales) < 2 or min(scales) < 8:
        out.append(f"scales must be >= 2 sizes of >= 8 captions, got {scales}")
    elif not p["laion_shards"] and max(scales) > 40000:
        out.append(f"scales above 40000 need laion_shards: the mini world's pool has 40000 captions, got {scales}")
    if not 0.0 < p["p_synthetic"] < 1.0:
        out.append(f"p_synthetic must be in (0, 1), got {p['p_synthetic']}")
    if scales and [n for n in p["hparam_scales"] if n > max(scales)]:
        out.append(f"hparam_scales {[n for n in p['hparam_scales'] if n > max(scales)]} exceed the largest scale "
                   f"{max(scales)}: the caption pool holds that many")
    if bool(p["cfg_captions"]) != (p["cfg_n"] > 0):
        out.append(f"cfg_captions and cfg_n go together (Table A11's own captions and how many), got "
                   f"{p['cfg_captions']!r} and {p['cfg_n']}")
    if p["cfg"] not in p["cfg_table"]:
        out.append(f"cfg {p['cfg']} must be one of cfg_table {p['cfg_table']} (its runs are shared)")
    if p["seed"] in p["noise_seeds"]:
        out.append(f"noise_seeds {p['noise_seeds']} must not contain the main seed {p['seed']}")
    if len(p["warmup_table"]) != 3:
        out.append(f"warmup_table needs 3 values (<= 1, 2, >= 4 units), got {p['warmup_table']}")
    if p["world"] != "mini" and not (p["laion_shards"] and p["zeroshot_root"]):
        out.append(f"world {p['world']!r} is a folder world: it has no captioned pool or downstream sets, so set "
                   "laion_shards and zeroshot_root too (or world: mini)")
    if not p["zeroshot_root"] and set(p["zeroshot_tasks"]) - set(TASKS):
        out.append(f"zeroshot_tasks {sorted(set(p['zeroshot_tasks']) - set(TASKS))} are not mini-world tasks "
                   f"{list(TASKS)}: set zeroshot_root to evaluate folder tasks")
    if p["dataset_templates"]:  # CLIP's own prompts for each set: every task must have them
        out += [m for t in p["zeroshot_tasks"] for m in _raises(dataset_templates, t)]
    if p["hparam_model"] and p["hparam_scales"]:
        if p["trainer"] != "open_clip":
            out.append(f"hparam_model {p['hparam_model']!r} needs trainer: open_clip (or hparam_model: '')")
        else:
            out += _raises(clip.image_size, p["hparam_model"])
    return out + _templates("templates", p) + _trainer(p, "laion_shards")


@_check("07")
def _retrieval_baseline(p: Mapping[str, Any]) -> list[str]:
    out = [] if p["match_mode"] in MATCH_MODES else [f"match_mode must be one of {MATCH_MODES}, got "
                                                      f"{p['match_mode']!r}"]
    taus, sizes, cap, sel = list(p["taus"]), list(p["sizes"]), p["cap_per_class"], p["tau_select_size"]
    if not taus or sorted(taus) != taus or not all(-1 < t < 1 for t in taus):
        out.append(f"taus must be a non-empty increasing list of cosine similarities in (-1, 1), got {taus}")
    if not sizes or min(sizes) < 1 or sorted(set(sizes)) != sizes:
        out.append(f"sizes must be increasing positive integers (images per arm), got {sizes}")
    if cap < 0:
        out.append(f"cap_per_class must be 0 (no cap) or a number of images per class, got {cap}")
    if sel not in sizes:
        out.append(f"tau_select_size ({sel}) must be one of sizes {sizes}")
    if min(p["lp_train"], p["n_select"], p["n_test"], p["grid_per_class"]) < 1 or p["workers"] < 0 \
            or not p["train_seeds"]:
        out.append("lp_train, n_select, n_test and grid_per_class must be >= 1, workers >= 0, and train_seeds must "
                   "name at least one seed")
    if p["family"] != "sd":
        out.append(f"the paper adapts with Stable Diffusion's images: family must be 'sd', got {p['family']!r}")
    names = (p["pool"], p["clip_arch"], p["clip_model"])
    if (set(names) != {"mini"}) if p["world"] == "mini" else ("mini" in names):
        out.append("world, pool, clip_arch and clip_model are all 'mini' (the embedded world) or all name "
                   f"paper-scale data and weights; got {p['world']!r}, {p['pool']!r}, {p['clip_arch']!r}, "
                   f"{p['clip_model']!r}")
    return out + _templates("clip_templates", p)


@_check("08")
def _synthclip(p: Mapping[str, Any]) -> list[str]:
    out = []
    sizes = list(p["sizes"])
    if len(sizes) < 1 or min(sizes) < 8:
        out.append(f"sizes must be >= 1 values >= 8, got {sizes}")
    elif max(sizes) > p["pool_concepts"] * p["passes"] // 1.5:
        out.append(f"the largest size {max(sizes)} needs a caption pool >= 1.5x larger: raise pool_concepts (now "
                   f"{p['pool_concepts']}) or passes (now {p['passes']}), or lower sizes")
    if not p["train_seeds"]:
        out.append("train_seeds must name at least one seed")
    real_sizes = list(p["real_sizes"] or sizes)
    if not set(p["cc3m_sizes"]) <= set(real_sizes):
        out.append(f"cc3m_sizes {p['cc3m_sizes']} must be among the real baselines' sizes {real_sizes}")
    if p["cc3m_sizes"] and not p["cc3m_shards"] and p["world"] != "mini":
        out.append("cc3m_sizes needs cc3m_shards (CC3M's img2dataset shards), or cc3m_sizes: []")
    for m in p["mixed_sizes"]:
        if not (isinstance(m, (list, tuple)) and len(m) == 2 and all(isinstance(v, int) and v >= 8 for v in m)):
            out.append(f"mixed_sizes entries are [real pairs, synthetic pairs] of >= 8 each, got {m!r}")
        elif m[0] > max(real_sizes) or m[1] > p["pool_concepts"] * p["passes"] // 1.5:
            out.append(f"mixed_sizes {m}: the real part must be <= the largest real size {max(real_sizes)} and the "
                       f"synthetic part <= the caption pool / 1.5 ({p['pool_concepts'] * p['passes'] // 1.5:.0f})")
    if p["retrieval_gallery"] < 0:
        out.append(f"retrieval_gallery must be >= 0 images (0: one gallery of all), got {p['retrieval_gallery']}")
    if p["world"] != "mini" and not (p["real_shards"] and p["probe_root"] and p["retrieval_root"]):
        out.append(f"world {p['world']!r} is a folder world: set real_shards, probe_root and retrieval_root too (it "
                   "has no captioned pool, downstream tasks or retrieval split), or world: mini")
    return out + _templates("templates", p) + _trainer(p, "real_shards")


@_check("09")
def _generators(p: Mapping[str, Any]) -> list[str]:
    out = []
    names = list(p["generators"])
    known = generators.generators()
    if unknown := [g for g in names if g not in known]:
        out.append(f"generators {unknown} are not in the registry ({generators.registry_file()}); known: {known}")
    if "sd" not in names:
        out.append("generators must include 'sd': SD 1.5 is the baseline every generator is compared with")
    if not out:
        for g, scales in G.guidance_for(names, p["guidance"]).items():
            if not scales:
                out.append(f"generator {g!r} has no guidance scales: give guidance: {{{g}: [...]}} or a registry "
                           "'guidance' list")
    sizes = list(p["sizes"])
    if len(sizes) < 3 or sorted(sizes) != sizes:
        out.append(f"sizes must be >= 3 increasing training-set sizes, got {sizes}")
    if not p["train_seeds"]:
        out.append("train_seeds must name at least one seed")
    return out


def problems(stem: str, params: Mapping[str, Any]) -> list[str]:
    """What is wrong with the parameters of a run of notebook ``stem`` (``"06_clip_mixing"`` or ``"06"``), one line
    each; empty when they are fine or the notebook has no check."""
    check = CHECKS.get(stem[:2])
    try:
        return check(params) if check else []
    except KeyError as e:  # a notebook whose parameters cell lost a name this check reads
        return [f"parameter {e.args[0]!r} is not in notebook {stem}'s parameters cell, "
                f"but synscale.orchestration.checks reads it: "
                "restore it there or update the check"]


def require(stem: str, namespace: Mapping[str, Any]) -> None:
    """Raise one :class:`~synscale.orchestration.params.ParamsError` listing every problem of a notebook's parameters
    (``namespace``: the notebook's ``globals()`` after its parameters cell), or return."""
    if found := problems(stem, namespace):
        raise ParamsError(f"notebook {stem} parameters: " + "; ".join(found))
