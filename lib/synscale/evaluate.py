"""Evaluation of trained models.

Sections:

* Supervised classifiers: cross-entropy loss and top-1 with per-class breakdowns (val and each OOD set), and
  linear probing of frozen features on downstream tasks (Fan et al. appendix A.3).
* Zero-shot classification with a CLIP (open_clip / CLIP_benchmark conventions; the paper's zero-shot loss,
  appendix B.3 of "Scaling Laws of Synthetic Images for Model Training").
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

Template = Callable[[str], str] | str

# ---------------------------------------------------------------------------------------------------------------
# Supervised classifiers
# ---------------------------------------------------------------------------------------------------------------


def classification(logits: np.ndarray | torch.Tensor, labels: np.ndarray, num_classes: int
                   ) -> tuple[dict[str, float], pd.DataFrame]:
    """Mean cross-entropy ``loss`` and ``top1`` of ``logits`` [N, C], and the same per class (a row per class:
    ``class_id``, ``n``, ``loss``, ``top1``; NaN for a class without images) — what timm's ``validate`` computes
    (``nn.CrossEntropyLoss`` on the logits, top-1 of the argmax), kept per class for the per-class analysis."""
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if z.ndim != 2 or len(z) != len(y):
        raise ValueError(f"logits must be [N, C] with N = len(labels), got {tuple(z.shape)} and {len(y)} labels")
    nll = F.cross_entropy(z, y, reduction="none").numpy()
    hit = (z.argmax(1) == y).float().numpy()
    yy = y.numpy()
    n = np.bincount(yy, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = pd.DataFrame({"class_id": np.arange(num_classes), "n": n,
                            "loss": np.bincount(yy, nll, num_classes) / n,
                            "top1": np.bincount(yy, hit, num_classes) / n})
    return {"loss": float(nll.mean()), "top1": float(hit.mean()), "n": int(len(y))}, per


def linear_probe(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                 test_labels: np.ndarray, max_iter: int = 500, C: float = 1.0) -> dict[str, float]:
    """Top-1 of a logistic regression (L-BFGS, ``max_iter`` 500 as appendix A.3) on frozen, un-augmented features.

    Features are standardised with the train split's mean/std first (scikit-learn ``StandardScaler``) so L-BFGS
    converges within the paper's 500 iterations; the paper does not state its regularisation, ``C`` = 1 here.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(solver="lbfgs", max_iter=max_iter, C=C))
    clf.fit(np.asarray(train_features, dtype=np.float64), np.asarray(train_labels))
    pred = clf.predict(np.asarray(test_features, dtype=np.float64))
    return {"top1": float((pred == np.asarray(test_labels)).mean()), "n_train": int(len(train_labels)),
            "n_test": int(len(test_labels)), "iterations": int(clf[-1].n_iter_.max())}


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
