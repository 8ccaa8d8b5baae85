"""The upstream CLIP (synscale.methods.clip) and zero-shot evaluation (synscale.methods.evaluate): shapes, save/load,
the paper's zero-shot loss, template ensembling, training and bit-identical resume."""
import json
import math

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from synscale.methods import clip, evaluate
from synscale.runtime.checkpoint import batch_indices

pytestmark = pytest.mark.usefixtures("one_thread")


def fresh(seed=0):
    torch.manual_seed(seed)
    return clip.create()


def toy(n=64, seed=0):
    """Four kinds of images (one bright quadrant each) with matching captions."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.integers(0, 40, (n, 32, 32))
    for i, k in enumerate(y):
        r, c = divmod(int(k), 2)
        x[i, 16 * r:16 * r + 16, 16 * c:16 * c + 16] += 200
    return x.astype(np.uint8), [f"a photo of a {('bag', 'coat', 'dress', 'shirt')[k]}" for k in y]


def test_mini_config_creates_through_open_clip_and_encodes():
    clip.registered()
    assert clip.MINI_NAME in open_clip.list_models() and clip.REHEARSAL_NAME in open_clip.list_models()
    model, preprocess, tokenizer = fresh()
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32), dtype=np.uint8)
    t = clip.to_tensor(x, model)
    assert t.shape == (4, 3, 32, 32) and t.dtype == torch.float32
    assert torch.equal(t, torch.stack([preprocess(im) for im in x]))  # same as open_clip's PIL transform
    assert torch.equal(clip.to_tensor(np.repeat(x[..., None], 3, -1), model), t)
    with torch.no_grad():
        assert model.encode_image(t).shape == (4, clip.MINI_CONFIG["embed_dim"])
        tokens = tokenizer(["a dark pullover, knitted, for sale", "bag"])
        assert tokens.shape == (2, clip.MINI_CONFIG["text_cfg"]["context_length"])
        assert model.encode_text(tokens).shape == (2, clip.MINI_CONFIG["embed_dim"])


def _outputs(model, tokenizer):
    x = clip.to_tensor(np.arange(2 * 32 * 32, dtype=np.int64).reshape(2, 32, 32).astype(np.uint8), model)
    with torch.no_grad():
        return model.encode_image(x), model.encode_text(tokenizer(["a coat", "a tee"])), model.logit_scale.exp()


def test_save_then_create_pretrained_round_trip(tmp_path):
    model, _, tokenizer = fresh()
    ref = _outputs(model, tokenizer)

    clip.save(model, tmp_path / "fp32", half=False)
    loaded, _, tok = clip.create(pretrained=tmp_path / "fp32")
    assert all(torch.equal(a, b) for a, b in zip(ref, _outputs(loaded, tok)))

    weights = clip.save(model, tmp_path / "fp16")  # shipped format: fp16, loads into an fp32 model
    assert weights.name == "open_clip_model.safetensors"
    cfg = json.loads((weights.parent / "open_clip_config.json").read_text())
    assert cfg["model_cfg"] == clip.MINI_CONFIG
    half, _, _ = clip.create(pretrained=str(weights))
    again = clip.save(half, tmp_path / "again")
    a, b = load_file(again), load_file(weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # fp16 -> fp32 -> fp16 is lossless
    img, txt, tau = _outputs(half, tok)
    assert tau == ref[2]  # the temperature (zero-shot loss) is stored exactly
    assert torch.allclose(img, ref[0], atol=1e-2) and torch.allclose(txt, ref[1], atol=1e-2)
    local = open_clip.create_model(f"local-dir:{weights.parent}")  # open_clip's own folder loader
    assert torch.equal(local.visual.conv1.weight, half.visual.conv1.weight)


class _Stub(torch.nn.Module):
    """encode_image = identity, so features are given by hand."""

    def __init__(self, tau):
        super().__init__()
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(tau)))

    def encode_image(self, x):
        return x


def test_zero_shot_loss_is_the_papers_definition():
    z_img = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, -2.0]])  # normalized inside: [.6,.8], [1,0], [0,-1]
    z_txt = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).T  # [D, C], class c's feature in column c
    labels = np.array([1, 1, 0])
    tau = 5.0
    out = evaluate.zero_shot_eval(_Stub(tau), z_img, labels, z_txt)
    sims = [[0.6, 0.8], [1.0, 0.0], [0.0, -1.0]]
    manual = [-(tau * s[y] - math.log(sum(math.exp(tau * v) for v in s))) for s, y in zip(sims, labels)]
    assert out["loss"] == pytest.approx(sum(manual) / 3, rel=1e-6)
    assert out["top1"] == pytest.approx(2 / 3) and out["n"] == 3  # the second image is closer to class 0
    logits = evaluate.zero_shot_logits(_Stub(tau), z_img, z_txt, batch_size=2)
    assert torch.allclose(logits, tau * torch.tensor(sims))
    assert evaluate.zero_shot_loss(logits, labels) == pytest.approx(
        float(-F.log_softmax(logits, 1)[torch.arange(3), torch.as_tensor(labels)].mean()))


def test_template_ensembling_is_mean_of_normalized_then_renormalized():
    model, _, tokenizer = fresh()
    templates = ["a photo of a {}.", lambda c: f"itap of the {c}.", "{} for sale"]
    classes = ["coat", "ankle boot"]
    w = evaluate.zero_shot_classifier(model, tokenizer, classes, templates)
    assert w.shape == (clip.MINI_CONFIG["embed_dim"], 2)
    with torch.no_grad():
        for j, c in enumerate(classes):
            texts = [f"a photo of a {c}.", f"itap of the {c}.", f"{c} for sale"]
            e = model.encode_text(tokenizer(texts))
            m = (e / e.norm(dim=1, keepdim=True)).mean(0)
            assert torch.allclose(w[:, j], m / m.norm(), atol=1e-6)
    as_callables = [lambda c, t=t: t.format(c) if isinstance(t, str) else t(c) for t in templates]
    ref = open_clip.build_zero_shot_classifier(model, tokenizer, classes, as_callables)
    assert torch.allclose(w, ref, atol=1e-6)


def test_train_clip_lowers_the_loss():
    model, _, tokenizer = fresh()
    x, caps = toy()
    out = clip.train_clip(model, x, caps, tokenizer, steps=40, batch_size=16, lr=2e-4, weight_decay=0.1,
                          warmup=4, seed=0, ckpt_dir=None, log_every=5, progress=False)
    assert out["steps"] == 40 and out["images_per_s"] > 0 and not model.training
    assert out["history"][-1]["loss"] < 0.8 * out["history"][0]["loss"]  # ln 16 = 2.77 -> ~1.8 (floor ~ln 4)


def test_batches_depend_only_on_seed_and_step():
    a = [batch_indices(3, s, 10, 4, epochs=True) for s in range(5)]
    assert all(np.array_equal(x, batch_indices(3, s, 10, 4, epochs=True)) for s, x in enumerate(a))
    flat = np.concatenate(a)
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))  # epochs cover all
    assert not np.array_equal(batch_indices(4, 0, 10, 4, epochs=True), a[0])


def test_resume_after_a_crash_gives_identical_weights(tmp_path):
    x, caps = toy(48)
    kw = dict(steps=6, batch_size=16, lr=1e-3, weight_decay=0.1, warmup=2, seed=1, ckpt_every=3, progress=False)

    model, _, tok = fresh()
    full = clip.train_clip(model, x, caps, tok, ckpt_dir=tmp_path / "full", **kw)

    first, _, _ = fresh()
    part = clip.train_clip(first, x, caps, tok, ckpt_dir=tmp_path / "crash", stop_after=3, **kw)  # "killed" at 3
    assert part["steps"] == 3
    second, _, _ = fresh(seed=123)  # a new process: whatever the init, the checkpoint wins
    resumed = clip.train_clip(second, x, caps, tok, ckpt_dir=tmp_path / "crash", **kw)
    assert resumed["resumed_from"] == 3 and resumed["steps"] == 6
    ref = model.state_dict()
    assert all(torch.equal(ref[k], v) for k, v in second.state_dict().items())
    assert resumed["final_loss"] == full["final_loss"]

    done = clip.train_clip(second, x, caps, tok, ckpt_dir=tmp_path / "crash", **kw)  # finished: a no-op
    assert done["resumed_from"] == 6 and done["steps"] == 6
    with pytest.raises(ValueError, match="another config"):
        clip.train_clip(second, x, caps, tok, ckpt_dir=tmp_path / "crash", **{**kw, "lr": 2e-3})


def test_mixing_picks_synthetic_with_the_configured_ratio_reproducibly():
    idx = np.arange(4000)
    for p in (0.0, 0.25, 0.5, 1.0):
        pick = clip.pick_alternate(5, 7, idx, p)
        assert pick.mean() == pytest.approx(p, abs=0.03)
    a, b = clip.pick_alternate(5, 7, idx, 0.5), clip.pick_alternate(5, 8, idx, 0.5)
    assert np.array_equal(a, clip.pick_alternate(5, 7, idx, 0.5)) and not np.array_equal(a, b)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        clip.pick_alternate(0, 0, idx, 1.5)
    real, syn = np.zeros((3, 32, 32), np.uint8), np.ones((3, 32, 32), np.uint8)
    assert clip.mode_data("real", real, syn)[0] is real and clip.mode_data("synthetic", real, syn)[0] is syn
    x, alt, p = clip.mode_data("synthetic+real", real, syn, 0.5)
    assert x is real and alt is syn and p == 0.5
    with pytest.raises(ValueError, match="one synthetic image per caption"):
        clip.mode_data("synthetic", real, syn[:2])
    with pytest.raises(ValueError, match="data mode"):
        clip.mode_data("mixed", real, syn)


def test_mixed_training_uses_both_images_and_resumes_identically(tmp_path):
    x, caps = toy(48)
    syn = (255 - x).astype(np.uint8)  # a visibly different "synthetic" image per caption
    kw = dict(steps=6, batch_size=16, lr=1e-3, weight_decay=0.1, warmup=2, seed=1, ckpt_every=3, progress=False,
              alt_images=syn, p_alt=0.5)
    model, _, tok = fresh()
    full = clip.train_clip(model, x, caps, tok, ckpt_dir=tmp_path / "full", **kw)
    assert 0.3 < full["alt_fraction"] < 0.7
    first, _, _ = fresh()
    clip.train_clip(first, x, caps, tok, ckpt_dir=tmp_path / "crash", stop_after=3, **kw)
    second, _, _ = fresh(seed=9)
    clip.train_clip(second, x, caps, tok, ckpt_dir=tmp_path / "crash", **kw)
    ref = model.state_dict()
    assert all(torch.equal(ref[k], v) for k, v in second.state_dict().items())
    real_only, _, _ = fresh()
    clip.train_clip(real_only, x, caps, tok, ckpt_dir=None, **{**kw, "alt_images": None, "p_alt": 0.0})
    assert not torch.equal(real_only.visual.conv1.weight, model.visual.conv1.weight)  # the mix changed training
    with pytest.raises(ValueError, match="another config"):  # another mixing ratio is another run
        clip.train_clip(second, x, caps, tok, ckpt_dir=tmp_path / "crash", **{**kw, "p_alt": 0.25})


def test_hyper_parameter_sets_and_warmup_follow_table_a3():
    assert clip.hparam_set(99_999_999) == "S" and clip.hparam_set(100_000_000) == "L"
    s, l = clip.hparams_for(10_000_000), clip.hparams_for(371_000_000)
    assert (s["batch_size"], s["lr"], s["weight_decay"], s["eps"]) == (8192, 1e-3, 0.5, 1e-8)
    assert (l["batch_size"], l["lr"], l["weight_decay"], l["eps"]) == (32768, 5e-4, 0.2, 1e-6)
    assert clip.hparams_for(2000, threshold=4000, batch_scale=1 / 64) == {**s, "batch_size": 128}
    assert clip.hparams_for(10, force="L")["name"] == "L"
    assert [clip.warmup_for_scale(n) for n in (1_000_000, 2_000_000, 4_000_000, 371_000_000)] == [600, 1200, 2000, 2000]
    assert clip.warmup_for_scale(1000, unit=1000, table=(6, 12, 20)) == 6
    assert clip.warmup_for_scale(1000, unit=1000, table=(6, 12, 20), hparams="L") == 20
    assert clip.epochs_to_steps(2, 1000, 128) == 16


def test_per_dataset_templates_and_table_a2_metric(monkeypatch):
    """Each set gets its own templates when a mapping is given (CLIP's per-dataset prompts), and its ``score`` is
    Table A2's metric: mean per-class accuracy for Aircraft, Pets, Caltech-101 and Flowers, top-1 elsewhere."""
    from synscale.data.world.text import dataset_templates

    assert dataset_templates("aircraft") == ["a photo of a {}, a type of aircraft.", "a photo of the {}, a type of "
                                             "aircraft."]
    with pytest.raises(ValueError, match="known: food101"):
        dataset_templates("mnist-ish")
    assert evaluate.mean_per_class(np.array([1, 1, 1, 0]), np.array([0, 0, 0, 1])) == 0.5  # top-1 would be 0.75
    seen = {}

    def fake_classifier(model, tokenizer, classnames, templates):
        seen[tuple(classnames)] = list(templates)
        return None

    def fake_eval(model, images, labels, clf):
        hits = np.array([1, 1, 1, 0])
        return {"top1": 0.75, "loss": 1.0, "n": 4, "losses": np.ones(4), "hits": hits}

    monkeypatch.setattr(evaluate, "zero_shot_classifier", fake_classifier)
    monkeypatch.setattr(evaluate, "zero_shot_eval", fake_eval)
    labels = np.array([0, 0, 0, 1])
    sets = {"pets": (None, labels, ["cat", "dog"]), "cifar10": (None, labels, ["plane", "car"])}
    res = evaluate.zero_shot_benchmark(None, None, sets, {"pets": ["a {} pet"], "cifar10": ["a {}"]}).set_index(
        "dataset")
    assert seen == {("cat", "dog"): ["a {} pet"], ("plane", "car"): ["a {}"]}
    assert res.loc["pets", "score"] == 0.5 and res.loc["cifar10", "score"] == 0.75 == res.loc["pets", "top1"]
