"""The Muse analog (lib/synscale/world/muse.py): a tiny AmusedPipeline that builds, saves/loads, generates, trains
and resumes exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from synscale.data.world import muse

VQ = dict(block_out_channels=(8, 16, 16), latent_channels=4, num_vq_embeddings=32, norm_num_groups=4)
TR = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, in_channels=16,
          block_out_channels=16, block_num_heads=1, micro_cond_encode_dim=8)
TX = dict(width=16, layers=1, heads=1, projection_dim=16)


def tiny(seed: int = 0):
    return muse.build(vq=VQ, transformer=TR, text=TX, seed=seed)


def toy_set(n: int = 32):
    """Bars: horizontal ones are 'a photo of a belt', vertical ones 'a photo of a pole'."""
    rng = np.random.default_rng(0)
    x = np.zeros((n, 32, 32), np.uint8)
    caps = []
    for i in range(n):
        lo = 4 * rng.integers(1, 5)
        if i % 2:
            x[i, lo : lo + 8, 4:28] = 220
            caps.append("a photo of a belt")
        else:
            x[i, 4:28, lo : lo + 8] = 220
            caps.append("a photo of a pole")
    return x, caps


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is much faster than two on a shared 2-core box
    yield
    torch.set_num_threads(n)


def _gen(pipe, prompt, seed=1, **kw):
    kw = dict(guidance_scale=4.0, num_inference_steps=4, output_type="np") | kw
    return pipe(prompt, generator=torch.Generator().manual_seed(seed), **kw).images


def test_build_shapes_and_guidance():
    pipe = tiny()
    assert pipe.transformer.config.sample_size == 8 and pipe.vae_scale_factor == 4
    assert pipe.scheduler.config.mask_token_id == pipe.transformer.config.vocab_size - 1 == 32
    img = _gen(pipe, ["a photo of a belt", "a photo of a pole"])
    assert img.shape == (2, 32, 32, 1) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    img = _gen(pipe, "a photo of a belt", guidance_scale=1.0, height=32, width=32)
    assert img.shape == (1, 32, 32, 1)
    assert pipe("x", num_inference_steps=2, output_type="pil").images[0].mode == "L"
    counts = muse.param_counts(pipe)
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_save_load_roundtrip(tmp_path):
    pipe = tiny()
    out = muse.save(pipe, tmp_path / "p")
    assert not (out / "tokenizer" / "tokenizer.json").exists() and (out / "tokenizer" / "vocab.json").exists()
    loaded = muse.load(out)
    assert loaded.transformer.dtype == torch.float32 and loaded.text_encoder.dtype == torch.float32
    caps = ["a photo of a t-shirt, knitted!", ""]
    assert loaded.tokenizer(caps).input_ids == pipe.tokenizer(caps).input_ids
    for name in ("vqvae", "transformer", "text_encoder"):  # the artifact is fp16: compare with the rounded original
        getattr(pipe, name).to(torch.float16).to(torch.float32)
    np.testing.assert_array_equal(_gen(pipe, "a photo of a pole"), _gen(loaded, "a photo of a pole"))
    # fp32 save is exact
    pipe2 = tiny(seed=3)
    loaded2 = muse.load(muse.save(pipe2, tmp_path / "p32", dtype=torch.float32))
    np.testing.assert_array_equal(_gen(pipe2, "a photo of a belt"), _gen(loaded2, "a photo of a belt"))


def test_training_reduces_losses():
    x, caps = toy_set()
    pipe = tiny()
    lv = muse.train_vq(pipe.vqvae, x, steps=40, batch_size=16, lr=3e-3, warmup=5, restart_every=5, progress=False)
    assert len(lv) == 40 and np.mean(lv[-5:]) < 0.5 * np.mean(lv[:5])
    lt = muse.train_transformer(pipe, x, caps, steps=40, batch_size=16, lr=3e-3, warmup=5, progress=False)
    assert len(lt) == 40 and np.mean(lt[-5:]) < 0.9 * np.mean(lt[:5])
    assert _gen(pipe, "a photo of a belt").shape == (1, 32, 32, 1)


def test_resume_equals_uninterrupted(tmp_path):
    x, caps = toy_set()
    kw_vq = dict(steps=6, batch_size=12, lr=3e-3, warmup=2, restart_every=2, ckpt_every=2, progress=False)
    kw_tr = dict(steps=6, batch_size=12, lr=3e-3, warmup=2, ckpt_every=2, progress=False)

    ref = tiny()
    lv_ref = muse.train_vq(ref.vqvae, x, seed=5, ckpt_dir=tmp_path / "ref", **kw_vq)
    lt_ref = muse.train_transformer(ref, x, caps, seed=5, ckpt_dir=tmp_path / "ref", **kw_tr)

    a = tiny()
    muse.train_vq(a.vqvae, x, seed=5, ckpt_dir=tmp_path / "a", stop_after=3, **kw_vq)
    (tmp_path / "a" / "vq-00000003.pt").unlink()  # "crash" after the step-2 checkpoint: steps 3.. are redone
    b = tiny()  # a fresh process: same init, state comes from the checkpoint
    lv = muse.train_vq(b.vqvae, x, seed=5, ckpt_dir=tmp_path / "a", **kw_vq)
    muse.train_transformer(b, x, caps, seed=5, ckpt_dir=tmp_path / "a", stop_after=3, **kw_tr)
    c = tiny()
    muse.train_vq(c.vqvae, x, seed=5, ckpt_dir=tmp_path / "a", **kw_vq)  # already done: only loads
    lt = muse.train_transformer(c, x, caps, seed=5, ckpt_dir=tmp_path / "a", **kw_tr)

    assert lv == lv_ref and lt == lt_ref
    for name in ("vqvae", "transformer", "text_encoder"):
        sa, sb = getattr(ref, name).state_dict(), getattr(c, name).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
