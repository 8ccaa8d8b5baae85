"""What a paper run costs is computed from the paper profiles, and the README shows exactly that."""
from pathlib import Path

from synscale.data import weights
from synscale.orchestration import costs

ROOT = Path(__file__).resolve().parents[1]


def test_costs_follow_the_paper_profiles():
    t = costs.paper_costs().set_index("notebook")
    assert t.loc["01_prompt_design", "SD images"] == 9 * 2 * 50 * 1000  # 9 prompt configs x CFG 2, 7.5 x 50/class
    assert t.loc["01_prompt_design", "generation A100-h"] == round(900_000 * 0.9 / 3600)  # SynthCLIP's 0.9 s/image
    # training hours: samples / the architecture's throughput; the total row adds up every notebook
    assert t.loc["03_synthetic_1p3m", "training A100-h"] == round(t.loc["03_synthetic_1p3m", "training samples"]
                                                                  / costs.RATES["vit_base_patch16_224"][0] / 3600)
    assert t.loc["total", "A100-h"] == t.drop("total")["A100-h"].sum() > 100_000
    assert t.loc["03_synthetic_1p3m", "SD images"] == 45 * 1281 * 1000  # Tables A4-A6's 45 SD configurations at D_I
    assert t.loc["03_synthetic_1p3m", "IF images"] == 3 * 1281 * 1000
    assert t.loc["04_scaling", "IF images"] == 8_000_000  # the Imagen curve to 4M, its ViT-L to 8M
    assert t.loc["06_clip_mixing", "SD images"] == 371_000_000 + 4 * 8_800_000  # the pool + Table A11: CC12M x 4 CFGs
    assert t.loc["08_synthclip", "LLM captions"] == 500_000 * 90
    # SynthCLIP sizes, real baselines, Table 7 (8.8M + 11.2M, and 3M + 3M), the ablations (2 x 3M)
    assert t.loc["08_synthclip", "training samples"] == 40 * (71_800_000 + 11_800_000 + 20_000_000 + 6_000_000
                                                              + 6_000_000)


def test_readme_shows_the_computed_costs_and_every_paper_model():
    readme = (ROOT / "README.md").read_text()
    t = costs.paper_costs()
    assert costs.markdown(t) in readme and costs.rates_markdown() in readme
    total = int(t.set_index("notebook").loc["total", "A100-h"])
    assert f"about {total:,} A100-hours in all" in " ".join(readme.split())
    for role, m in weights.PAPER.items():
        assert f"`paper:{role}`" in readme and all(f"`{r}`" in readme for r in m.repos)


def test_the_budget_profile_fits_a_lab_and_says_what_it_decides():
    """paper-lite: every notebook's, an extension of its paper profile, <= 1,000 A100-hours in all, and the ledger
    says for each notebook what it can decide and what it cannot."""
    from synscale.orchestration import ledger, params

    stems = [p.stem for p in sorted((ROOT / "params").glob("0*.yaml"))]
    for stem in stems:
        pf = params.load(ROOT / "params" / f"{stem}.yaml", ROOT / "notebooks" / f"{stem}.ipynb")
        assert pf.profiles["paper-lite"].get("extends") == "paper", stem
    lite = costs.paper_costs("paper-lite").set_index("notebook")["A100-h"]
    assert 0 < lite["total"] <= 1000 < costs.paper_costs().set_index("notebook").loc["total", "A100-h"]
    said = {r["notebook"] for r in ledger.ledger()["lite"] if r["decides"] and r["cannot"]}
    assert said == set(stems) - {"00_mini_world"}


def test_readme_states_the_budget_profiles_computed_hours():
    total = int(costs.paper_costs("paper-lite").set_index("notebook").loc["total", "A100-h"])
    assert f"about {total:,} A100-hours in all at the rates above" in " ".join((ROOT / "README.md").read_text().split())
