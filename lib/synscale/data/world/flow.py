"""The mini world's fourth generator, of today's kind: a flow-matching transformer in the manner of SD3.

- **FM analog** (paper scale: SD3-medium, FLUX.1, the generators of "… for Now"): diffusers'
  ``SD3Transformer2DModel`` (MM-DiT: joint attention over text and image tokens, AdaLN-Zero on the timestep and the
  pooled text embedding) on the SD analog's latents (its ``AutoencoderKL``, 32×32 → 8×8×4), trained with rectified
  flow (target ``noise - x0``, σ drawn logit-normal as SD3 trains) and sampled by ``FlowMatchEulerDiscreteScheduler``.
  It loads with the stock ``StableDiffusion3Pipeline`` (``DiffusionPipeline.from_pretrained`` picks it from
  ``model_index.json``).

Where it differs from SD3, and why:

- **Text.** SD3 has two CLIP encoders (L and G) and T5-XXL. The mini has one small CLIP text encoder, the SD analog's
  (frozen, as SD3's are), in both CLIP slots (``CLIPTextModelWithProjection``: its pooled output gets a fixed random
  projection), and no T5: ``StableDiffusion3Pipeline`` then appends zeros where T5's tokens go, as SD3 samples
  without T5. Training encodes captions with the pipeline's own ``encode_prompt``, so training and sampling see the
  same context.
- **Length.** The tokenizers keep ``model_max_length`` = :data:`TEXT_TOKENS` (the mini captions have at most 13
  tokens) and T5's zero block is :data:`T5_TOKENS` long (``max_sequence_length``, a call argument of the generator's
  registry entry): 77 + 256 context tokens would cost 5× the compute for padding.
- **Scale.** 4 joint blocks of width 128 on 8×8 latents (patch 1), σ-shift 1 (SD3 shifts by 3 at 1024 px: shift
  grows with resolution).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from synscale.runtime import checkpoint as ckpt
from synscale.runtime.checkpoint import TrainConfig

TEXT_TOKENS = 32  # the FM tokenizers' model_max_length (CLIP's context is 77; mini captions have <= 13 tokens)
T5_TOKENS = 8     # StableDiffusion3Pipeline's max_sequence_length: the zero block standing in for T5
SCHEDULER = dict(num_train_timesteps=1000, shift=1.0)


def make_transformer(text_width: int, projection_dim: int, width: int = 128, layers: int = 4, heads: int = 4):
    from diffusers import SD3Transformer2DModel

    return SD3Transformer2DModel(
        sample_size=8, patch_size=1, in_channels=4, out_channels=4, num_layers=layers,
        attention_head_dim=width // heads, num_attention_heads=heads, joint_attention_dim=2 * text_width,
        caption_projection_dim=width, pooled_projection_dim=2 * projection_dim, pos_embed_max_size=8,
    )


def text_encoder_with_projection(text_encoder, seed: int):
    """The SD analog's ``CLIPTextModel`` as a ``CLIPTextModelWithProjection`` (SD3's CLIP slots take that class): the
    same transformer weights, and a projection of the pooled token drawn from ``seed``."""
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(seed)
    te = CLIPTextModelWithProjection(text_encoder.config)
    # transformers 5's CLIPTextModel has no text_model wrapper; the WithProjection class keeps it
    te.text_model.load_state_dict(getattr(text_encoder, "text_model", text_encoder).state_dict())
    return te.requires_grad_(False).eval()


def pipeline(vae, transformer, text_encoder, tokenizer):
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    return StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
                                    vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                    text_encoder_2=text_encoder, tokenizer_2=tokenizer, text_encoder_3=None,
                                    tokenizer_3=None)


@torch.no_grad()
def encode(pipe, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Context tokens and pooled embedding of ``captions``, exactly as the pipeline computes them when sampling."""
    ctx, _, pooled, _ = pipe.encode_prompt(captions, None, None, device=torch.device("cpu"),
                                           do_classifier_free_guidance=False, max_sequence_length=T5_TOKENS)
    return ctx, pooled


def train_flow(pipe, x0: torch.Tensor, captions: list[str], cfg: TrainConfig, ckpt_dir: Path,
               caption_dropout: float = 0.1, ema_decay: float | None = 0.999, progress: bool = True) -> dict[str, Any]:
    """Rectified-flow training of ``pipe.transformer`` on scaled latents ``x0``; resumable.

    x_σ = (1 − σ)·x0 + σ·ε, target ε − x0 (what ``FlowMatchEulerDiscreteScheduler`` integrates), σ = sigmoid(n),
    n ~ N(0, 1) (SD3's logit-normal timestep density), fed to the transformer as 1000·σ as the pipeline feeds its
    timesteps. 10% of captions are dropped to "" (the pipeline's negative prompt) so classifier-free guidance works.
    Batch indices, dropout, σ and noise depend only on (seed, step), so a resumed run equals an uninterrupted one.
    """
    from diffusers.training_utils import EMAModel

    tr = pipe.transformer
    params = list(tr.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = ckpt.warmup_cosine(opt, cfg)
    ema = EMAModel(params, decay=ema_decay, use_ema_warmup=True) if ema_decay else None
    n_train = pipe.scheduler.config.num_train_timesteps

    def step_fn(step: int) -> torch.Tensor:
        idx = ckpt.batch_indices(cfg.seed, step, len(x0), cfg.batch_size)
        g = ckpt.torch_generator(cfg.seed, step)
        drop = (torch.rand(len(idx), generator=g) < caption_dropout).tolist()
        ctx, pooled = encode(pipe, ["" if d else captions[i] for d, i in zip(drop, idx.tolist())])
        sigma = torch.sigmoid(torch.randn(len(idx), generator=g))
        x = x0[idx]
        noise = torch.randn(x.shape, generator=g)
        s = sigma.view(-1, 1, 1, 1)
        pred = tr(hidden_states=(1 - s) * x + s * noise, timestep=sigma * n_train, encoder_hidden_states=ctx,
                  pooled_projections=pooled).sample
        return F.mse_loss(pred, noise - x)

    recipe = {"train": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "ckpt_every"},
              "scheduler": SCHEDULER, "caption_dropout": caption_dropout, "ema_decay": ema_decay,
              "text_tokens": TEXT_TOKENS, "t5_tokens": T5_TOKENS}
    stats = ckpt.train_loop({"transformer": tr}, opt, sched, step_fn, cfg.steps, ckpt_dir, cfg.ckpt_every,
                            "transformer", progress, after_step=(lambda step: ema.step(params)) if ema else None,
                            extra={"ema": ema} if ema else None, config=recipe)
    if ema is not None:
        ema.copy_to(params)
    return {**stats, "ema_decay": ema_decay, "objective": "rectified flow (v = noise - x0), logit-normal sigma"}
