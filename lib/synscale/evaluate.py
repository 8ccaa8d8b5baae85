"""Evaluation of trained models.

Sections:

* Zero-shot classification with a CLIP (open_clip / CLIP_benchmark conventions; the paper's zero-shot loss,
  appendix B.3 of "Scaling Laws of Synthetic Images for Model Training").
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Template = Callable[[str], str] | str

# ---------------------------------------------------------------------------------------------------------------
# Zero-shot classification (CLIP)
# ---------------------------------------------------------------------------------------------------------------


def _fill(template: Template, classname: str) -> str:
    return template.format(classname) if isinstance(template, str) else template(classname)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def zero_shot_classifier(model: torch.nn.Module, tokenizer: Callable, classnames: Sequence[str],
                         templates: Sequence[Template]) -> torch.Tensor:
    """Class text features ``[D, C]``: per class, encode every filled template, L2-normalize each, average, renormalize.

    ``templates`` are callables ``t(c) -> str`` (as ``open_clip.zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES``)
    or format strings with ``{}``.
    """
    if not templates or not classnames:
        raise ValueError("need at least one class name and one template")
    was_training = model.training
    model.eval()
    cols = []
    for c in classnames:
        tokens = tokenizer([_fill(t, c) for t in templates]).to(_device(model))
        emb = F.normalize(model.encode_text(tokens).float(), dim=-1).mean(dim=0)
        cols.append(F.normalize(emb, dim=0))
    model.train(was_training)
    return torch.stack(cols, dim=1)


@torch.no_grad()
def zero_shot_logits(model: torch.nn.Module, images: torch.Tensor | np.ndarray, classifier: torch.Tensor,
                     batch_size: int = 512) -> torch.Tensor:
    """``logit_scale.exp() * normalize(encode_image(x)) @ classifier``, ``[N, C]`` on the CPU.

    ``images`` is a preprocessed float tensor ``[N, 3, S, S]`` or the world's uint8 images (``[N, H, W]`` /
    ``[N, H, W, 3]``), converted batch by batch with :func:`synscale.clip.to_tensor`.
    """
    raw = isinstance(images, np.ndarray) or images.dtype == torch.uint8
    if raw:
        from .clip import to_tensor
    was_training = model.training
    model.eval()
    dev = _device(model)
    w = classifier.to(dev, torch.float32)
    scale = model.logit_scale.exp().float()
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        x = to_tensor(x, model) if raw else x
        feats = F.normalize(model.encode_image(x.to(dev)).float(), dim=-1)
        out.append((scale * feats @ w).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, classifier.shape[1])


def zero_shot_loss(logits: torch.Tensor, labels: torch.Tensor | np.ndarray) -> float:
    """Mean zero-shot classification loss over images, the paper's (appendix B.3)::

        L = -log( exp(sim(z_img, z_txt_y) * tau) / sum_{c'=1..C} exp(sim(z_img, z_txt_c') * tau) )

    with ``sim`` the dot product of the normalized image feature and the ensembled class text feature, ``tau``
    the CLIP's learned temperature (``logit_scale.exp()``, the multiplier used in training) and ``y`` the true
    class; i.e. the cross-entropy of :func:`zero_shot_logits`.
    """
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return float(F.cross_entropy(logits.float(), y))


def zero_shot_eval(model: torch.nn.Module, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                   classifier: torch.Tensor, batch_size: int = 512) -> dict[str, float]:
    """Zero-shot ``top1`` accuracy and ``loss`` (:func:`zero_shot_loss`) of ``images`` against ``classifier``."""
    logits = zero_shot_logits(model, images, classifier, batch_size=batch_size)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return {"top1": float((logits.argmax(dim=1) == y).float().mean()), "loss": zero_shot_loss(logits, y),
            "n": int(len(y))}
