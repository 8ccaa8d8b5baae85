"""The LLM captioner's engines (synscale.methods.llm): which one runs, and that caption pools of the two never
share a cache."""
import hashlib
import importlib.util
import json

import pytest

from synscale.methods import llm


def test_the_engine_is_vllm_only_when_installed_or_asked_for(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "vllm" else real(n, *a))
    monkeypatch.delenv(llm.ENV, raising=False)
    assert llm.engine_for() == "transformers" == llm.engine_for("transformers")
    with pytest.raises(ValueError, match="vLLM is not installed: pip install vllm"):
        llm.engine_for("vllm")
    monkeypatch.setenv(llm.ENV, "tgi")
    with pytest.raises(ValueError, match=r"LLM engine 'tgi': choose one of \('auto', 'vllm', 'transformers'\)"):
        llm.engine_for()
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "vllm" else real(n, *a))
    monkeypatch.setenv(llm.ENV, "auto")
    assert llm.engine_for() == "vllm" and llm.engine_for("transformers") == "transformers"


def test_each_engine_has_its_own_caption_cache_and_transformers_keeps_the_old_one(tmp_path, monkeypatch):
    model = tmp_path / "Mistral-7B-Instruct-v0.2"
    model.mkdir()
    (model / "config.json").write_text("{}")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "vllm" else real(n, *a))
    tf, vl = (llm.LLMCaptioner(model, device="cpu", engine=e) for e in ("transformers", "vllm"))
    old = hashlib.sha1(json.dumps(llm.LLM_SETTINGS, sort_keys=True).encode()).hexdigest()[:8]
    assert tf.key() == f"Mistral-7B-Instruct-v0.2-s0-{old}"  # pools captioned before engines existed still match
    assert vl.key() != tf.key() and vl.settings == {**llm.LLM_SETTINGS, **llm.VLLM_PENALTIES}
    assert tf._model is None and vl._model is None  # nothing loaded until the first caption
