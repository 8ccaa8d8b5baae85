"""Image generation with diffusers pipelines, one seed per sample.

``generate_images`` is the in-memory core (uint8 greyscale/RGB arrays); every sample ``i`` is drawn with its own
``torch.Generator`` seeded by ``seeds[i]``, so an image does not depend on batch size, order or rank. Pipelines
that take one generator per image (SD, IF) are batched; ``AmusedPipeline`` takes a single generator, so it runs
one sample per call to keep that guarantee.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

ONE_GENERATOR_ONLY = ("AmusedPipeline",)


def _call(pipe, prompts: list[str], gens: list[torch.Generator], guidance_scale: float, steps: int) -> np.ndarray:
    kwargs: dict[str, Any] = dict(prompt=prompts, guidance_scale=guidance_scale, num_inference_steps=steps,
                                  generator=gens if len(gens) > 1 else gens[0], output_type="np")
    name = type(pipe).__name__
    if name == "IFPipeline":
        kwargs["clean_caption"] = False
    if name == "StableDiffusionPipeline":
        size = pipe.unet.config.sample_size * pipe.vae_scale_factor
        kwargs.update(height=size, width=size)
    out = pipe(**kwargs).images
    return np.asarray(out if not torch.is_tensor(out) else out.cpu().numpy())


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float [N, H, W, C] in [0, 1] → uint8 [N, H, W] (C = 1) or [N, H, W, 3]."""
    x = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    return x[..., 0] if x.shape[-1] == 1 else x


@torch.no_grad()
def generate_images(pipe, prompts: list[str], seeds: list[int], guidance_scale: float, steps: int,
                    batch_size: int = 64) -> tuple[np.ndarray, dict[str, float]]:
    """Images for ``prompts`` (one per prompt, sample i from ``seeds[i]``) and throughput stats."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds: give one seed per prompt")
    bs = 1 if type(pipe).__name__ in ONE_GENERATOR_ONLY else batch_size
    t0 = time.perf_counter()
    chunks = []
    for i in range(0, len(prompts), bs):
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds[i : i + bs]]
        chunks.append(to_uint8(_call(pipe, prompts[i : i + bs], gens, guidance_scale, steps)))
    dt = time.perf_counter() - t0
    return np.concatenate(chunks), {"images": len(prompts), "seconds": dt, "images_per_s": len(prompts) / dt}
