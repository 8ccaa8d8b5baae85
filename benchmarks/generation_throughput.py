"""Generation throughput: synscale's generation path vs the raw denoiser cost of the same steps, side by side.

    .venv/bin/python benchmarks/generation_throughput.py [--images 64] [--steps 15] [--cfg 4.0] [--repeats 3]
    .venv/bin/python benchmarks/generation_throughput.py --sd-shaped     # on a CUDA GPU only

For each mini pipeline (SD, IF, Muse analogs) it times ``synscale.generate.generate_images`` (per-sample
generators, CFG, decode, uint8 conversion) and, on the same batch, only the denoiser: ``steps`` forward passes of
the UNet / transformer on the CFG-doubled batch with precomputed text embeddings. It prints images/s and the
ratio; pipeline overhead = ratio − 1 (goal ≤ 10%).

``--sd-shaped`` builds a random-weight UNet with Stable Diffusion 1.5's config (fp16, 64×64×4 latents = 512 px,
a random CLIP-L-sized text encoder, SD's VAE shape) inside a ``StableDiffusionPipeline`` and reports images/s for
50 DDIM steps with CFG (goal ≥ 5 img/s on an H100).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@torch.no_grad()
def denoiser_only(pipe, family: str, n: int, steps: int):
    """A closure running ``steps`` denoiser forwards on a CFG-doubled batch of ``n`` (embeddings precomputed)."""
    if family == "muse":
        enc = pipe.text_encoder(pipe.tokenizer([""] * (2 * n), padding="max_length", truncation=True,
                                               max_length=pipe.tokenizer.model_max_length, return_tensors="pt").input_ids,
                                return_dict=True, output_hidden_states=True)
        pooled, hidden = enc.text_embeds, enc.hidden_states[-2]
        res = pipe.transformer.config.sample_size  # token grid side (= image side / vae_scale_factor)
        tokens = torch.full((2 * n, res, res), pipe.scheduler.config.mask_token_id, dtype=torch.long)
        micro = torch.zeros(2 * n, 5)

        @torch.no_grad()
        def run():
            for _ in range(steps):
                pipe.transformer(tokens, micro_conds=micro, pooled_text_emb=pooled,
                                 encoder_hidden_states=hidden)
        return run
    unet = pipe.unet
    ids = pipe.tokenizer([""] * (2 * n), padding="max_length", max_length=77, truncation=True,
                         return_tensors="pt").input_ids
    hidden = pipe.text_encoder(ids)[0]
    c = unet.config
    x = torch.randn(2 * n, c.in_channels, c.sample_size, c.sample_size)

    @torch.no_grad()
    def run():
        for t in range(steps):
            unet(x, torch.full((2 * n,), 999 - t), encoder_hidden_states=hidden)
    return run


def mini(args) -> None:
    from synscale import generate as G
    from synscale import models

    print(f"{'family':8s} {'pipeline img/s':>15s} {'denoiser img/s':>15s} {'ratio':>7s} {'overhead':>9s}")
    for family in ("sd", "if", "muse"):
        pipe = models.t2i(family)
        prompts = [f"a photo of a coat {i}" for i in range(args.images)]
        seeds = list(range(args.images))
        G.generate_images(pipe, prompts[:4], seeds[:4], args.cfg, 2, batch_size=args.images)  # warm-up
        t_pipe = _median_time(lambda: G.generate_images(pipe, prompts, seeds, args.cfg, args.steps,
                                                        batch_size=args.images), args.repeats)
        t_den = _median_time(denoiser_only(pipe, family, args.images, args.steps), args.repeats)
        r = t_pipe / t_den
        print(f"{family:8s} {args.images / t_pipe:15.2f} {args.images / t_den:15.2f} {r:7.3f} {100 * (r - 1):8.1f}%")


def sd_shaped(args) -> None:
    if not torch.cuda.is_available():
        print("--sd-shaped needs a CUDA GPU; none here: skipped")
        return
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from synscale.world.textenc import build_tokenizer

    import tempfile

    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # SD 1.5's config (diffusers defaults)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4,
                        sample_size=512)
    te = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                      num_attention_heads=12, max_position_embeddings=77))
    with tempfile.TemporaryDirectory() as d:
        tok = build_tokenizer(d)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = pipe.to("cuda", torch.float16)
    pipe.set_progress_bar_config(disable=True)
    n = args.sd_batch
    gens = [torch.Generator("cuda").manual_seed(i) for i in range(n)]
    run = lambda: pipe(["a photo of a tench"] * n, num_inference_steps=50, guidance_scale=7.5, generator=gens,
                       output_type="np")
    run()
    torch.cuda.synchronize()
    t = _median_time(lambda: (run(), torch.cuda.synchronize()), args.repeats)
    print(f"SD-1.5-shaped random UNet, 512 px, fp16, 50 DDIM steps, CFG 7.5, batch {n}: {n / t:.2f} img/s "
          f"(goal >= 5 on an H100) on {torch.cuda.get_device_name()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--cfg", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sd-shaped", action="store_true")
    ap.add_argument("--sd-batch", type=int, default=32)
    args = ap.parse_args()
    torch.manual_seed(0)
    sd_shaped(args) if args.sd_shaped else mini(args)


if __name__ == "__main__":
    main()
