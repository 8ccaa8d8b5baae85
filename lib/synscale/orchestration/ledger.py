"""The fidelity ledger: each notebook's ``paper`` profile beside the papers.

Two halves, both generated from the params files and the published tables (``synscale.analysis.reference``):

- **settings** (``ledger.yaml``): a notebook's paper-profile setting, our value (read from the resolved profile, so
  the page cannot drift from the params), the paper's value, and where the paper states it (a table, a section, or
  "not stated: our choice").
- **grid** (:func:`grid`): every row of a published table a notebook reproduces (Fan Tables A4–A6 → 03, A7/A8 → 04,
  Table 1/A10/A11/A12 → 06, Geng's sizes → 07, SynthCLIP Tables 1/3/4/7 → 08), the run of our paper profile that
  makes it, or the declared gap (``ledger.yaml`` ``gaps``: why it does not run yet); runs the papers did not make are
  extensions.

``synscale ledger`` writes the page (``docs/fidelity.md``); tests hold the grid against the tables, so a profile that
loses a table row, or a gap that is no longer one, fails.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd
import yaml

from synscale.analysis.reference import PAPER_MODEL, table
from synscale.data.prompts import PAPER_NAMES
from synscale.orchestration import params as P
from synscale.orchestration.costs import IMAGENET_TRAIN, markdown, paper_costs
from synscale.runtime.paths import notebooks_dir, params_dir
from synscale.studies.supervised import curve_sizes

LEDGER = Path(__file__).with_name("ledger.yaml")
PAGE = "docs/fidelity.md"
FAMILY = {v: k for k, v in PAPER_MODEL.items()}
CONFIG = {v: k for k, v in PAPER_NAMES.items()}


@cache
def ledger() -> dict:
    return yaml.safe_load(LEDGER.read_text())


def paper_params(stem: str) -> list[dict]:
    """The resolved ``paper`` profile of a notebook: one params dict per run of its grid."""
    pf = P.load(params_dir() / f"{stem}.yaml", notebooks_dir() / f"{stem}.ipynb")
    return [r.params for r in pf.runs("paper")]


def ours_cfg(family: str, paper_cfg: float) -> float:
    """Fan et al.'s guidance scale as our generators take it: aMUSEd's scale is 1 + Muse's (Muse's 0.3 → 1.3, as 02
    maps it back); Stable Diffusion's and IF's are the paper's."""
    return round(paper_cfg + 1.0, 3) if family == "muse" else float(paper_cfg)


def spec_of(t2i_model: str, prompt_config: str, cfg) -> str:
    """A published configuration as a training-data spec (``sd/in_captions/2``)."""
    if t2i_model == "real":
        return "real"
    f = FAMILY[t2i_model]
    return f"{f}/{CONFIG[prompt_config]}/{ours_cfg(f, float(cfg)):g}"


def _spec(text: str) -> str:
    parts = text.split("/")
    return text if len(parts) != 3 else f"{parts[0]}/{parts[1]}/{float(parts[2]):g}"


def _m(n: float) -> str:
    return f"{n / 1e6:g}M"


# ---------------------------------------------------------------------------------------------------- the grids
def _grid_03() -> tuple[list[tuple[str, str]], set[str]]:
    p = paper_params("03_synthetic_1p3m")[0]
    rows = [("Fan Tables A4–A6", spec_of(r.t2i_model, r.prompt_config, r.cfg_scale))
            for r in table("fan_tableA4_A6_configs").itertuples()]
    return rows, {_spec(s) for s in p["specs"]}


def _grid_04() -> tuple[list[tuple[str, str]], set[str]]:
    p = paper_params("04_scaling")[0]
    chosen = {s.split("/")[0]: _spec(s) for s in p["specs"] if s != "real"}  # Imagen's and Muse's one curve each
    rows = []
    for r in table("fan_tableA7_A8_supervised_scaling").drop_duplicates(
            ["t2i_model", "prompt_config", "cfg_scale", "scale_m"]).itertuples():
        size = IMAGENET_TRAIN if r.t2i_model == "real" and r.scale_m == 1.3 else round(r.scale_m * 1e6)
        if r.t2i_model in ("Imagen", "Muse"):  # A8's block headers print CFG 2.0: App. C's optimum is used (ledger)
            spec = chosen.get(FAMILY[r.t2i_model], spec_of(r.t2i_model, r.prompt_config, r.cfg_scale))
        else:
            spec = spec_of(r.t2i_model, r.prompt_config, r.cfg_scale)
        rows.append((f"Fan Table {r.source_table}", f"ViT-B/16 {spec} @ {_m(size)}"))
    sizes = lambda s, ds: curve_sizes(s.split("/")[0], ds, p.get("max_sizes"), IMAGENET_TRAIN)  # noqa: E731
    ours = {f"ViT-B/16 {_spec(s)} @ {_m(d)}" for s in p["specs"] for d in sizes(s, p["sizes"])}
    ours |= {f"ViT-L/16 {_spec(s)} @ {_m(d)}" for s in p["large_specs"] for d in sizes(s, p["large_sizes"])}
    return rows, ours


def _grid_06() -> tuple[list[tuple[str, str]], set[str]]:
    p = paper_params("06_clip_mixing")[0]
    mode = {"syn": "synthetic", "real": "real", "syn+real": "synthetic+real"}
    rows = [(f"Fan {name}", f"{mode[r.data]} @ {r.scale_m:g}M")
            for name, t in (("Table 1", "fan_main_table1_clip_scaling"), ("Table A12", "fan_tableA12_clip_scaling"))
            for r in table(t).drop_duplicates(["scale_m", "data"]).itertuples()]
    rows += [("Fan Table A10", f"real @ {r.scale_m:g}M, hyper-parameters {r.hyper_param}")
             for r in table("fan_tableA10_clip_hparams").drop_duplicates(["scale_m", "hyper_param"]).itertuples()]
    rows += [("Fan Table A11", f"synthetic CFG {g:g}")
             for g in sorted(table("fan_tableA11_clip_cfg").cfg_scale.unique())]
    ours = {f"{m} @ {n / 1e6:g}M" for m in p["modes"] for n in p["scales"]}
    ours |= {f"real @ {n / 1e6:g}M, hyper-parameters {h}" for n in p["hparam_scales"] for h in ("S", "L")}
    ours |= {f"synthetic CFG {g:g}" for g in p["cfg_table"]}
    return rows, ours


def _grid_07() -> tuple[list[tuple[str, str]], set[str]]:
    p = paper_params("07_retrieval_baseline")[0]
    arm = {"synthetic (Stable Diffusion 1.5)": "synthetic", "retrieved (LAION-2B)": "retrieved"}
    ref = table("geng_text_results")
    rows = [("Geng (text)", f"{arm[r.source]} @ {int(r.n_images):,}")
            for r in ref[ref.source.isin(list(arm))].drop_duplicates(["source", "n_images"]).itertuples()]
    # the retrieved arm runs every size its pool can fill, then the whole pool: Geng's LAION-2B search kept 341k
    pool = int(ref[ref.metric == "n_targeted_images_found_by_retrieval"].value.iloc[0])
    ours = {f"synthetic @ {n:,}" for n in p["sizes"]}
    ours |= {f"retrieved @ {n:,}" for n in p["sizes"] if n < pool} | {f"retrieved @ {pool:,}"}
    return rows, ours


def _grid_08() -> tuple[list[tuple[str, str]], set[str]]:
    p = paper_params("08_synthclip")[0]
    rows = [("SynthCLIP Table 1", f"{r.network} {r.data}")
            for r in table("synthclip_table1").drop_duplicates(["network", "data"]).itertuples()]
    rows += [("SynthCLIP Table 3", f"{r.factor}: {r.variant}")
             for r in table("synthclip_table3_ablations").drop_duplicates(["factor", "variant"]).itertuples()]
    rows += [("SynthCLIP Table 4", f"concept bank {r.concept_bank.split(' ')[0]}")
             for r in table("synthclip_table4_concept_bank").drop_duplicates(["concept_bank"]).itertuples()]
    t7 = table("synthclip_table7_mixed").drop_duplicates(["network", "cc12m_samples_m", "synthci_samples_m"])
    rows += [("SynthCLIP Table 7", " + ".join(x for x in (f"CC12M {r.cc12m_samples_m:g}M" if pd.notna(r.cc12m_samples_m)
                                                          else "", f"SynthCI {r.synthci_samples_m:g}M"
                                                          if pd.notna(r.synthci_samples_m) else "") if x))
             for r in t7.itertuples()]
    sizes = [n / 1e6 for n in p["sizes"]]
    ours = {f"SynthCLIP SynthCI-{n:g}M" for n in sizes}
    if 3_000_000 in p["cc3m_sizes"] and p["cc3m_shards"]:  # CC3M itself, not CC12M's first 3M pairs
        ours.add("CLIP CC3M")
    if 8_800_000 in (p["real_sizes"] or p["sizes"]):  # all of CC12M
        ours.add("CLIP CC12M")
    ours |= {"data sampling: SynthCLIP", "caption LLM: Mistral 7B", "image backbone: ViT-B", "concept bank C"}
    if p["ablations"]:
        ours |= {"data sampling: w/ rand. sampling", "concept bank C_rand"}
    ours |= {f"CC12M {n / 1e6:g}M" for n in p["real_sizes"] if n == 8_800_000}
    ours |= {f"SynthCI {n:g}M" for n in sizes if n in (20, 30)}
    if p["mixed"]:
        ours |= {f"CC12M {r / 1e6:g}M + SynthCI {s / 1e6:g}M" for r, s in p["mixed_sizes"] or [[p["sizes"][0]] * 2]}
    return rows, ours


GRIDS = {"03_synthetic_1p3m": _grid_03, "04_scaling": _grid_04, "06_clip_mixing": _grid_06,
         "07_retrieval_baseline": _grid_07, "08_synthclip": _grid_08}


def grid() -> pd.DataFrame:
    """Every published row each notebook reproduces, with ``status``: ``run`` (the paper profile makes it), ``gap``
    (declared in ``ledger.yaml`` with why) or ``missing`` (neither: a test fails), and the paper profile's runs no
    table lists as ``extension``."""
    gaps = {(g["notebook"], g["row"]): g["why"] for g in ledger()["gaps"]}
    extensions = {(g["notebook"], g["row"]): g["why"] for g in ledger().get("extensions") or []}
    out = []
    for stem, f in GRIDS.items():
        rows, ours = f()
        seen = set()
        for source, row in dict.fromkeys(rows):
            seen.add(row)
            status = "run" if row in ours else ("gap" if (stem, row) in gaps else "missing")
            out.append({"notebook": stem, "source": source, "row": row, "status": status,
                        "why": gaps.get((stem, row), "")})
        out += [{"notebook": stem, "source": "", "row": r, "status": "extension",
                 "why": extensions.get((stem, r), "not in the papers' tables")} for r in sorted(ours - seen)]
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------------------------- the settings
def _get(params: dict, key: str):
    v = params
    for k in key.split("."):
        if not isinstance(v, dict) or k not in v:
            raise KeyError(key)
        v = v[k]
    return v


def _show(v) -> str:
    """A setting as the page shows it: long lists by their length and first items."""
    if isinstance(v, list) and len(v) > 8:
        return f"{len(v)} items: " + ", ".join(map(str, v[:4])) + ", …"
    return str(v)


def settings() -> pd.DataFrame:
    """Each ledger setting with our value read from the notebook's resolved paper profile (several runs: each run's
    value, when they differ)."""
    out = []
    for s in ledger()["settings"]:
        runs = paper_params(s["notebook"])
        values = list(dict.fromkeys(_show(_get(p, s["key"])) for p in runs))
        out.append({"notebook": s["notebook"], "setting": s["key"], "ours": " | ".join(values),
                    "paper": s["paper"], "where": s["where"], "note": s.get("note", "")})
    return pd.DataFrame(out)


def render() -> str:
    """The page ``docs/fidelity.md``."""
    g, s = grid(), settings()
    lite_hours = int(paper_costs("paper-lite").set_index("notebook").loc["total", "A100-h"])
    counts = g.groupby(["notebook", "status"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=["run", "gap", "missing", "extension"], fill_value=0).reset_index()
    parts = [
        "# Fidelity ledger: the `paper` profiles beside the papers",
        "",
        "Generated by `synscale ledger` from `params/*.yaml` (profile `paper`), "
        "`lib/synscale/orchestration/ledger.yaml` and the published tables (`lib/synscale/resources/reference/`); "
        "`tests/test_ledger.py` holds it to them. "
        "A `gap` is a published row our paper profile does not make yet, with why; an `extension` is a run the papers "
        "did not make.",
        "",
        "## Published rows per notebook",
        "",
        markdown(counts.astype({c: int for c in counts.columns if c != "notebook"})),
        "",
        "## Settings",
        "",
        markdown(s),
        "",
        "## The budget profile `paper-lite`",
        "",
        f"`./run_all.sh --profile paper-lite`: the papers' models and data at fewer sizes and configurations, about "
        f"{lite_hours:,} A100-hours in all (`synscale costs --profile paper-lite`). What it can decide of each "
        "notebook's claims, and what it cannot:",
        "",
        markdown(pd.DataFrame(ledger()["lite"])),
        "",
        "## Every published row",
        "",
        markdown(g),
        "",
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None, prog: str = "synscale ledger") -> int:
    import argparse

    ap = argparse.ArgumentParser(prog=prog, description="Write the fidelity ledger (docs/fidelity.md): each paper "
                                 "profile's settings and grid beside the papers' tables.")
    ap.add_argument("--out", default=PAGE, help=f"where to write the page (default {PAGE}); - prints it")
    a = ap.parse_args(argv)
    text = render()
    if a.out == "-":
        print(text)
    else:
        Path(a.out).write_text(text, encoding="utf-8")
        g = grid()
        print(f"{a.out}: " + ", ".join(f"{int((g.status == k).sum())} {k}" for k in ("run", "gap", "missing",
                                                                                      "extension")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
