"""Generation throughput: synscale's generation path vs the raw denoiser cost of the same steps, side by side.

    .venv/bin/python benchmarks/generation_throughput.py [--images 64] [--steps 15] [--cfg 4.0] [--repeats 3]
                                                        [--families sd if muse] [--threads N]
    .venv/bin/python benchmarks/generation_throughput.py --sd-shaped     # on a CUDA GPU only

For each mini pipeline (SD, IF, Muse analogs) it times ``synscale.methods.generate.generate_images`` (text encoding,
per-sample generators, CFG, scheduler, decode, uint8 conversion) and, on the same batch, the denoising loop alone:
``steps`` × (one forward of the UNet / transformer on the CFG-doubled batch with precomputed text embeddings, the
CFG combination, and the pipeline's scheduler class stepping the whole batch with **one** generator — stock
diffusers). It prints images/s and the ratio; pipeline overhead = ratio − 1 (goal ≤ 10%). The two are timed
alternately, ``--repeats`` times each, and medians compared, so load from other jobs hits both alike.

Why the scheduler step is in the reference (it was not until issue 4): sampling from the model output is work
every sampler does per step, however it is written. For Muse it is not small: ``AmusedScheduler.step`` draws its
tokens with ``torch.multinomial`` over the codebook for every position, i.e. batch × tokens × codebook
exponential draws, which PyTorch makes serially on CPU (~60 ms/step for 64 images, ~half the transformer's
time). Without it the reference was a loop no pipeline can run. What remains "overhead" is what synscale and the
pipeline add around that loop: text encoding, one generator per sample (the per-sample Amused draws), decoding,
post-processing and conversion.

``--sd-shaped`` builds a random-weight UNet with Stable Diffusion 1.5's config (fp16, 64×64×4 latents = 512 px,
a random CLIP-L-sized text encoder, SD's VAE shape) inside a ``StableDiffusionPipeline`` and reports images/s for
50 DDIM steps with CFG (goal ≥ 5 img/s on an H100).
"""
from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch


def _median_times(fns, repeats: int) -> list[float]:
    """Median wall time of each of ``fns``, run alternately (one of each per round)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def _median_time(fn, repeats: int) -> float:
    return _median_times([fn], repeats)[0]


@torch.no_grad()
def denoiser_only(pipe, family: str, n: int, steps: int, cfg: float = 4.0):
    """A closure running the bare denoising loop of ``n`` images: per step one denoiser forward on the CFG-doubled
    batch (embeddings precomputed), the CFG combination and a stock scheduler step with one batch generator."""
    cfg_on = cfg > 1.0  # the pipelines' own rule for classifier-free guidance
    m = 2 * n if cfg_on else n
    gen = torch.Generator().manual_seed(0)
    sched = type(pipe.scheduler).from_config(pipe.scheduler.config)  # stock class, even if synscale swapped it

    def guide(out: torch.Tensor, channels: int) -> torch.Tensor:
        if not cfg_on:
            return out[:, :channels]
        uncond, cond = (o[:, :channels] for o in out.chunk(2))  # IF's variance channels: dropped, as IFPipeline
        return uncond + cfg * (cond - uncond)

    if family == "muse":
        enc = pipe.text_encoder(pipe.tokenizer([""] * m, padding="max_length", truncation=True,
                                               max_length=pipe.tokenizer.model_max_length,
                                               return_tensors="pt").input_ids,
                                return_dict=True, output_hidden_states=True)
        pooled, hidden = enc.text_embeds, enc.hidden_states[-2]
        res = pipe.transformer.config.sample_size  # token grid side (= image side / vae_scale_factor)
        micro = torch.zeros(m, 5)
        codebook = pipe.transformer.config.codebook_size

        @torch.no_grad()
        def run():
            sched.set_timesteps(steps)
            tokens = torch.full((n, res, res), pipe.scheduler.config.mask_token_id, dtype=torch.long)
            for t in sched.timesteps:
                out = pipe.transformer(torch.cat([tokens] * 2) if cfg_on else tokens, micro_conds=micro,
                                       pooled_text_emb=pooled, encoder_hidden_states=hidden)
                tokens = sched.step(guide(out, codebook), t, tokens, generator=gen).prev_sample
        return run
    unet = pipe.unet
    ids = pipe.tokenizer([""] * m, padding="max_length", max_length=77, truncation=True,
                         return_tensors="pt").input_ids
    hidden = pipe.text_encoder(ids)[0]
    c = unet.config

    @torch.no_grad()
    def run():
        sched.set_timesteps(steps)
        x = torch.randn(n, c.in_channels, c.sample_size, c.sample_size, generator=gen)
        for t in sched.timesteps:
            inp = sched.scale_model_input(torch.cat([x] * 2) if cfg_on else x, t)
            out = unet(inp, t, encoder_hidden_states=hidden).sample
            x = sched.step(guide(out, c.in_channels), t, x, generator=gen).prev_sample
    return run


def mini(args) -> None:
    from synscale.methods import generate as G
    from synscale.methods import models

    print(f"{'family':8s} {'pipeline img/s':>15s} {'denoiser img/s':>15s} {'ratio':>7s} {'overhead':>9s}")
    for family in args.families:
        pipe = models.t2i(family)
        prompts = [f"a photo of a coat {i}" for i in range(args.images)]
        seeds = list(range(args.images))
        G.generate_images(pipe, prompts[:4], seeds[:4], args.cfg, 2, batch_size=args.images)  # warm-up
        den = denoiser_only(pipe, family, args.images, args.steps, args.cfg)
        den()  # warm-up at full batch for both (first calls at a new shape pay one-time allocation costs)
        G.generate_images(pipe, prompts, seeds, args.cfg, 1, batch_size=args.images)
        full = functools.partial(G.generate_images, pipe, prompts, seeds, args.cfg, args.steps, batch_size=args.images)
        t_pipe, t_den = _median_times([full, den], args.repeats)
        r = t_pipe / t_den
        print(f"{family:8s} {args.images / t_pipe:15.2f} {args.images / t_den:15.2f} {r:7.3f} {100 * (r - 1):8.1f}%")


def sd_shaped(args) -> None:
    if not torch.cuda.is_available():
        print("--sd-shaped needs a CUDA GPU; none here: skipped")
        return
    import tempfile

    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from synscale.data.world.textenc import build_tokenizer

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
    ap.add_argument("--families", nargs="+", default=["sd", "if", "muse"], choices=["sd", "if", "muse"])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, all cores)")
    ap.add_argument("--sd-shaped", action="store_true")
    ap.add_argument("--sd-batch", type=int, default=32)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sd_shaped(args) if args.sd_shaped else mini(args)


if __name__ == "__main__":
    main()
