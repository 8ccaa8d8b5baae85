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
