"""The mini world's Muse analog: a masked-token text-to-image model that loads through diffusers' ``AmusedPipeline``.

Parts (the same classes as the real ``amused/amused-256``, only tiny):

* ``VQModel`` — 1-channel 32×32 images in [0, 1] → an 8×8 grid of codebook ids (3 encoder blocks = 2
  downsamplings; ``lookup_from_codebook=True`` so the pipeline can decode ids directly). Trained by :func:`train_vq`
  with MSE reconstruction + the quantizer's codebook/commitment loss, plus dead-code restarts (unused codes are
  re-seeded from encoder outputs of the current batch), which tiny codebooks need to avoid collapse.
* ``UVit2DModel`` — predicts logits over the codebook for every token of the grid; its embedding has one more row
  than the codebook, the mask token (``mask_id = vocab_size - 1 = codebook_size``, also the scheduler's
  ``mask_token_id``).
* ``CLIPTextModelWithProjection`` from :func:`synscale.data.world.textenc.text_config` and its offline CLIP tokenizer.
  The pipeline conditions on the penultimate hidden states (cross-attention) and the projected pooled embedding
  (plus micro-conditioning ``[width, height, crop_top, crop_left, aesthetic_score]``); the text encoder is
  trained jointly with the transformer.
* ``AmusedScheduler`` (cosine masking schedule) for iterative parallel decoding.

:func:`train_transformer` follows diffusers' ``examples/amused/train_amused.py``: per example a mask ratio
``cos(pi/2 * u)``, ``u ~ U(0, 1)``, masked tokens replaced by the mask id, cross-entropy on the masked positions
only; captions are dropped to ``""`` with probability ``caption_dropout`` so classifier-free guidance (the
pipeline's default negative prompt is ``""``) works.

Both trainers checkpoint into ``ckpt_dir`` and resume from the latest checkpoint; every random draw (batch order,
caption dropout, masks, code restarts) is a function of ``(seed, step)`` only, so on CPU a resumed run ends with
exactly the weights of an uninterrupted one.

Generation: ``pipe(prompt, guidance_scale=..., num_inference_steps=..., generator=..., output_type="np")``;
height/width default to 32 (``sample_size * 4``) and the micro-conditioning defaults (crop (0, 0), aesthetic 6)
match what training uses. Images come back **1-channel**: ``output_type="np"`` → float array ``[B, 32, 32, 1]`` in
[0, 1]; ``"pil"`` → greyscale (mode ``"L"``) images.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synscale.runtime import integrity
from synscale.runtime.checkpoint import load_state, save_state
from synscale.runtime.progress import bar as tqdm

IMAGE_SIZE = 32
AESTHETIC_SCORE = 6  # AmusedPipeline's default micro-conditioning
_CKPT_KEEP = 2


# ----------------------------------------------------------------------------------------------------- configs
@dataclass
class VQConfig:
    """The tiny ``VQModel``: ``len(block_out_channels) - 1`` downsamplings (3 blocks: 32×32 → 8×8 tokens)."""

    block_out_channels: tuple[int, ...] = (8, 16, 32)  # (16, 32, 64) costs ~2.3x per step on CPU
    layers_per_block: int = 1
    latent_channels: int = 4  # = codebook vector dim (the pipeline's decode reshapes ids to latent_channels)
    num_vq_embeddings: int = 256
    norm_num_groups: int = 4
    mid_block_add_attention: bool = False


@dataclass
class TransformerConfig:
    """The tiny ``UVit2DModel`` (codebook size, vocab size and sample size are derived from the VQ config)."""

    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 512
    in_channels: int = 64  # token embedding width
    block_out_channels: int = 64  # conv/attention width of the down/up blocks around the transformer
    num_res_blocks: int = 1
    block_num_heads: int = 2
    downsample: bool = True  # as amused-256: the transformer layers run on a 4×4 grid (False: 8×8, ~1.5x slower)
    micro_cond_encode_dim: int = 16


@dataclass
class TextConfig:
    """The tiny CLIP text encoder (full 49,408-id vocabulary, 77 positions): see ``textenc.text_config``."""

    width: int = 32  # 64 doubles the (embedding-dominated) size: 3.3M vs 1.6M params
    layers: int = 2
    heads: int = 1
    projection_dim: int = 32


def _as(cls, cfg):
    if cfg is None:
        return cls()
    if isinstance(cfg, cls):
        return cfg
    if isinstance(cfg, Mapping):
        d = dict(cfg)
        if "block_out_channels" in d and isinstance(d["block_out_channels"], list):
            d["block_out_channels"] = tuple(d["block_out_channels"])
        return cls(**d)
    raise TypeError(f"expected {cls.__name__} or a mapping, got {type(cfg).__name__}")


# ----------------------------------------------------------------------------------------------------- build
def build(
    vq: VQConfig | Mapping[str, Any] | None = None,
    transformer: TransformerConfig | Mapping[str, Any] | None = None,
    text: TextConfig | Mapping[str, Any] | None = None,
    seed: int = 0,
    tokenizer_dir: str | Path | None = None,
):
    """A fresh, randomly initialised ``AmusedPipeline`` (fp32, CPU) built from the three configs.

    ``seed`` fixes the initial weights. ``tokenizer_dir`` is where the offline CLIP tokenizer files are written
    (a temporary directory if None; the tokenizer is fully loaded in memory, so the directory may be deleted).
    """
    from diffusers import AmusedPipeline, AmusedScheduler, UVit2DModel, VQModel
    from transformers import CLIPTextModelWithProjection

    from synscale.data.world import textenc

    vq, transformer, text = _as(VQConfig, vq), _as(TransformerConfig, transformer), _as(TextConfig, text)
    n_blocks = len(vq.block_out_channels)
    grid = IMAGE_SIZE // 2 ** (n_blocks - 1)
    codebook = vq.num_vq_embeddings
    mask_id = codebook  # vocab = codebook + mask token

    torch.manual_seed(seed)
    vqvae = VQModel(
        in_channels=1, out_channels=1,
        down_block_types=("DownEncoderBlock2D",) * n_blocks, up_block_types=("UpDecoderBlock2D",) * n_blocks,
        block_out_channels=tuple(vq.block_out_channels), layers_per_block=vq.layers_per_block,
        latent_channels=vq.latent_channels, num_vq_embeddings=codebook, norm_num_groups=vq.norm_num_groups,
        sample_size=IMAGE_SIZE, mid_block_add_attention=vq.mid_block_add_attention, lookup_from_codebook=True,
        force_upcast=True, scaling_factor=1.0,
    )
    t = transformer
    uvit = UVit2DModel(
        hidden_size=t.hidden_size, use_bias=False, hidden_dropout=0.0,
        cond_embed_dim=text.projection_dim, micro_cond_encode_dim=t.micro_cond_encode_dim,
        micro_cond_embed_dim=5 * t.micro_cond_encode_dim, encoder_hidden_size=text.width,
        vocab_size=codebook + 1, codebook_size=codebook, in_channels=t.in_channels,
        block_out_channels=t.block_out_channels, num_res_blocks=t.num_res_blocks, downsample=t.downsample,
        upsample=t.downsample, block_num_heads=t.block_num_heads, num_hidden_layers=t.num_hidden_layers,
        num_attention_heads=t.num_attention_heads, attention_dropout=0.0, intermediate_size=t.intermediate_size,
        sample_size=grid,
    )
    text_encoder = CLIPTextModelWithProjection(
        textenc.text_config(width=text.width, layers=text.layers, heads=text.heads, projection_dim=text.projection_dim)
    )
    if tokenizer_dir is None:
        with tempfile.TemporaryDirectory() as d:
            tokenizer = textenc.build_tokenizer(Path(d))
    else:
        tokenizer = textenc.build_tokenizer(Path(tokenizer_dir))
    scheduler = AmusedScheduler(mask_token_id=mask_id, masking_schedule="cosine")
    pipe = AmusedPipeline(vqvae=vqvae, tokenizer=tokenizer, text_encoder=text_encoder, transformer=uvit,
                          scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def param_counts(pipe) -> dict[str, int]:
    """Parameters per trainable part (``vqvae``, ``transformer``, ``text_encoder``) and ``total``."""
    out = {k: sum(p.numel() for p in getattr(pipe, k).parameters()) for k in ("vqvae", "transformer", "text_encoder")}
    out["total"] = sum(out.values())
    return out


# ----------------------------------------------------------------------------------------------------- save/load
def save(pipe, out_dir: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """``save_pretrained`` a copy of ``pipe`` with weights cast to ``dtype`` (fp16 halves the size); return the dir.

    ``pipe`` itself is not modified. The fast tokenizer's ``tokenizer.json`` (3.6 MB) is dropped: the tokenizer
    rebuilds from ``vocab.json`` + ``merges.txt``. Load with :func:`load`, which casts back to fp32.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from synscale.data.world import textenc

    p = copy.deepcopy(pipe)
    with _quiet():
        for name in ("vqvae", "transformer", "text_encoder"):
            getattr(p, name).to(dtype)
        p.save_pretrained(str(out), safe_serialization=True)
    # transformers 5 saves only the fast tokenizer.json; ship the (smaller) slow files instead
    textenc.write_tokenizer_files(out / "tokenizer")
    (out / "tokenizer" / "tokenizer.json").unlink(missing_ok=True)
    return out


def load(out_dir: str | Path, dtype: torch.dtype = torch.float32):
    """``AmusedPipeline.from_pretrained(out_dir)`` with every model cast to ``dtype`` (fp32 for CPU generation)."""
    from diffusers import AmusedPipeline

    with _quiet():
        pipe = AmusedPipeline.from_pretrained(str(out_dir), dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@contextlib.contextmanager
def _quiet():
    """Silence diffusers/transformers info+warnings (deprecation of AmusedPipeline, fp32-module casting notes)."""
    import diffusers
    import transformers

    dv, tv = diffusers.utils.logging.get_verbosity(), transformers.utils.logging.get_verbosity()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    bars = diffusers.utils.logging.is_progress_bar_enabled()
    diffusers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        diffusers.utils.logging.set_verbosity(dv)
        transformers.utils.logging.set_verbosity(tv)
        if bars:
            diffusers.utils.logging.enable_progress_bar()


def dir_size(path: str | Path) -> int:
    """Bytes of all files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# ----------------------------------------------------------------------------------------------------- helpers
def _gen(seed: int, step: int, stream: int) -> torch.Generator:
    """A generator that depends only on (seed, step, stream)."""
    h = hashlib.blake2b(f"{seed}/{step}/{stream}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(h, "little") & (2**63 - 1))


class _Order:
    """Epoch-wise shuffled indices: the batch of step ``s`` depends only on (seed, s)."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self._perms = n, seed, {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = torch.randperm(self.n, generator=_gen(self.seed, epoch, 0))
        return self._perms[epoch]

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        pos = step * batch_size + torch.arange(batch_size)
        epochs, within = pos // self.n, pos % self.n
        out = torch.empty(batch_size, dtype=torch.long)
        for e in epochs.unique().tolist():
            sel = epochs == e
            out[sel] = self._perm(e)[within[sel]]
        return out


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    prog = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, prog))))


def _images_to_tensor(images_uint8: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, 32, 32]`` (or ``[N, 1, 32, 32]``) → uint8 tensor ``[N, 1, 32, 32]`` (floats made per batch)."""
    x = torch.from_numpy(np.ascontiguousarray(images_uint8))
    if x.ndim == 3:
        x = x[:, None]
    if x.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE) or x.shape[1] != 1:
        raise ValueError(f"expected uint8 images [N, {IMAGE_SIZE}, {IMAGE_SIZE}], got {tuple(images_uint8.shape)}")
    return x


def _to_float(x_uint8: torch.Tensor) -> torch.Tensor:
    return x_uint8.float() / 255.0


def _latest_state(ckpt_dir: Path | None, prefix: str) -> dict | None:
    """The newest checkpoint of ``prefix`` that is intact (``checkpoint.load_state``: weights only, checked), or
    ``None``; a damaged one is moved aside and the one before it is used."""
    for ck in sorted(ckpt_dir.glob(f"{prefix}-*.pt"), reverse=True) if ckpt_dir is not None else []:
        state = load_state(ck)
        if state is not None:
            return state
    return None


def _save_ckpt(ckpt_dir: Path, prefix: str, step: int, state: dict) -> None:
    save_state(ckpt_dir / f"{prefix}-{step:08d}.pt", state)
    for old in sorted(ckpt_dir.glob(f"{prefix}-*.pt"))[:-_CKPT_KEEP]:
        old.unlink(missing_ok=True)
        integrity.sidecar(old).unlink(missing_ok=True)


def _progress(total: int, initial: int, desc: str, show: bool):
    return tqdm(total=total, initial=initial, desc=desc, mininterval=10, disable=not show)


# ----------------------------------------------------------------------------------------------------- VQ
def _autocast(enabled: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def vq_encode(vq, x: torch.Tensor, autocast: bool = False) -> tuple[torch.Tensor, ...]:
    """Encode + quantise float images ``[B, 1, 32, 32]``.

    Returns (pre-quantisation latents ``[B, D, h, w]``, straight-through quantised latents, codebook+commitment
    loss, code ids ``[B, h, w]``). With ``autocast`` the conv encoder runs in bf16; quantisation is always fp32.
    """
    with _autocast(autocast):
        h = vq.encode(x).latents
    h = h.float()
    zq, commit, (_, _, ids) = vq.quantize(h)
    return h, zq, commit, ids.reshape(h.shape[0], h.shape[2], h.shape[3])


def vq_decode_latents(vq, zq: torch.Tensor, autocast: bool = False) -> torch.Tensor:
    """Decode quantised latents ``[B, D, h, w]`` (what ``VQModel.decode`` does after quantisation)."""
    with _autocast(autocast):
        dec = vq.decoder(vq.post_quant_conv(zq), zq if vq.config.norm_type == "spatial" else None)
    return dec.float()


@torch.no_grad()
def encode_tokens(vq, images_uint8: np.ndarray, batch_size: int = 512, autocast: bool = False) -> np.ndarray:
    """Code ids ``int16 [N, h, w]`` of uint8 images ``[N, 32, 32]`` under a trained ``VQModel`` (``autocast``: bf16
    encoder; ids may then differ from fp32 ones for latents near a Voronoi boundary)."""
    x = _images_to_tensor(images_uint8)
    was_training = vq.training
    vq.eval()
    dtype = next(vq.parameters()).dtype
    out = [vq_encode(vq, _to_float(x[i : i + batch_size]).to(dtype), autocast)[3] for i in range(0, len(x), batch_size)]
    vq.train(was_training)
    return torch.cat(out).numpy().astype(np.int16)


@torch.no_grad()
def decode_tokens(vq, ids: np.ndarray | torch.Tensor) -> np.ndarray:
    """Images float ``[N, 32, 32]`` in [0, 1] from code ids ``[N, h, w]`` (as the pipeline decodes them)."""
    ids = torch.as_tensor(np.asarray(ids), dtype=torch.long)
    n, h, w = ids.shape
    dec = vq.decode(ids.reshape(-1), force_not_quantize=True, shape=(n, h, w, vq.config.latent_channels)).sample
    return dec.clip(0, 1)[:, 0].float().numpy()


def train_vq(
    vq,
    images_uint8: np.ndarray,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    ckpt_dir: str | Path | None = None,
    ckpt_every: int = 100,
    warmup: int = 50,
    restart_every: int = 25,
    autocast: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
) -> list[float]:
    """Train ``vq`` (a ``VQModel``) in place on uint8 images ``[N, 32, 32]``; return the per-step loss history.

    Loss = MSE(decoded, image in [0, 1]) + the quantizer's codebook + commitment loss (``VQModel.forward``'s
    ``commit_loss``). Adam with linear warmup and cosine decay to 10% of ``lr``, gradient clipping at 1. Every
    ``restart_every`` steps codes unused since the last restart are re-seeded from random encoder outputs of the
    current batch. ``autocast``: run the convolutions under bf16 autocast (faster on CPU). Checkpoints (weights,
    optimiser, code usage, loss history) go to ``ckpt_dir`` every
    ``ckpt_every`` steps and at the end; a call resumes from the latest one there. ``stop_after`` stops early at
    that step (as if interrupted) without changing the schedule, which still spans ``steps``.
    """
    x_all = _images_to_tensor(images_uint8)
    order = _Order(len(x_all), seed)
    opt = torch.optim.Adam(vq.parameters(), lr=lr)
    k = vq.config.num_vq_embeddings
    usage = torch.zeros(k)
    losses: list[float] = []
    start = 0
    ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
    if (state := _latest_state(ckpt_dir, "vq")) is not None:
        vq.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        usage, losses, start = state["usage"], state["losses"], state["step"]
    end = steps if stop_after is None else min(steps, stop_after)

    def checkpoint(step):
        if ckpt_dir is not None:
            _save_ckpt(ckpt_dir, "vq", step, {"model": vq.state_dict(), "opt": opt.state_dict(), "usage": usage,
                                              "losses": losses, "step": step})

    vq.train()
    bar = _progress(end, start, "vq", progress)
    for step in range(start, end):
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, steps, lr, warmup)
        x = _to_float(x_all[order.batch(step, batch_size)])
        h, zq, commit, ids = vq_encode(vq, x, autocast)
        rec = F.mse_loss(vq_decode_latents(vq, zq, autocast), x)
        loss = rec + commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vq.parameters(), 1.0)
        opt.step()
        usage += torch.bincount(ids.reshape(-1), minlength=k).float()
        if (step + 1) % restart_every == 0:
            dead = usage == 0
            if dead.any():
                with torch.no_grad():
                    z = h.detach().permute(0, 2, 3, 1).reshape(-1, h.shape[1])
                    # k-means++-like: re-seed where the codebook fits worst (not on the ubiquitous background)
                    d2 = torch.cdist(z, vq.quantize.embedding.weight.detach()).min(dim=1).values ** 2 + 1e-12
                    pick = torch.multinomial(d2, int(dead.sum()), replacement=True, generator=_gen(seed, step, 1))
                    vq.quantize.embedding.weight.data[dead] = z[pick]
            usage.zero_()
        losses.append(rec.item())
        bar.update(1)
        bar.set_postfix(rec=f"{losses[-1]:.4f}", refresh=False)
        if (step + 1) % ckpt_every == 0 or step + 1 == end:
            checkpoint(step + 1)
    bar.close()
    vq.eval()
    return losses


# ----------------------------------------------------------------------------------------------------- transformer
def _tokenize(tokenizer, captions: Sequence[str], chunk: int = 4096) -> torch.Tensor:
    """Token ids ``int32 [N, 77]`` (padded like the pipeline pads), tokenizing each distinct caption once."""
    uniq = sorted(set(captions))
    ids = []
    for i in range(0, len(uniq), chunk):
        ids.append(tokenizer(uniq[i : i + chunk], padding="max_length", truncation=True,
                             max_length=tokenizer.model_max_length, return_tensors="pt").input_ids.to(torch.int32))
    table = torch.cat(ids) if ids else torch.zeros(0, tokenizer.model_max_length, dtype=torch.int32)
    where = {c: i for i, c in enumerate(uniq)}
    return table[torch.tensor([where[c] for c in captions], dtype=torch.long)]


def _vq_fingerprint(vq) -> str:
    h = hashlib.sha1()
    for k, v in sorted(vq.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def text_condition(pipe, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(penultimate hidden states, projected pooled embedding) exactly as ``AmusedPipeline`` computes them."""
    out = pipe.text_encoder(input_ids, return_dict=True, output_hidden_states=True)
    return out.hidden_states[-2], out.text_embeds


def micro_conds(batch_size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The pipeline's default micro-conditioning for 32×32 images: ``[width, height, 0, 0, 6]`` per example."""
    return torch.tensor([IMAGE_SIZE, IMAGE_SIZE, 0, 0, AESTHETIC_SCORE], dtype=dtype).expand(batch_size, -1)


def train_transformer(
    pipe,
    images_uint8: np.ndarray,
    captions: Sequence[str],
    steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    ckpt_dir: str | Path | None = None,
    caption_dropout: float = 0.1,
    ckpt_every: int = 100,
    warmup: int = 50,
    weight_decay: float = 0.01,
    min_mask_rate: float = 0.0,
    train_text_encoder: bool = True,
    tokens: np.ndarray | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> list[float]:
    """Masked-token training of ``pipe.transformer`` (and ``pipe.text_encoder``) in place; return the loss history.

    ``images_uint8`` ``[N, 32, 32]`` are tokenised once with the (trained, frozen) ``pipe.vqvae`` — or pass
    ``tokens`` from :func:`encode_tokens`; with a ``ckpt_dir`` they are cached there as ``tokens.npy`` keyed by a
    fingerprint of the VQ weights. Per step: a batch from the (seed, step) order, captions replaced by ``""`` with
    probability ``caption_dropout``, per example a mask ratio ``max(cos(pi/2 u), min_mask_rate)`` (at least one
    token), masked ids → mask id, cross-entropy over the masked positions. AdamW with warmup + cosine decay to 10%
    of ``lr``, gradient clipping at 1. Checkpointing/resume/``stop_after`` as in :func:`train_vq`.
    """
    if len(captions) != len(images_uint8):
        raise ValueError("one caption per image")
    ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
    vq, model, te = pipe.vqvae, pipe.transformer, pipe.text_encoder
    if tokens is None:
        fp = _vq_fingerprint(vq)
        cache = ckpt_dir / "tokens.npz" if ckpt_dir is not None else None
        c = integrity.load(cache, lambda f: dict(np.load(f)), "cached VQ tokens") if cache is not None else None
        if c is not None and c["fingerprint"].item() == fp and len(c["tokens"]) == len(images_uint8):
            tokens = c["tokens"]
        else:
            tokens = encode_tokens(vq, images_uint8)
            if cache is not None:
                integrity.save(cache, lambda f: np.savez(f, tokens=tokens, fingerprint=np.array(fp)))
    tok = torch.from_numpy(np.asarray(tokens)).long()
    n, gh, gw = tok.shape
    seq = gh * gw
    text_ids = _tokenize(pipe.tokenizer, list(captions))
    empty_ids = _tokenize(pipe.tokenizer, [""])[0]
    mask_id = model.config.vocab_size - 1
    if mask_id != pipe.scheduler.config.mask_token_id:
        raise ValueError("transformer vocab_size - 1 must equal the scheduler's mask_token_id")
    codebook = model.config.codebook_size

    params = list(model.parameters()) + (list(te.parameters()) if train_text_encoder else [])
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.99))
    order = _Order(n, seed)
    losses: list[float] = []
    start = 0
    if (state := _latest_state(ckpt_dir, "transformer")) is not None:
        model.load_state_dict(state["model"])
        te.load_state_dict(state["text_encoder"])
        opt.load_state_dict(state["opt"])
        losses, start = state["losses"], state["step"]
    end = steps if stop_after is None else min(steps, stop_after)

    def checkpoint(step):
        if ckpt_dir is not None:
            _save_ckpt(ckpt_dir, "transformer", step, {"model": model.state_dict(), "text_encoder": te.state_dict(),
                                                       "opt": opt.state_dict(), "losses": losses, "step": step})

    vq.eval()
    model.train()
    te.train(train_text_encoder)
    te.requires_grad_(train_text_encoder)
    mc = micro_conds(batch_size)
    bar = _progress(end, start, "muse", progress)
    for step in range(start, end):
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, steps, lr, warmup)
        idx = order.batch(step, batch_size)
        g_drop, g_mask = _gen(seed, step, 2), _gen(seed, step, 3)
        ids = text_ids[idx].long()
        drop = torch.rand(batch_size, generator=g_drop) < caption_dropout
        ids[drop] = empty_ids.long()
        x0 = tok[idx].reshape(batch_size, seq)
        u = torch.rand(batch_size, generator=g_mask)
        n_mask = (seq * torch.cos(u * math.pi / 2).clamp(min=min_mask_rate)).round().clamp(min=1)
        mask = torch.rand(batch_size, seq, generator=g_mask).argsort(dim=-1) < n_mask[:, None]
        inp = torch.where(mask, mask_id, x0).reshape(batch_size, gh, gw)
        labels = torch.where(mask, x0, -100)

        with torch.set_grad_enabled(train_text_encoder):
            ehs, pooled = text_condition(pipe, ids)
        logits = model(inp, encoder_hidden_states=ehs, pooled_text_emb=pooled, micro_conds=mc)
        logits = logits.reshape(batch_size, codebook, seq).permute(0, 2, 1).reshape(-1, codebook)
        loss = F.cross_entropy(logits, labels.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
        if (step + 1) % ckpt_every == 0 or step + 1 == end:
            checkpoint(step + 1)
    bar.close()
    model.eval()
    te.eval()
    return losses
