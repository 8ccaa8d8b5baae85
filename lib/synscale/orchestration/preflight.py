"""What a run needs before it starts: every model and data folder its params name, checked in one pass.

At paper scale a missing file found by a notebook costs the GPU hours before it; the runner calls
:func:`problems` for every run of the plan before any kernel starts (``--dry-run`` lists them), and each problem is
one line naming what is missing and how to provide it. What a notebook needs is read from its params — the
generator of every family its specs use, the oracle, FID/LPIPS networks, caption and Word2Sen models, the world's
splits and captions, shard pools, downstream task folders — so a profile cannot forget one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from synscale.data import weights as W
from synscale.data.shards import list_shards
from synscale.runtime.paths import expand_path

MINI = "mini"


def _families(stem: str, p: dict[str, Any]) -> list[str]:
    """The text-to-image families a run generates with."""
    if "generators" in p:  # 09: every generator it measures
        return sorted(p["generators"])
    if "specs" in p:
        specs = list(p.get("specs") or []) + list(p.get("large_specs") or [])
        return sorted({s.split("/")[0] for s in specs if s != "real"})
    if stem.startswith("07"):
        return ["sd"]
    return [p["family"]] if p.get("family") else []


def _prompt_configs(p: dict[str, Any]) -> set[str]:
    configs = set(p.get("prompt_configs") or []) | set(p.get("sd_prompt_configs") or [])
    configs |= {p["prompt_config"]} if p.get("prompt_config") else set()
    configs |= {"in_captions"} if "generators" in p else set()  # 09 sweeps IN-Captions sets
    configs |= {s.split("/")[1] for s in list(p.get("specs") or []) + list(p.get("large_specs") or []) if s != "real"}
    return configs


def model_needs(stem: str, p: dict[str, Any]) -> list[tuple[str, str]]:
    """``(role, weights name)`` of every model a run loads (``"mini"`` names are the shipped world's)."""
    fam = p.get("family_models") or {}
    default = p.get("t2i_model", p.get("model", MINI))
    needs = []
    for f in _families(stem, p):
        base, up = W.stages(fam.get(f, default))
        needs.append((f, base))
        if up is not None:  # a cascade: the family's super-resolution stage too ("paper:if+paper:if_stage2")
            needs.append((W.STAGE2_ROLES.get(f, f), up))
    if p.get("oracle_model", MINI) != MINI:
        needs.append(("oracle", p["oracle_model"]))
    if p.get("fid_net", "oracle") != "oracle":
        needs.append(("fid_inception", p["fid_net"]))
    if p.get("lpips_net", "oracle") == "alex":
        needs.append(("lpips_alex", "paper:lpips_alex"))
    if "word2sen" in _prompt_configs(p) and p.get("word2sen", "offline") != "offline":
        needs.append(("word2sen", p["word2sen"]))
    if stem.startswith("07") and p.get("clip_model", MINI) != MINI:
        needs.append(("clip", p["clip_model"]))
    if p.get("llm") not in (None, "", "offline"):
        needs.append(("mistral" if stem.startswith("08") else "llama2", p["llm"]))
    return needs


def _folder(label: str, path: str, *subs: str, fix: str = "") -> list[str]:
    root = Path(expand_path(path))
    if not root.exists():
        return [f"{label} {root} does not exist{fix}"]
    return [f"{label} {root / s} does not exist{fix}" for s in subs if not (root / s).exists()]


def _shards(label: str, spec: str) -> list[str]:
    try:
        list_shards(spec)
        return []
    except FileNotFoundError as e:
        return [f"{label}: {e}"]


def data_problems(stem: str, p: dict[str, Any]) -> list[str]:
    """One line per data folder, file or shard pool the run reads that is missing."""
    out: list[str] = []
    world = p.get("world", MINI)
    if world != MINI:
        w = Path(expand_path(world))
        if stem.startswith("07"):
            out += _folder("the downstream task (FGVC-Aircraft folders)", world, "train", "val", "test",
                           fix="; make it with `synscale prepare aircraft --src <fgvc-aircraft-2013b> "
                               f"--out {w}`")
        else:
            splits = ["val"] + (["train"] if stem[:2] in ("03", "04", "05") else [])
            splits += list(p.get("ood_splits") or []) if stem.startswith("05") else []
            out += _folder("the ImageNet world's split", world, *splits,
                           fix=" (see synscale.data.world.folder for the layout)")
            if "in_captions" in _prompt_configs(p) and w.exists() and not (w / "captions" / "train.tsv").exists():
                out.append(f"{w / 'captions' / 'train.tsv'} (BLIP-2 captions of ImageNet-train, the IN-Captions "
                           f"prompts) does not exist: make it with `synscale caption --root "
                           f"{w} --model paper:blip2`")
    for key, label in (("laion_shards", "the LAION pool"), ("cfg_captions", "Table A11's captions (CC12M)"),
                       ("real_shards", "the real caption pool"),
                       ("cc3m_shards", "CC3M (SynthCLIP's 3M real baseline)"), ("pool", "the upstream pool")):
        if p.get(key) not in (None, "", MINI):
            out += _shards(label, p[key])
    for root_key, tasks_key, split in (("probe_root", "probe_tasks", "train"), ("zeroshot_root", "zeroshot_tasks",
                                                                                  "test")):
        if p.get(root_key):
            out += _folder(f"a downstream task ({root_key})", p[root_key],
                           *[f"{t}/{split}" for t in p.get(tasks_key) or []])
    if p.get("retrieval_root"):
        out += _folder("a retrieval set", p["retrieval_root"],
                       *[f"{s}/captions.tsv" for s in p.get("retrieval_sets") or []])
    source = p.get("concept_source", "wordnet")
    if source not in ("wordnet",) and not Path(expand_path(source)).is_file():
        out.append(f"the concept bank {expand_path(source)} (MetaCLIP's metadata.json) does not exist")
    return out


def problems(stem: str, params: dict[str, Any]) -> list[str]:
    """Everything a run of ``stem`` with ``params`` would find missing, one line each (empty: ready to run)."""
    return W.problems(model_needs(stem, params)) + data_problems(stem, params)
