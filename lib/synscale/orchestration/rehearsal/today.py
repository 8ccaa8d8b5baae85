"""Stand-ins of today's generators (notebook 09's paper profile), under their real repo ids.

Each is the real diffusers pipeline class with its real component classes (``model_index.json`` as the pipeline's
``save_pretrained`` writes it: the same class names the real repos list), the real scheduler config values, the real
tokenizers' kinds (CLIP BPE, T5 Unigram) and the structural values the pipelines read (latent channels, VAE scaling
and shift factors, patch sizes, SDXL's text-time embedding, FLUX.1-schnell's missing guidance embedding, PixArt-Σ's
AdaLN-single). Shrunk: widths, depths, and the image side where the pipeline derives it from a config (SDXL, SD3:
64 px; PixArt-Σ: its 256 px bin). FLUX.1's pipeline fixes 128 latent pixels in code, so its VAE keeps one level
(128 px by default), and the rehearsal's registry asks it for :data:`SIDE` px (``rehearsal.cli.write_registry``).
Weights are random, seeded from the repo id. No file of these repos is at hand offline, so every config value not
shrunk is RECALLED from the model cards and diffusers' conversion scripts (:data:`SOURCES`), not copied.
"""
from __future__ import annotations

from pathlib import Path

from synscale.orchestration.rehearsal.models import _build_in_tmp, _clip_merges, _clip_vocab, _seed, _t5_tokenizer_json

SDXL = "stabilityai/stable-diffusion-xl-base-1.0"
SD3 = "stabilityai/stable-diffusion-3-medium-diffusers"
FLUX_SCHNELL = "black-forest-labs/FLUX.1-schnell"
PIXART_SIGMA = "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS"

SOURCES = {
    SDXL: "pipeline and component classes, EulerDiscreteScheduler config, VAE scaling 0.13025 and force_upcast, "
          "UNet text_time addition embedding RECALLED (model card, diffusers' SDXL conversion)",
    SD3: "classes, FlowMatchEulerDiscreteScheduler shift 3.0, VAE 16 channels with scaling 1.5305 / shift 0.0609, "
         "patch 2 RECALLED (model card, diffusers' SD3 conversion script)",
    FLUX_SCHNELL: "classes, FlowMatchEuler config (no dynamic shifting), VAE 16 channels with scaling 0.3611 / shift "
                  "0.1159, no guidance embedding RECALLED (model card, diffusers' Flux conversion script)",
    PIXART_SIGMA: "classes, DPMSolverMultistepScheduler, T5 text encoder, AdaLN-single transformer, VAE scaling "
                  "0.13025 RECALLED (model card, diffusers' PixArt-Σ conversion script)",
}

_T5 = {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_heads": 4, "num_layers": 2, "num_decoder_layers": 2,
       "vocab_size": 32128, "feed_forward_proj": "gated-gelu", "is_gated_act": True, "dense_act_fn": "gelu_new"}


def _clip_tokenizer(pad_token: str = "<|endoftext|>"):
    """The real CLIP BPE tokenizer (vocab 49,408), saved as transformers saves it."""
    import json
    import tempfile

    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(_clip_vocab(), ensure_ascii=False))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_clip_merges()) + "\n")
        tok = CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=77,
                            pad_token=pad_token)
    return tok


def _t5_tokenizer(max_length: int):
    """The T5 Unigram tokenizer of the rehearsal's other T5 stand-ins (``models._t5_tokenizer_json``)."""
    import tempfile

    from transformers import T5TokenizerFast

    with tempfile.TemporaryDirectory() as tmp:
        _t5_tokenizer_json(Path(tmp) / "tokenizer.json")
        return T5TokenizerFast(tokenizer_file=str(Path(tmp) / "tokenizer.json"), model_max_length=max_length,
                               extra_ids=100)


def _clip_text(cls_name: str, width: int, projection: int, tag: str):
    import transformers

    _seed(tag)
    cfg = transformers.CLIPTextConfig(vocab_size=49408, hidden_size=width, intermediate_size=4 * width,
                                      num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                                      projection_dim=projection, hidden_act="gelu", bos_token_id=49406,
                                      eos_token_id=49407, pad_token_id=1)
    return getattr(transformers, cls_name)(cfg).eval()


def _t5(tag: str):
    from transformers import T5Config, T5EncoderModel

    _seed(tag)
    return T5EncoderModel(T5Config(**_T5)).eval()


def _vae(levels: int, latent: int, scaling: float, shift: float | None, tag: str, **kw):
    from diffusers import AutoencoderKL

    _seed(tag)
    ch = [8, 8, 16, 16][:levels]
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * levels,
                         up_block_types=["UpDecoderBlock2D"] * levels, block_out_channels=ch, layers_per_block=1,
                         latent_channels=latent, norm_num_groups=8, sample_size=1024, scaling_factor=scaling,
                         shift_factor=shift, **kw)


def _save(pipe, repo: str, hf_home: Path, dtype) -> str:
    def fill(out: Path) -> None:
        pipe.to(dtype).save_pretrained(str(out))

    return _build_in_tmp(repo, hf_home, fill)


def build_sdxl(hf_home: Path, torch_home: Path) -> str:
    """``stabilityai/stable-diffusion-xl-base-1.0`` (StableDiffusionXLPipeline), fp16: UNet 320/640/1280 -> 16/32
    with the ``text_time`` addition embedding (6 size/crop ids x 8 + the second encoder's 16-d projection), CLIP-L
    and CLIP-bigG -> 16-wide, 2-layer towers (cross-attention 32 = both concatenated), VAE 4 levels (8x, 64 px)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    _seed(f"{SDXL}/unet")
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=64,
        cross_attention_dim=32, norm_num_groups=8)
    sched = EulerDiscreteScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                   beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading",
                                   prediction_type="epsilon", interpolation_type="linear", use_karras_sigmas=False)
    pipe = StableDiffusionXLPipeline(
        vae=_vae(4, 4, 0.13025, None, f"{SDXL}/vae", force_upcast=True),
        text_encoder=_clip_text("CLIPTextModel", 16, 16, f"{SDXL}/text_encoder"),
        text_encoder_2=_clip_text("CLIPTextModelWithProjection", 16, 16, f"{SDXL}/text_encoder_2"),
        tokenizer=_clip_tokenizer(), tokenizer_2=_clip_tokenizer(pad_token="!"), unet=unet,
        scheduler=sched, force_zeros_for_empty_prompt=True, add_watermarker=False)
    return _save(pipe, SDXL, hf_home, torch.float16)


def build_sd3(hf_home: Path, torch_home: Path) -> str:
    """``stabilityai/stable-diffusion-3-medium-diffusers`` (StableDiffusion3Pipeline), fp16: MM-DiT 24 x 1536 -> 2
    joint blocks of 16 (patch 2), CLIP-L, CLIP-G -> 16-wide towers with 16-d projections (pooled 32), T5-XXL -> 32
    wide (joint attention 32), VAE 16 latent channels, 4 levels (64 px)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    _seed(f"{SD3}/transformer")
    tr = SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=2,
                               attention_head_dim=8, num_attention_heads=2, joint_attention_dim=32,
                               caption_projection_dim=16, pooled_projection_dim=32, pos_embed_max_size=16)
    pipe = StableDiffusion3Pipeline(
        transformer=tr, scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
        vae=_vae(4, 16, 1.5305, 0.0609, f"{SD3}/vae", use_quant_conv=False, use_post_quant_conv=False),
        text_encoder=_clip_text("CLIPTextModelWithProjection", 16, 16, f"{SD3}/text_encoder"),
        tokenizer=_clip_tokenizer(),
        text_encoder_2=_clip_text("CLIPTextModelWithProjection", 16, 16, f"{SD3}/text_encoder_2"),
        tokenizer_2=_clip_tokenizer(pad_token="!"),
        text_encoder_3=_t5(f"{SD3}/text_encoder_3"), tokenizer_3=_t5_tokenizer(77))
    return _save(pipe, SD3, hf_home, torch.float16)


def build_flux_schnell(hf_home: Path, torch_home: Path) -> str:
    """``black-forest-labs/FLUX.1-schnell`` (FluxPipeline), bf16: 19 double + 38 single blocks of 24 x 128 -> 1 + 1
    of 2 x 16 (rope axes 4/6/6), no guidance embedding (schnell is guidance-distilled), CLIP-L -> 16 wide (pooled
    16), T5-XXL -> 32 wide, VAE 16 latent channels in one level (the pipeline's fixed 128 latent pixels: 128 px)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    _seed(f"{FLUX_SCHNELL}/transformer")
    tr = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1,
                                attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                pooled_projection_dim=16, guidance_embeds=False, axes_dims_rope=(4, 6, 6))
    sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False,
                                            base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
                                            max_image_seq_len=4096)
    pipe = FluxPipeline(scheduler=sched, vae=_vae(1, 16, 0.3611, 0.1159, f"{FLUX_SCHNELL}/vae",
                                                  use_quant_conv=False, use_post_quant_conv=False),
                        text_encoder=_clip_text("CLIPTextModel", 16, 16, f"{FLUX_SCHNELL}/text_encoder"),
                        tokenizer=_clip_tokenizer(), text_encoder_2=_t5(f"{FLUX_SCHNELL}/text_encoder_2"),
                        tokenizer_2=_t5_tokenizer(512), transformer=tr)
    return _save(pipe, FLUX_SCHNELL, hf_home, torch.bfloat16)


def build_pixart_sigma(hf_home: Path, torch_home: Path) -> str:
    """``PixArt-alpha/PixArt-Sigma-XL-2-1024-MS`` (PixArtSigmaPipeline), fp16: 28 x 1152 AdaLN-single blocks -> 2 of
    2 x 8 (patch 2, learned sigma: 8 output channels), T5-XXL -> 32 wide (caption channels 32), DPM-Solver++,
    VAE 4 levels; sample_size 32 (its 256 px resolution bin: the pipeline accepts 32/64/128/256 only)."""
    import torch
    from diffusers import DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel

    _seed(f"{PIXART_SIGMA}/transformer")
    tr = PixArtTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                  num_layers=2, cross_attention_dim=16, sample_size=32, patch_size=2,
                                  norm_type="ada_norm_single", caption_channels=32, interpolation_scale=2,
                                  use_additional_conditions=False, norm_num_groups=8)
    sched = DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02,
                                        beta_schedule="linear", prediction_type="epsilon", algorithm_type="dpmsolver++",
                                        solver_order=2, lower_order_final=True)
    pipe = PixArtSigmaPipeline(tokenizer=_t5_tokenizer(300), text_encoder=_t5(f"{PIXART_SIGMA}/text_encoder"),
                               vae=_vae(4, 4, 0.13025, None, f"{PIXART_SIGMA}/vae"), transformer=tr, scheduler=sched)
    return _save(pipe, PIXART_SIGMA, hf_home, torch.float16)


#: the image side the rehearsal samples at where a pipeline fixes it in code (``rehearsal.cli.write_registry``)
SIDE = 64
FIXED_SIDE = ("flux_schnell",)

STANDINS = {"sdxl": build_sdxl, "sd3": build_sd3, "flux_schnell": build_flux_schnell,
            "pixart_sigma": build_pixart_sigma}
