"""Evaluation of trained models.

Sections:

* Supervised classifiers: cross-entropy loss and top-1 with per-class breakdowns (val and each OOD set), and
  linear probing of frozen features on downstream tasks (Fan et al. appendix A.3).
* Zero-shot classification with a CLIP (open_clip / CLIP_benchmark conventions; the paper's zero-shot loss,
  appendix B.3 of "Scaling Laws of Synthetic Images for Model Training").
* SynthCLIP's tasks: frozen features, N-way K-shot prototypes, image↔text retrieval recall@k (CLIP_benchmark).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import numpy as np
import open_clip
import pandas as pd
import torch
import torch.nn.functional as F

from synscale.data.arrays import content_key
from synscale.methods.clip import to_tensor

Template = Callable[[str], str] | str


class FeatureCache:
    """``fn(images)`` memoised by :func:`content_key`: tasks built on the same images featurize them once."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn, self.store = fn, {}

    def __call__(self, images: np.ndarray) -> np.ndarray:
        key = content_key(images)
        if key not in self.store:
            self.store[key] = self.fn(images)
        return self.store[key]

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
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    clf = make_pipeline(StandardScaler(), LogisticRegression(solver="lbfgs", max_iter=max_iter, C=C))
    with threadpool_limits(1), warnings.catch_warnings():  # BLAS threads on small matrices only contend
        # the paper's 500-iteration cap is the recipe, not a fault: whether it converged is in the result instead
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(np.asarray(train_features, dtype=np.float64), np.asarray(train_labels))
        pred = clf.predict(np.asarray(test_features, dtype=np.float64))
    hits = pred == np.asarray(test_labels)
    return {"top1": float(hits.mean()), "n_train": int(len(train_labels)), "n_test": int(len(test_labels)),
            "iterations": int(clf[-1].n_iter_.max()), "converged": bool(clf[-1].n_iter_.max() < max_iter),
            "hits": hits}


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
    """Class text features ``[D, C]`` (float32, on the model's device): per class, encode every filled template,
    L2-normalize each, average, renormalize — ``open_clip.build_zero_shot_classifier`` (10 classes per forward pass),
    with the model in eval mode for the call.

    ``templates`` are callables ``t(c) -> str`` (as ``open_clip.zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES``)
    or format strings with ``{}``, mixed freely (each is passed to open_clip as a callable).
    """
    if not templates or not classnames:
        raise ValueError("need at least one class name and one template")
    was_training = model.training
    model.eval()
    try:
        w = open_clip.build_zero_shot_classifier(model, tokenizer, list(classnames),
                                                 [partial(_fill, t) for t in templates], device=_device(model))
    finally:
        model.train(was_training)
    return w.float()


@torch.no_grad()
def zero_shot_logits(model: torch.nn.Module, images: torch.Tensor | np.ndarray, classifier: torch.Tensor,
                     batch_size: int = 512) -> torch.Tensor:
    """``logit_scale.exp() * normalize(encode_image(x)) @ classifier``, ``[N, C]`` on the CPU.

    ``images`` is a preprocessed float tensor ``[N, 3, S, S]`` or the world's uint8 images (``[N, H, W]`` /
    ``[N, H, W, 3]``), converted batch by batch with :func:`synscale.methods.clip.to_tensor`.
    """
    if len(images) == 0:
        return torch.empty(0, classifier.shape[1])
    feats = image_features(model, images, batch_size)  # normalised, on the CPU
    return model.logit_scale.exp().float().cpu() * feats @ classifier.float().cpu()


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
    """Zero-shot ``top1`` accuracy and ``loss`` (:func:`zero_shot_loss`) of ``images`` against ``classifier``, and
    per image (for bootstrap intervals): ``losses`` (float32) and ``hits`` (bool)."""
    logits = zero_shot_logits(model, images, classifier, batch_size=batch_size)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    per = F.cross_entropy(logits.float(), y, reduction="none")
    hits = (logits.argmax(dim=1) == y).numpy()
    return {"top1": float(hits.mean()), "loss": float(per.mean()), "n": int(len(y)),
            "losses": per.numpy().astype(np.float32), "hits": hits}


# ---------------------------------------------------------------------------------------------------------------
# SynthCLIP's tasks: frozen features, few-shot prototypes, image<->text retrieval
# ---------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def image_features(model: torch.nn.Module, images: torch.Tensor | np.ndarray, batch_size: int = 512,
                   normalize: bool = True) -> torch.Tensor:
    """``encode_image`` of the world's uint8 images (arrays, lazy arrays of ``synscale.data.arrays``, or preprocessed
    tensors), ``[N, D]`` float on the CPU."""
    raw = not isinstance(images, torch.Tensor) or images.dtype == torch.uint8
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        x = to_tensor(x, model) if raw else x
        f = model.encode_image(x.to(_device(model))).float()
        out.append((F.normalize(f, dim=-1) if normalize else f).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def text_features(model: torch.nn.Module, tokenizer: Callable, texts: Sequence[str], batch_size: int = 1024,
                  normalize: bool = True) -> torch.Tensor:
    """``encode_text`` of ``texts``, ``[N, D]`` float on the CPU (L2-normalized unless ``normalize=False``)."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(texts), batch_size):
        f = model.encode_text(tokenizer(list(texts[i:i + batch_size])).to(_device(model))).float()
        out.append((F.normalize(f, dim=-1) if normalize else f).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def few_shot(features: np.ndarray | torch.Tensor, labels: np.ndarray, n_way: int = 5, k_shot: int = 5,
             n_query: int = 15, episodes: int = 200, seed: int = 0) -> dict[str, float]:
    """N-way K-shot accuracy with class prototypes (nearest-centroid on frozen features, as SynthCLIP's few-shot).

    Each episode draws ``n_way`` classes, then ``k_shot`` support and ``n_query`` query images per class (without
    overlap); a class prototype is the mean of its L2-normalized support features, renormalized; a query goes to the
    prototype of highest cosine similarity. Returns mean ``top1`` over episodes, its 95% half-width ``ci95``,
    ``episode_top1`` (each episode's accuracy: the items of a bootstrap) and the settings. Episodes depend only on
    ``seed`` and the labels, so every model is scored on the same episodes.
    """
    z = F.normalize(torch.as_tensor(np.asarray(features), dtype=torch.float32), dim=-1)
    y = np.asarray(labels)
    classes, counts = np.unique(y, return_counts=True)
    ok = classes[counts >= k_shot + n_query]
    if len(ok) < n_way:
        raise ValueError(f"{n_way}-way {k_shot}-shot with {n_query} queries needs {n_way} classes with >= "
                         f"{k_shot + n_query} images; only {len(ok)} have that: lower n_way/k_shot/n_query")
    rng = np.random.default_rng(seed)
    by_class = {c: np.flatnonzero(y == c) for c in ok}
    acc = []
    for _ in range(episodes):
        chosen = rng.choice(ok, n_way, replace=False)
        protos, queries = [], []
        for j, c in enumerate(chosen):
            idx = rng.choice(by_class[c], k_shot + n_query, replace=False)
            protos.append(F.normalize(z[idx[:k_shot]].mean(0), dim=0))
            queries.append((idx[k_shot:], j))
        p = torch.stack(protos)
        qi = np.concatenate([q for q, _ in queries])
        qy = torch.as_tensor(np.concatenate([np.full(len(q), j) for q, j in queries]))
        acc.append(float(((z[qi] @ p.T).argmax(1) == qy).float().mean()))
    a = np.asarray(acc)
    return {"top1": float(a.mean()), "ci95": float(1.96 * a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else 0.0,
            "n_way": n_way, "k_shot": k_shot, "n_query": n_query, "episodes": episodes, "episode_top1": a}


def retrieval_recall(image_feats: np.ndarray | torch.Tensor, text_feats: np.ndarray | torch.Tensor,
                     text_to_image: Sequence[int] | np.ndarray | None = None, ks: Sequence[int] = (1, 5, 10),
                     gallery: int | None = None, hits: bool = False) -> dict[str, float]:
    """Image↔text retrieval recall@k with CLIP_benchmark's definitions (``zeroshot_retrieval.evaluate``).

    ``text_to_image[t]`` is the image text ``t`` describes (default: text ``i`` ↔ image ``i``; an image may have
    several texts). Scores are cosine similarities ``text @ image.T``. ``image_retrieval_recall@k``: per text query,
    1 if one of its images is in the top ``k`` images, averaged over texts; ``text_retrieval_recall@k``: per image
    query, 1 if one of its texts is in the top ``k`` texts, averaged over images. Values in [0, 1].

    ``gallery``: search within consecutive folds of that many images (and their texts) instead of the whole set,
    the "COCO 1K" protocol (recall over 5 folds of 1,000 test images, against "5K" for all of them); ``None``: one
    gallery of every image. ``hits`` = True adds ``image_retrieval_hits@k`` (per text query) and
    ``text_retrieval_hits@k`` (per image query): bool arrays whose means are the recalls (for bootstrap intervals).
    """
    zi = F.normalize(torch.as_tensor(np.asarray(image_feats), dtype=torch.float32), dim=-1)
    zt = F.normalize(torch.as_tensor(np.asarray(text_feats), dtype=torch.float32), dim=-1)
    t2i = np.arange(len(zt)) if text_to_image is None else np.asarray(text_to_image, dtype=np.int64)
    if len(t2i) != len(zt) or (len(t2i) and (t2i.min() < 0 or t2i.max() >= len(zi))):
        raise ValueError(f"text_to_image must give one image index in [0, {len(zi)}) per text ({len(zt)} texts)")
    scores = zt @ zi.T  # [T, I]
    if gallery is not None:
        if gallery < 1:
            raise ValueError(f"gallery must be a positive number of images or None, got {gallery}")
        fold = torch.arange(len(zi)) // gallery
        scores = scores.masked_fill(fold[torch.as_tensor(t2i)][:, None] != fold[None, :], -torch.inf)
    positive = torch.zeros_like(scores, dtype=torch.bool)
    positive[torch.arange(len(zt)), torch.as_tensor(t2i)] = True
    out: dict = {}
    for k in ks:
        for d, (s, pos) in (("image", (scores, positive)), ("text", (scores.T, positive.T))):
            h = _hits_at_k(s, pos, k)
            out[f"{d}_retrieval_recall@{k}"] = float(h.mean())
            if hits:
                out[f"{d}_retrieval_hits@{k}"] = h
    return out


def _hits_at_k(scores: torch.Tensor, positive: torch.Tensor, k: int) -> np.ndarray:
    """CLIP_benchmark's ``recall_at_k(...) > 0`` per query (row): any positive among the top k."""
    k = min(k, scores.shape[1])
    topk = scores.topk(k, dim=1).indices
    return positive.gather(1, topk).any(dim=1).numpy()


def retrieval_eval(model: torch.nn.Module, tokenizer: Callable, images: np.ndarray | torch.Tensor,
                   texts: Sequence[str], text_to_image: Sequence[int] | None = None, ks: Sequence[int] = (1, 5, 10),
                   gallery: int | None = None, hits: bool = False) -> dict[str, float]:
    """:func:`retrieval_recall` of a CLIP's image and text features."""
    return retrieval_recall(image_features(model, images), text_features(model, tokenizer, texts), text_to_image, ks,
                            gallery, hits)


#: the downstream sets Fan et al. Table A2 (after CLIP) score by mean per-class accuracy, not top-1
MEAN_PER_CLASS = frozenset({"aircraft", "pets", "caltech101", "flowers"})


def mean_per_class(hits: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the classes present of each class's share of right answers (balanced accuracy)."""
    hits, labels = np.asarray(hits, dtype=float), np.asarray(labels)
    return float(np.mean([hits[labels == c].mean() for c in np.unique(labels)]))


def table_a2_items(name: str, hits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each test image's share of its set's Table A2 score, so that their mean is the score and a bootstrap over
    images resamples it: the hits (top-1), or for :data:`MEAN_PER_CLASS` sets each hit weighted by
    ``N / (classes × its class's images)`` (their mean: :func:`mean_per_class`)."""
    hits, labels = np.asarray(hits, dtype=float), np.asarray(labels)
    if name not in MEAN_PER_CLASS:
        return hits
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return hits * len(labels) / (len(classes) * counts[inverse])


def zero_shot_benchmark(model: torch.nn.Module, tokenizer: Callable,
                        sets: dict[str, tuple[np.ndarray, np.ndarray, Sequence[str]]],
                        templates: Sequence[Template] | Mapping[str, Sequence[Template]],
                        per_image: dict | None = None, hits: dict | None = None) -> pd.DataFrame:
    """Zero-shot ``top1`` and ``loss`` of a CLIP on several labelled sets (Fan et al. Tables 1/A10–A12 shape).

    ``sets`` maps a data-set name to ``(uint8 images, labels, class names)``; one row per set (``dataset``, ``top1``,
    ``mean_per_class``, ``score`` — Table A2's metric of the set: mean per-class accuracy for :data:`MEAN_PER_CLASS`,
    else top-1 —, ``loss``, ``n_images``), each with a template-ensembled classifier over its own class names.
    ``templates``: one list for every set, or a list per set name (CLIP's per-dataset prompts). ``per_image`` (a
    dict) receives each set's per-image losses by name, ``hits`` (a dict) whether each image was right.
    """
    rows = []
    for name, (images, labels, classnames) in sets.items():
        tmpl = templates[name] if isinstance(templates, Mapping) else templates
        clf = zero_shot_classifier(model, tokenizer, list(classnames), tmpl)
        r = zero_shot_eval(model, images, labels, clf)
        if per_image is not None:
            per_image[name] = r["losses"]
        if hits is not None:
            hits[name] = r["hits"]
        mpc = mean_per_class(r["hits"], labels)
        rows.append({"dataset": name, "top1": r["top1"], "mean_per_class": mpc,
                     "score": mpc if name in MEAN_PER_CLASS else r["top1"], "loss": r["loss"], "n_images": r["n"]})
    return pd.DataFrame(rows)
