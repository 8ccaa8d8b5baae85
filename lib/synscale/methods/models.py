"""Load a named model through its library class: the shipped mini-world artifact or the paper's weights.

Every experiment loads models through these functions, so switching the ``paper`` profile swaps names, not code.
Names are resolved by :mod:`synscale.data.weights` (``"mini"``, ``"paper:<role>"``, a cached repo id, or a local path):

| role | mini (``"mini"``) | paper (``"paper:<role>"``: HF cache) |
|---|---|---|
| t2i ``sd``   | ``StableDiffusionPipeline`` from ``mini_world/sd``   | ``stable-diffusion-v1-5/...`` |
| t2i ``if``   | ``IFPipeline`` from ``mini_world/if``                | ``DeepFloyd/IF-I-XL-v1.0`` + ``IF-II-L-v1.0`` |
| t2i ``muse`` | ``AmusedPipeline`` from ``mini_world/muse``          | ``amused/amused-256`` (fp16) |
| t2i ``fm``   | ``StableDiffusion3Pipeline`` from ``mini_world/fm``  | — (mini only; ``sd3``, ``flux_schnell`` …) |
| oracle       | timm ``local-dir:mini_world/oracle``                 | ``timm/vit_base_patch16_224.augreg_...`` |
| clip         | open_clip ``synscale-mini-clip`` + weights           | ``laion/CLIP-ViT-B-16-laion2B-s34B-b88K`` |

Text-to-image generators are entries of ``params/generators.yaml`` (:mod:`synscale.data.generators`), loaded by
diffusers' ``DiffusionPipeline`` (the class their ``model_index.json`` names): a new generator is an entry and its
weights. Stable Diffusion samples with DDIM (eta 0), the papers' sampler (SynthCLIP and Geng et al.: 50 DDIM steps),
whatever scheduler its checkpoint ships (SD-1.5's is PNDM). A name may chain a super-resolution stage after a
family's own weights with ``+``: ``"paper:if+paper:if_stage2"`` is DeepFloyd IF as it makes 256 px images, stage I
at 64 px, then stage II (:class:`Cascade`); ``"paper:if"`` alone is stage I. Nothing is downloaded
(``local_files_only``); anything absent is one line saying what and how to provide it.
"""
from __future__ import annotations

from synscale.data import generators
from synscale.data.weights import CASCADE, STAGE2_ROLES, MissingModelError, resolve, stages
from synscale.data.world import default_dir, read_manifest
from synscale.data.world.text import imagenet_index
from synscale.methods.train import load, restrict_classes
from synscale.runtime.distributed import default_device

__all__ = ["MissingModelError", "PIPELINES", "Cascade", "fingerprint", "oracle", "stages", "t2i"]

#: the text-to-image generators: the registry's keys (``params/generators.yaml``), stages left out
PIPELINES = tuple(generators.generators())


def _from_pretrained(entry: generators.Generator, w, dtype, **kwargs):
    """``DiffusionPipeline.from_pretrained`` (the pipeline class its ``model_index.json`` names) on resolved
    weights, offline, in the variant the cache holds, with the entry's ``none`` components and ``init`` arguments,
    no loading bars. The pipeline remembers the entry's ``call`` arguments (``synscale_call``)."""
    import diffusers
    import torch
    from diffusers.utils import logging as diffusers_log
    from transformers.utils import logging as transformers_log

    if w.variant:
        kwargs["variant"] = w.variant
    bars = diffusers_log.is_progress_bar_enabled(), transformers_log.is_progress_bar_enabled()
    diffusers_log.disable_progress_bar()  # loading bars would fill every rendered report; restored below
    transformers_log.disable_progress_bar()
    try:
        parts = {**{k: None for k in entry.none}, **entry.init, **kwargs}
        pipe = diffusers.DiffusionPipeline.from_pretrained(str(w.path), local_files_only=True,
                                                           dtype=dtype or torch.float32, **parts)
    finally:
        if bars[0]:
            diffusers_log.enable_progress_bar()
        if bars[1]:
            transformers_log.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    pipe.synscale_call = dict(entry.call)
    return pipe


def t2i(family: str, name: str = "mini", device: str = "cpu", dtype=None):
    """A diffusers text-to-image pipeline of the registry's generator ``family`` (``sd``, ``if``, ``muse``, ``fm``,
    ``sd3`` …): weights resolved by :func:`synscale.data.weights.resolve` (the fp16 variant where only that is
    cached), the entry's ``sampler`` (where it differs from what a checkpoint ships: SD-1.5 ships PNDM), its
    ``none`` components (no safety checker or watermarker: the study measures the generator's own images). A name
    with a super-resolution stage (``"paper:if+paper:if_stage2"``) gives a :class:`Cascade`."""
    import diffusers

    entry = generators.get(family)
    if entry.is_stage:
        raise ValueError(f"'{family}' is a super-resolution stage of '{entry.stage_of}', not a generator: name "
                         f"'{entry.stage_of}' with weights 'paper:{entry.stage_of}{CASCADE}paper:{family}'")
    base, up = stages(name)
    if up is not None and not entry.stage2:
        raise ValueError(f"weights '{name}': generator '{family}' has no super-resolution stage to chain with "
                         f"'{CASCADE}' (give its registry entry a 'stage2')")
    pipe = _from_pretrained(entry, resolve(base, family), dtype)
    sampler = entry.sampler
    if sampler and type(pipe.scheduler).__name__ != sampler:
        pipe.scheduler = getattr(diffusers, sampler).from_config(pipe.scheduler.config)
    if up is None:
        return pipe.to(device)
    sr = _from_pretrained(generators.get(entry.stage2), resolve(up, STAGE2_ROLES[family]), dtype)
    return Cascade(pipe.to(device), sr.to(device))


class Cascade:
    """A text-to-image stage, then its super-resolution stage on the first stage's images, as DeepFloyd IF makes its
    256 px images (IF-I at 64 px, then IF-II; IF's own README runs them so): the prompts are encoded once, by stage
    I's text encoder, and both stages draw their noise from each sample's own generator, so an image still depends
    on its prompt and seed alone. The guidance scale and the steps are stage I's (the study's sweep); stage II runs
    with the same number of steps, its pipeline's default guidance (4.0) and noise level (250)."""

    def __init__(self, stage1, stage2):
        self.stage1, self.stage2 = stage1, stage2

    @property
    def device(self):
        return self.stage1.device

    def set_progress_bar_config(self, **kwargs) -> None:
        self.stage1.set_progress_bar_config(**kwargs)
        self.stage2.set_progress_bar_config(**kwargs)

    def __call__(self, prompt, guidance_scale: float, num_inference_steps: int, generator=None,
                 output_type: str = "np", **kwargs):
        embeds, negative = self.stage1.encode_prompt(prompt, do_classifier_free_guidance=True,
                                                     device=self.stage1._execution_device, clean_caption=False)
        low = self.stage1(prompt_embeds=embeds, negative_prompt_embeds=negative, guidance_scale=guidance_scale,
                          num_inference_steps=num_inference_steps, generator=generator, output_type="pt").images
        return self.stage2(image=low, prompt_embeds=embeds, negative_prompt_embeds=negative,
                           num_inference_steps=num_inference_steps, generator=generator, output_type=output_type)


def _sampler_tag(family: str, path) -> str:
    """``+ddim`` when :func:`t2i` swaps the checkpoint's scheduler (its images differ from the checkpoint's own), and
    the registry entry's call arguments where it has any (``+{"max_sequence_length": 8}``): both change the images."""
    import json
    from pathlib import Path

    entry = generators.registry().get(family)
    call = "+" + json.dumps(entry.call, sort_keys=True) if entry and entry.call else ""
    sampler = entry.sampler if entry else None
    f = Path(path) / "scheduler" / "scheduler_config.json"
    if not sampler or not f.is_file() or json.loads(f.read_text()).get("_class_name") == sampler:
        return call
    return "+" + sampler.removesuffix("Scheduler").lower() + call


def fingerprint(what: str, name: str = "mini") -> str:
    """8 hex digits naming the exact weights of ``name`` (and the sampler :func:`t2i` uses with them): the shipped
    files' sha256 for ``mini``; a cached repo's id and revision; else the resolved path with its files' sizes and
    mtimes (a folder rebuilt in place gets a new fingerprint). Cached data sets made with other weights never collide
    with these. A cascade's names both stages' weights (stage I alone is another fingerprint)."""
    import hashlib
    import json

    base, up = stages(name)
    if up is not None:
        role = STAGE2_ROLES.get(what, what)
        key = f"{fingerprint(what, base)}{CASCADE}{fingerprint(role, up)}"
        return hashlib.sha256(key.encode()).hexdigest()[:8]

    if name == "mini":
        files = read_manifest(default_dir())["components"].get(what, {}).get("files")
        if not files:
            raise MissingModelError(f"mini-world component '{what}' is not built: run "
                                    "./run_all.sh 00 --profile rebuild")
        key = json.dumps(files, sort_keys=True) + _sampler_tag(what, default_dir() / what)
    else:
        w = resolve(name, what)
        path = w.path.resolve() if w.repo is None else w.path
        if w.repo is not None:
            key = json.dumps([w.repo, w.path.name, w.variant])
        else:
            files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
            key = json.dumps([str(path)] + [(str(p.relative_to(path.parent)), p.stat().st_size,
                                             p.stat().st_mtime_ns) for p in files])
        key += _sampler_tag(what, w.path)
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def oracle(name: str = "mini", world=None, device: str | None = None):
    """The recognizability/diversity classifier (timm) on ``device`` (default this process's accelerator,
    :func:`~synscale.runtime.distributed.default_device`: a GPU at paper scale). With a ``world`` whose classes are a
    subset of ImageNet-1k's (its ``wnids``; the rehearsal's 10 classes, an ImageNet-100), a 1000-way oracle keeps just
    those
    classes' outputs, in the world's order."""
    model = load(resolve(name, "oracle").path)
    wnids = getattr(world, "wnids", None)
    if wnids is not None and model.num_classes == 1000 and len(wnids) != 1000:
        model = restrict_classes(model, [imagenet_index(w) for w in wnids])
    return model.to(device or default_device())
