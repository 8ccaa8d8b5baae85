"""Weights resolved in one place: paper roles, repo ids and aliases through the Hugging Face cache layout (HF_HOME,
refs/main, fp16-only variants), overrides by environment variable, local paths, and one-line errors with the fix."""
import hashlib
import json
import os
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import constants as hf_constants

from synscale.data import weights as W


def repo(hub, repo_id, files, rev="0" * 40, refs=True, blobs=False):
    """A repo in huggingface_hub's cache layout: refs/main -> snapshots/<rev>/<files> (no trailing newline); with
    ``blobs`` the files are relative links into ``blobs/<sha256>``, as huggingface_hub writes them."""
    d = hub / ("models--" + repo_id.replace("/", "--"))
    snap = d / "snapshots" / rev
    snap.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (snap / rel).parent.mkdir(parents=True, exist_ok=True)
        if blobs:
            blob = d / "blobs" / hashlib.sha256(text.encode()).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_text(text)
            (snap / rel).symlink_to(os.path.relpath(blob, (snap / rel).parent))
        else:
            (snap / rel).write_text(text)
    if refs:
        (d / "refs").mkdir(parents=True, exist_ok=True)
        (d / "refs" / "main").write_text(rev)
    return snap


def pipeline_files(variant=""):
    v = f".{variant}" if variant else ""
    index = {"_class_name": "IFPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5Tokenizer"],
             "scheduler": ["diffusers", "DDPMScheduler"], "watermarker": ["deepfloyd_if", "IFWatermarker"],
             "safety_checker": [None, None]}
    return {"model_index.json": json.dumps(index), "unet/config.json": "{}",
            f"unet/diffusion_pytorch_model{v}.safetensors": "w", "text_encoder/config.json": "{}",
            f"text_encoder/model{v}-00001-of-00002.safetensors": "w",
            f"text_encoder/model{v}-00002-of-00002.safetensors": "w",
            "text_encoder/model.safetensors.index" + (f".{variant}" if variant else "") + ".json": "{}",
            "watermarker/config.json": "{}", "watermarker/diffusion_pytorch_model.safetensors": "w",  # no fp16 one
            "scheduler/scheduler_config.json": "{}", "tokenizer/tokenizer.json": "{}"}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    for m in W.PAPER.values():
        monkeypatch.delenv(m.env, raising=False) if m.env != "TORCH_HOME" else None
    return tmp_path / "hf" / "hub"


def test_paper_roles_resolve_through_the_cache_with_aliases_and_fp16_only_variants(hub):
    snap = repo(hub, "DeepFloyd/IF-I-XL-v1.0", pipeline_files("fp16"))
    w = W.resolve("paper:if")
    assert (w.path, w.repo, w.variant) == (snap, "DeepFloyd/IF-I-XL-v1.0", "fp16")  # sharded fp16 text encoder too
    assert W.completeness(w, "diffusers") is None  # the watermarker's plain file is fine: it has no fp16 version
    alias = repo(hub, "runwayml/stable-diffusion-v1-5", {"model_index.json": "{}"})
    assert W.resolve("paper:sd").path == alias  # a cache holding the withdrawn id still works
    maintained = repo(hub, "stable-diffusion-v1-5/stable-diffusion-v1-5", {"model_index.json": "{}"})
    assert W.resolve("paper:sd").path == maintained  # the maintained copy first
    assert W.resolve("stable-diffusion-v1-5/stable-diffusion-v1-5").path == maintained
    plain = repo(hub, "org/plain-if", pipeline_files())
    assert W.resolve("org/plain-if", "if").variant is None and W.resolve("hf-hub:org/plain-if", "if").path == plain


def test_environment_variables_override_a_role_and_local_paths_work(hub, tmp_path, monkeypatch):
    local = tmp_path / "my-sd"
    local.mkdir()
    monkeypatch.setenv("SYNSCALE_SD", str(local))
    assert W.resolve("paper:sd").path == local
    snap = repo(hub, "me/finetuned-sd", {"model_index.json": "{}"})
    monkeypatch.setenv("SYNSCALE_SD", "me/finetuned-sd")
    assert W.resolve("paper:sd").path == snap
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "w.pth").write_text("x")
    assert W.resolve("~/w.pth").path == tmp_path / "w.pth"


def test_missing_or_broken_caches_are_one_line_with_the_fix(hub, tmp_path, monkeypatch):
    with pytest.raises(W.MissingModelError) as e:
        W.resolve("paper:muse")
    msg = str(e.value)
    assert "\n" not in msg and "amused/amused-256" in msg and "hf download amused/amused-256" in msg
    assert "SYNSCALE_MUSE" in msg and str(hub) in msg
    d = hub / "models--amused--amused-256"
    (d / "snapshots").mkdir(parents=True)
    with pytest.raises(W.MissingModelError, match="has no snapshot") as e:
        W.resolve("paper:muse")
    assert "\n" not in str(e.value)
    (d / "refs").mkdir()
    (d / "refs" / "main").write_text("1" * 40)
    with pytest.raises(W.MissingModelError, match=f"refs/main names snapshot {'1' * 40}, which is not in"):
        W.resolve("paper:muse")
    repo(hub, "amused/amused-256", {"model_index.json": "{}"}, rev="1" * 40, refs=False)
    (d / "refs" / "main").write_text("1" * 40 + "\n")  # huggingface_hub reads refs unstripped
    with pytest.raises(W.MissingModelError, match=r"ends in whitespace.*printf %s 1{40} >") as e:
        W.resolve("paper:muse")
    assert "\n" not in str(e.value)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(W.MissingModelError, match=r"alexnet-owt-7be5be79\.pth does not exist \(TORCH_HOME\)"):
        W.resolve("paper:lpips_alex")
    with pytest.raises(W.MissingModelError, match="unknown paper model 'paper:dalle'"):
        W.resolve("paper:dalle")


def test_problems_name_incomplete_repos(hub):
    files = pipeline_files("fp16")
    del files["unet/diffusion_pytorch_model.fp16.safetensors"]
    repo(hub, "DeepFloyd/IF-I-XL-v1.0", files)
    repo(hub, "timm/vit_base_patch16_224.augreg_in21k_ft_in1k", {"config.json": "{}"})
    out = W.problems([("if", "paper:if"), ("oracle", "paper:oracle"), ("sd", "mini"), ("muse", "paper:muse")])
    assert len(out) == 3
    assert "component unet/ has no weights" in out[0] and "no model.safetensors or pytorch_model.bin" in out[1]
    assert "amused/amused-256" in out[2]
    table = W.inventory()
    assert set(table.role) == set(W.PAPER) and not table.found.any()


def test_problems_name_weights_whose_blobs_are_missing(hub):
    files = pipeline_files()
    snap = repo(hub, "DeepFloyd/IF-I-XL-v1.0", files, blobs=True)
    (snap / "unet" / "diffusion_pytorch_model.safetensors").resolve().unlink()  # copied without that blob
    out = W.problems([("if", "paper:if")])
    assert len(out) == 1 and "component unet/ has no weights" in out[0] and "\n" not in out[0]


def test_a_revision_download_without_refs_main_resolves_to_its_snapshot(hub, monkeypatch):
    """``hf download org/name --revision <sha>`` writes blobs/ and snapshots/<sha>/ but no refs/ at all."""
    sha = "a" * 40
    snap = repo(hub, "org/pinned", pipeline_files("fp16"), rev=sha, refs=False, blobs=True)
    assert not (snap.parent.parent / "refs").exists()
    w = W.resolve("org/pinned", "if")
    assert (w.path, w.repo, w.variant) == (snap, "org/pinned", "fp16")
    assert w.path == Path(huggingface_hub.snapshot_download("org/pinned", revision=sha, cache_dir=hub,
                                                            local_files_only=True))
    assert W.resolve(f"org/pinned@{sha}").path == W.resolve(f"hf-hub:org/pinned@{sha}").path == snap
    monkeypatch.setenv("SYNSCALE_IF", "org/pinned")
    assert W.problems([("if", "paper:if")]) == []
    with pytest.raises(W.MissingModelError, match=f"revision {'b' * 40} is not cached .*snapshots: {sha}") as e:
        W.resolve(f"org/pinned@{'b' * 40}")
    assert "\n" not in str(e.value) and f"--revision {'b' * 40}" in str(e.value)
    with pytest.raises(W.MissingModelError, match="hf download org/absent --revision v1"):
        W.resolve("org/absent@v1")

    newer = repo(hub, "org/pinned", {"model_index.json": '{"v": 2}'}, rev="0" * 40, refs=False, blobs=True)
    old, new = 1_000_000_000, 2_000_000_000
    for s, t in ((snap, old), (newer, new)):
        for f in s.rglob("*"):
            if f.is_file():
                os.utime(f.resolve(), (t, t))
    with pytest.warns(UserWarning, match=f"most recently modified of 2 snapshots, {'0' * 40}"):
        assert W.resolve("org/pinned").path == newer
    assert W.resolve(f"org/pinned@{sha}").path == snap  # an explicit revision needs no guess


def test_a_corrupted_cache_without_refs_main_is_one_line_with_the_fix(hub):
    snap = repo(hub, "org/broken", {"config.json": "{}", "model.safetensors": "w"}, refs=False, blobs=True)
    (snap / "model.safetensors").resolve().unlink()
    with pytest.raises(W.MissingModelError, match=r"no usable snapshot .*Blob missing .*blobs/ and snapshots/") as e:
        W.resolve("org/broken")
    assert "\n" not in str(e.value)


def test_an_incomplete_snapshot_by_huggingface_hubs_tree_listing_is_one_line(hub):
    sha = "d" * 40
    snap = repo(hub, "org/partial", {"config.json": "{}"}, rev=sha)
    tree = {"format_version": 1, "files": {"config.json": {"size": 2, "blob_id": "1" * 40},
                                           "model.safetensors": {"size": 1, "blob_id": "2" * 40}}}
    (snap.parent.parent / "trees").mkdir()
    (snap.parent.parent / "trees" / f"{sha}.json").write_text(json.dumps(tree))
    with pytest.raises(W.MissingModelError, match=r"org/partial: .*incomplete.*model\.safetensors.*hf download") as e:
        W.resolve("org/partial")
    assert "\n" not in str(e.value)


def test_the_cache_follows_huggingface_hubs_variables_read_at_call_time(hub, tmp_path, monkeypatch):
    legacy = tmp_path / "legacy-hub"
    snap = repo(legacy, "org/legacy", {"config.json": "{}"})
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(legacy))
    assert W.hub_cache() == legacy and W.resolve("org/legacy").path == snap
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))  # the new variable wins over the legacy one
    assert W.hub_cache() == hub
    with pytest.raises(W.MissingModelError, match=f"the Hugging Face cache {hub} "):
        W.resolve("org/legacy")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", "~/legacy-hub")
    assert W.hub_cache() == legacy and W.resolve("org/legacy").path == snap
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", "~/hf")
    assert W.hub_cache() == tmp_path / "hf" / "hub"
    monkeypatch.delenv("HF_HOME")
    assert W.hub_cache() == tmp_path / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert W.hub_cache() == tmp_path / "xdg" / "huggingface" / "hub"


def test_a_refs_main_cache_resolves_to_what_snapshot_download_returns(hub, monkeypatch):
    repo(hub, "org/old", {"config.json": "{}"}, rev="e" * 40, blobs=True)
    snap = repo(hub, "org/old", {"config.json": "{}", "model.safetensors": "w"}, rev="f" * 40, blobs=True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(hub))  # as if huggingface_hub were imported now
    expected = Path(huggingface_hub.snapshot_download("org/old", local_files_only=True))
    assert W.resolve("org/old").path == expected == snap  # refs/main's snapshot, not the other one
