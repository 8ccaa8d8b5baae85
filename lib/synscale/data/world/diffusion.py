"""The two diffusion families of the mini world, built from diffusers parts and trained here.

- **SD analog** (latent diffusion, paper: Stable Diffusion v1.5): ``AutoencoderKL`` (1 channel, 32×32 → 8×8×4)
  + ``UNet2DConditionModel`` on latents + ``CLIPTextModel`` trained jointly with the UNet, loaded by the stock
  ``StableDiffusionPipeline``.
- **IF analog** (pixel diffusion, paper: Imagen; open stand-in at paper scale: DeepFloyd IF): a pixel-space
  ``UNet2DConditionModel`` on 32×32×1 images conditioned on a *frozen* text encoder (the SD analog's, as Imagen
  conditions on a frozen T5), loaded by the stock ``IFPipeline`` (which accepts a CLIP text encoder in place of T5;
  it pads prompts to 77 tokens). Only IF's first (base) stage exists here; no super-resolution stages.

SD samples with DDIM (the paper: DDIM, 50 steps, eta 0); IF with DDPM as DeepFloyd IF does (``IFPipeline`` needs a
scheduler with a variance type). Both are trained with Min-SNR-5 weighting, EMA weights shipped, and 10% caption
dropout (empty caption), so classifier-free guidance works.

SD predicts epsilon on SD's scaled-linear schedule. IF does not: pixel images are far from zero-mean (Fashion-MNIST's
background is black, the mean pixel is -0.58 in [-1, 1]), and the scaled-linear schedule's last step still keeps 6.8%
of the signal. The network learns to read the image's mean brightness from that leak, so sampling from zero-mean noise
gave washed-out images on grey backgrounds, which the oracle mostly called "bag". IF therefore uses the fix of
Lin et al. 2024 ("Common diffusion noise schedules and sample steps are flawed"): betas rescaled to zero terminal SNR,
v-prediction, and "trailing" timesteps (``IF_SCHEDULER``).
DeepFloyd IF itself predicts epsilon on a cosine schedule, which also ends near zero SNR. IF's text encoder sees the
attention mask during training, as ``IFPipeline`` gives it at inference; SD's does not, as ``StableDiffusionPipeline``
gives it none.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synscale.data.world.textenc import MAX_LENGTH, text_config
from synscale.runtime import checkpoint as ckpt
from synscale.runtime.checkpoint import TrainConfig

TRAIN_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
IF_SCHEDULER = dict(TRAIN_SCHEDULER, rescale_betas_zero_snr=True, prediction_type="v_prediction",
                    timestep_spacing="trailing")
TEXT_MASK = {"sd": False, "if": True}  # whether each family's pipeline gives its text encoder the attention mask


def to_unit(images_uint8: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W] → float [N, 1, H, W] in [-1, 1] (the diffusers convention)."""
    return torch.from_numpy(np.ascontiguousarray(images_uint8)).float().div(127.5).sub(1.0).unsqueeze(1)


def tokenize(tokenizer, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention masks, padded to the pipelines' 77 tokens."""
    t = tokenizer(captions, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt")
    return t.input_ids, t.attention_mask


# -- parts ------------------------------------------------------------------------------------------------
def make_vae(channels: tuple[int, ...] = (16, 32, 64)):
    from diffusers import AutoencoderKL

    n = len(channels)
    return AutoencoderKL(
        in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=channels, layers_per_block=1,
        latent_channels=4, norm_num_groups=8, sample_size=32,
    )


def make_latent_unet(text_width: int, channels: tuple[int, int] = (64, 128)):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=channels,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=text_width, attention_head_dim=8, norm_num_groups=32,
    )


def make_pixel_unet(text_width: int, channels: tuple[int, int, int] = (32, 64, 128)):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        # out_channels = 2: IFPipeline splits the output into (epsilon, variance) as DeepFloyd IF's UNet predicts
        # both; with a "fixed_small" variance schedule the second half is discarded, so only epsilon is trained.
        sample_size=32, in_channels=1, out_channels=2, layers_per_block=1, block_out_channels=channels,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=text_width, attention_head_dim=8, norm_num_groups=32,
    )


def make_text_encoder(width: int = 64, layers: int = 2):
    from transformers import CLIPTextModel

    return CLIPTextModel(text_config(width=width, layers=layers, heads=max(1, width // 32)))


def sampler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(**TRAIN_SCHEDULER, clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def sd_pipeline(vae, unet, text_encoder, tokenizer):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=sampler(), safety_checker=None, feature_extractor=None,
                                   image_encoder=None, requires_safety_checker=False)


def if_pipeline(unet, text_encoder, tokenizer):
    from diffusers import DDPMScheduler, IFPipeline

    # IFPipeline reads scheduler.config.variance_type, which DDIM lacks: DDPM (as DeepFloyd IF ships), fixed variance
    sched = DDPMScheduler(**IF_SCHEDULER, variance_type="fixed_small", clip_sample=True)
    return IFPipeline(tokenizer=tokenizer, text_encoder=text_encoder, unet=unet, scheduler=sched,
                      safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False)


# -- training ---------------------------------------------------------------------------------------------
def train_vae(vae, images_uint8: np.ndarray, cfg: TrainConfig, ckpt_dir: Path, kl_weight: float = 1.0e-6,
              progress: bool = True) -> dict[str, Any]:
    """Reconstruction (L1 + MSE) + a small KL, as latent-diffusion autoencoders are trained; resumable."""
    x_all = to_unit(images_uint8)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    sched = ckpt.warmup_cosine(opt, cfg)

    def step_fn(step: int) -> float:
        idx = ckpt.batch_indices(cfg.seed, step, len(x_all), cfg.batch_size)
        x = x_all[idx]
        post = vae.encode(x).latent_dist
        z = post.sample(generator=ckpt.torch_generator(cfg.seed, step))
        rec = vae.decode(z).sample
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + kl_weight * post.kl().mean()
        return loss

    return ckpt.train_loop({"vae": vae}, opt, sched, step_fn, cfg.steps, ckpt_dir, cfg.ckpt_every, "vae", progress)


@torch.no_grad()
def encode_latents(vae, images_uint8: np.ndarray, batch_size: int = 512) -> torch.Tensor:
    """Posterior means of all images (unscaled), computed once so the UNet trains on cached latents."""
    vae.eval()
    x = to_unit(images_uint8)
    return torch.cat([vae.encode(x[i : i + batch_size]).latent_dist.mean for i in range(0, len(x), batch_size)])


def train_denoiser(unet, text_encoder, tokenizer, x0: torch.Tensor, captions: list[str], cfg: TrainConfig,
                   ckpt_dir: Path, train_text: bool, caption_dropout: float = 0.1, progress: bool = True,
                   name: str = "unet", snr_gamma: float | None = 5.0, ema_decay: float | None = 0.999,
                   schedule: dict = TRAIN_SCHEDULER, text_mask: bool = False) -> dict[str, Any]:
    """DDPM training of a text-conditioned UNet on ``x0`` (latents or pixels).

    Batch indices, caption dropout, timesteps and noise depend only on (seed, step), so a resumed run equals an
    uninterrupted one. ``train_text`` trains the text encoder jointly (SD analog); otherwise it stays frozen.
    ``snr_gamma``: Min-SNR-γ loss weighting (Hang et al. 2023, as diffusers' training scripts' ``--snr_gamma``),
    which converges several times faster on short budgets; for v-prediction the weight is min(SNR + 1, γ) / (SNR + 1)
    (diffusers' min(SNR, γ) / (SNR + 1) would give zero weight to the zero-SNR step). ``schedule``: the
    ``DDPMScheduler`` config, whose ``prediction_type`` sets the target (epsilon or v). ``text_mask``: give the text
    encoder the attention mask (as ``IFPipeline`` does). ``ema_decay``: an ``EMAModel`` of the trained weights
    (with diffusers' warm-up) that is copied into the models at the end — the weights that are shipped.
    """
    from diffusers import DDPMScheduler
    from diffusers.training_utils import EMAModel, compute_snr

    noise_sched = DDPMScheduler(**schedule)
    v_pred = noise_sched.config.prediction_type == "v_prediction"
    ids, masks = tokenize(tokenizer, captions)
    empty, empty_mask = (a[0] for a in tokenize(tokenizer, [""]))
    acp = noise_sched.alphas_cumprod
    params = list(unet.parameters()) + (list(text_encoder.parameters()) if train_text else [])
    text_encoder.requires_grad_(train_text)
    # fused: the 49k-row token table
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    sched = ckpt.warmup_cosine(opt, cfg)
    ema = EMAModel(params, decay=ema_decay, use_ema_warmup=True) if ema_decay else None

    def step_fn(step: int) -> torch.Tensor:
        idx = ckpt.batch_indices(cfg.seed, step, len(x0), cfg.batch_size)
        g = ckpt.torch_generator(cfg.seed, step)
        drop = torch.rand(len(idx), generator=g) < caption_dropout
        tok = torch.where(drop[:, None], empty[None], ids[idx])
        mask = torch.where(drop[:, None], empty_mask[None], masks[idx]) if text_mask else None
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (len(idx),), generator=g)
        x = x0[idx]
        noise = torch.randn(x.shape, generator=g)
        a = acp[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * x + (1 - a).sqrt() * noise
        with torch.set_grad_enabled(train_text):
            cond = text_encoder(tok, attention_mask=mask)[0]
        pred = unet(noisy, t, encoder_hidden_states=cond).sample[:, : x.shape[1]]  # epsilon / v channels only
        target = noise_sched.get_velocity(x, noise, t) if v_pred else noise
        if snr_gamma is None:
            return F.mse_loss(pred, target)
        snr = compute_snr(noise_sched, t)
        weight = torch.clamp(snr + 1, max=snr_gamma) / (snr + 1) if v_pred else torch.clamp(snr, max=snr_gamma) / snr
        return (F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3)) * weight).mean()

    models = {"unet": unet, **({"text_encoder": text_encoder} if train_text else {})}
    recipe = {"train": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "ckpt_every"},
              "schedule": dict(schedule), "text_mask": text_mask, "train_text": train_text,
              "caption_dropout": caption_dropout, "snr_gamma": snr_gamma, "ema_decay": ema_decay}
    stats = ckpt.train_loop(models, opt, sched, step_fn, cfg.steps, ckpt_dir, cfg.ckpt_every, name, progress,
                            after_step=(lambda step: ema.step(params)) if ema else None,
                            extra={"ema": ema} if ema else None, config=recipe)
    if ema is not None:
        ema.copy_to(params)
    return {**stats, "snr_gamma": snr_gamma, "ema_decay": ema_decay,
            "prediction_type": noise_sched.config.prediction_type, "text_mask": text_mask}


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())
