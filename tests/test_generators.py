"""The generator registry (params/generators.yaml): entries, not code."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from synscale.data import generators
from synscale.data.weights import PAPER
from synscale.data.world import default_dir
from synscale.methods import models
from synscale.methods.generate import generate_images


def test_the_registry_holds_the_papers_families_and_todays_models():
    reg = generators.registry()
    assert set(generators.generators(mini=True)) == {"sd", "if", "muse", "fm"}
    assert {"sdxl", "sd3", "flux_schnell", "pixart_sigma"} <= set(generators.generators(mini=False))
    assert reg["if"].stage2 == "if_stage2" and reg["if_stage2"].is_stage and "if_stage2" not in generators.generators()
    for key in generators.generators():  # every generator the study can sweep has guidance scales and steps
        assert reg[key].guidance and reg[key].steps > 0, key
    for key, g in reg.items():  # every entry with repos is a paper model "paper:<key>" resolves
        assert (key in PAPER) == bool(g.repos), key


def test_a_new_generator_is_an_entry_and_its_weights(tmp_path, monkeypatch):
    """A lab adds its own model: an entry in its registry file and a folder of weights; no code changes."""
    doc = yaml.safe_load(generators.registry_file().read_text())
    doc["generators"]["lab_sd"] = {"what": "our SD fine-tune", "repos": ["lab/sd-finetune"],
                                   "sampler": "DDIMScheduler", "none": ["safety_checker", "feature_extractor"],
                                   "init": {"requires_safety_checker": False}, "steps": 4, "guidance": [2.0]}
    f = tmp_path / "generators.yaml"
    f.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("SYNSCALE_GENERATORS", str(f))
    assert "lab_sd" in generators.generators()
    pipe = models.t2i("lab_sd", str(default_dir() / "sd"))
    assert type(pipe).__name__ == "StableDiffusionPipeline" and type(pipe.scheduler).__name__ == "DDIMScheduler"
    imgs, _ = generate_images(pipe, ["a photo of a coat"], [0], guidance_scale=2.0, steps=2)
    assert imgs.shape == (1, 32, 32) and imgs.dtype == np.uint8
    assert models.fingerprint("lab_sd", str(default_dir() / "sd")) != models.fingerprint("sd", "mini")


@pytest.mark.parametrize("entry, says", [
    ({"repos": ["a/b"]}, "needs 'what'"),
    ({"what": "x"}, "neither 'repos' nor 'mini: true'"),
    ({"what": "x", "repos": ["a/b"], "guidanse": [1.0]}, "unknown field(s) ['guidanse']"),
    ({"what": "x", "repos": ["a/b"], "stage2": "nope"}, "stage2 'nope' is not an entry"),
    ({"what": "x", "repos": ["a/b"], "call": [1]}, "'call' must be a mapping"),
])
def test_a_bad_entry_is_one_line_naming_it(tmp_path, monkeypatch, entry, says):
    f = tmp_path / "generators.yaml"
    f.write_text(yaml.safe_dump({"generators": {"broken": entry}}))
    monkeypatch.setenv("SYNSCALE_GENERATORS", str(f))
    with pytest.raises(ValueError) as e:
        generators.registry()
    assert says in str(e.value) and "'broken'" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.notebook
def test_09_measures_a_generator_added_as_an_entry_with_no_code_change(tmp_path):
    """A lab's own model: an entry in its registry file, its weights in a folder (here the mini SD's), its key in
    09's generators: 09's smoke profile with it added sweeps it, fits its curve and ranks it beside SD and the flow
    model, and the findings page and the index have its claims and the leaderboard. (This is 09's smoke run: the
    suite's smoke study leaves 09 to this test.)"""
    import json
    import os
    import shutil
    import subprocess
    import sys

    import pandas as pd

    root = generators.registry_file().parents[1]
    doc = yaml.safe_load(generators.registry_file().read_text())
    doc["generators"]["lab_sd"] = {"what": "our SD fine-tune", "repos": ["lab/sd-finetune"], "env": "SYNSCALE_LAB_SD",
                                   "sampler": "DDIMScheduler", "none": ["safety_checker", "feature_extractor"],
                                   "init": {"requires_safety_checker": False}, "steps": 4, "guidance": [2.0]}
    (tmp_path / "generators.yaml").write_text(yaml.safe_dump(doc))
    params = tmp_path / "params"
    shutil.copytree(root / "params", params)
    p = yaml.safe_load((params / "09_generators.yaml").read_text())
    smoke = p["profiles"]["smoke"]
    smoke.update(generators=smoke["generators"] + ["lab_sd"], guidance={**smoke["guidance"], "lab_sd": [2.0]},
                 gen_steps={**smoke["gen_steps"], "lab_sd": 2}, family_models={"lab_sd": "paper:lab_sd"})
    (params / "09_generators.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    out = tmp_path / "outputs"
    env = {**os.environ, "SYNSCALE_GENERATORS": str(tmp_path / "generators.yaml"), "SYNSCALE_PARAMS": str(params),
           "SYNSCALE_LAB_SD": str(default_dir() / "sd"), "SYNSCALE_OUTPUTS": str(out)}
    res = subprocess.run([sys.executable, "-m", "synscale", "run", "09_generators", "--profile", "smoke"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    run = next((out / "09_generators" / "smoke").glob("run__*"))
    board = pd.read_csv(run / "tables" / "leaderboard.csv")
    assert set(board.generator) == {"sd", "fm", "lab_sd"} and board.k.notna().all()
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["status"] == "done" and "Traceback" not in (run / "report.html").read_text()
    assert "generator_k.lab_sd" in set(pd.read_csv(out / "findings.csv").key)
    for page in ("findings.html", "index.html"):  # the claims and the leaderboard on both pages
        text = (out / page).read_text()
        assert "generator_k.lab_sd" in text or "lab_sd scales better" in text, page
        assert "09_generators: the leaderboard" in text and "<td>lab_sd</td>" in text, page
