"""Image-set metrics from the paper's definitions (sec. 3.2 and appendix D).

- **recognizability**: the oracle's predictions on N generated images per class (paper N = 50); per-class F1,
  averaged over classes — scikit-learn's macro F1 with the intended class as the label.
- **diversity**: per class, the standard deviation of the oracle's pre-logit features over that class's images,
  taken *per feature dimension* (population std) and averaged over dimensions; then averaged over classes. This is
  the paper's reference [8] (Boutin et al.) read as "std on the feature space".
- **FID** against real val images with torchmetrics' ``FrechetInceptionDistance``; the features are the oracle's
  pre-logit features in the mini world, computed once for the real set (paper: Inception-v3 pool features,
  torchmetrics' network from a local weights file, :func:`fid_network`).
- **LPIPS** averaged over ``pairs`` random same-class pairs per class (paper: 250), then over classes. Paper:
  torchmetrics' LPIPS network (AlexNet + learned linear weights). Mini: the same formula — unit-normalise each
  stage's feature map over channels, squared difference, spatial mean, summed over stages — on the *oracle's*
  stage outputs with uniform channel weights ("oracle-LPIPS"), since no LPIPS weights can be downloaded
  (:func:`lpips_network` gives the network itself where its weights are on disk).

Pure functions take arrays; ``image_metrics`` binds them to a timm oracle. Per-class values are returned for the
per-class analysis.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from synscale.data.weights import path as weights_path
from synscale.methods.clip import _as_nchw
from synscale.methods.train import predict, to_input
from synscale.runtime.distributed import default_device
from synscale.runtime.threads import pinned

#: what :func:`image_metrics` measures of a set, in the order its tables show them
METRICS = ("recognizability", "diversity", "fid", "lpips")


def per_class_f1(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """F1 of each class c in ``range(num_classes)``: 2·TP / (2·TP + FP + FN), 0 where the class is neither predicted
    nor present — scikit-learn's ``f1_score(average=None, labels=range(num_classes), zero_division=0)`` (zeros for
    an empty set, where scikit-learn raises)."""
    from sklearn.metrics import f1_score

    if len(labels) == 0 and len(pred) == 0:
        return np.zeros(num_classes)
    return f1_score(labels, pred, labels=np.arange(num_classes), average=None, zero_division=0).astype(np.float64)


def recognizability(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[float, np.ndarray]:
    """Mean per-class F1 (and the per-class values)."""
    f1 = per_class_f1(np.asarray(pred), np.asarray(labels), num_classes)
    return float(f1.mean()), f1


def per_class_diversity(features: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """For each class: mean over feature dimensions of the (population) std over the class's images."""
    return np.array([features[labels == c].std(axis=0).mean() if np.any(labels == c) else np.nan
                     for c in range(num_classes)])


def diversity(features: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[float, np.ndarray]:
    d = per_class_diversity(np.asarray(features), np.asarray(labels), num_classes)
    return float(np.nanmean(d)), d


# ------------------------------------------------------------------------------------------------------------ FID
def fid(feature_net, real: np.ndarray, fake: np.ndarray, batch_size: int = 500) -> float:
    """Fréchet distance between ``feature_net``'s features of two image sets (torchmetrics' implementation).

    ``feature_net``: ``None`` for torchmetrics' Inception (paper; needs its weights on disk), or a module
    mapping a batch of images to ``[B, D]`` features with an integer ``num_features`` attribute.
    """
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=2048 if feature_net is None else feature_net, reset_real_features=True)
    for arr, real_flag in ((real, True), (fake, False)):
        for i in range(0, len(arr), batch_size):
            metric.update(torch.as_tensor(arr[i : i + batch_size]), real=real_flag)
    return float(metric.compute())


# ---------------------------------------------------------------------------------------------------------- LPIPS
def pair_indices(labels: np.ndarray, pairs: int, seed: int = 0) -> dict[int, np.ndarray]:
    """Per class, ``pairs`` random pairs ``(i, j)`` of distinct images of that class (indices into ``labels``)."""
    rng = np.random.default_rng(seed)
    out = {}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        a = rng.integers(len(idx), size=pairs)
        b = (a + rng.integers(1, len(idx), size=pairs)) % len(idx)  # uniform over the other images
        out[int(c)] = np.stack([idx[a], idx[b]], axis=1)
    return out


def lpips_from_features(feats0: list, feats1: list):
    """LPIPS's formula with uniform channel weights on per-stage feature maps ``[N, C, H, W]``: per stage,
    normalise over channels, squared difference summed over channels, mean over space; summed over stages → [N]."""
    import torch

    total = 0
    for f0, f1 in zip(feats0, feats1):
        n0 = f0 / torch.sqrt(1e-8 + (f0**2).sum(1, keepdim=True))  # as torchmetrics' _normalize_tensor
        n1 = f1 / torch.sqrt(1e-8 + (f1**2).sum(1, keepdim=True))
        total = total + ((n0 - n1) ** 2).sum(1).mean((1, 2))
    return total


def lpips_per_class(distance: Callable[[np.ndarray, np.ndarray], np.ndarray], images: np.ndarray,
                    labels: np.ndarray, num_classes: int, pairs: int = 250, seed: int = 0
                    ) -> tuple[float, np.ndarray]:
    """Mean over classes of the mean ``distance`` over ``pairs`` random same-class pairs (and per-class values).
    Each class's images are read once (a lazy set decodes them on reading), then paired."""
    per = np.full(num_classes, np.nan)
    for c, ij in pair_indices(labels, pairs, seed).items():
        used, pos = np.unique(ij, return_inverse=True)
        pos = pos.reshape(ij.shape)
        x = images[used]
        per[c] = float(np.mean(distance(x[pos[:, 0]], x[pos[:, 1]])))
    return float(np.nanmean(per)), per


# --------------------------------------------------------------------------------------------- bound to an oracle
def _identity_net(dim: int):
    import torch

    class Features(torch.nn.Module):
        """Inputs that already are features: FID of precomputed features through torchmetrics."""

        num_features = dim

        def forward(self, x):
            return x.double()

    return Features()


def feature_fid(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """FID of precomputed features (torchmetrics' Fréchet distance; e.g. the oracle's features of both sets)."""
    return fid(_identity_net(real_features.shape[1]), real_features, fake_features)


def oracle_lpips(oracle, preprocess=None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``distance(a, b)`` = oracle-LPIPS per pair of uint8 images (the oracle's stage outputs as LPIPS layers);
    ``preprocess`` maps images to the oracle's input (default ``train.to_input``)."""
    import torch


    prep = preprocess or to_input
    oracle.eval()

    @torch.no_grad()
    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # each image recurs in many pairs: run the oracle once per distinct image, then gather the pairs
        both = np.concatenate([a, b])
        uniq, inv = np.unique(both.reshape(len(both), -1), axis=0, return_inverse=True)
        x = prep(uniq.reshape((-1,) + both.shape[1:])).to(next(oracle.parameters()).device)
        feats = oracle.forward_intermediates(x, intermediates_only=True)
        ia, ib = (torch.as_tensor(i, device=x.device) for i in (inv[: len(a)], inv[len(a):]))
        return lpips_from_features([f[ia] for f in feats], [f[ib] for f in feats]).cpu().numpy()

    return distance


@pinned
def image_metrics(oracle, images: np.ndarray, labels: np.ndarray, real_features: np.ndarray, num_classes: int,
                  lpips_pairs: int = 250, seed: int = 0, preprocess=None, fid_features=None, lpips_distance=None
                  ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Recognizability, diversity, FID and LPIPS of a generated set through the oracle.

    ``real_features``: the real reference set's features in FID's feature space (computed once per notebook):
    the oracle's pre-logits (``train.predict(oracle, x)[1]``, mini) or ``fid_features(x)`` when that is given
    (:func:`fid_network`: Inception, paper). ``lpips_distance``: :func:`lpips_network`'s LPIPS network (paper),
    default oracle-LPIPS. ``preprocess``: the oracle's input transform (``train.eval_preprocess``).
    Returns ``({metric: value}, {metric: per-class values})``.
    """
    logits, feats = predict(oracle, images, preprocess=preprocess)
    rec, rec_c = recognizability(logits.argmax(1), labels, num_classes)
    div, div_c = diversity(feats, labels, num_classes)
    f = feature_fid(real_features, feats if fid_features is None else fid_features(images))
    lp, lp_c = lpips_per_class(lpips_distance or oracle_lpips(oracle, preprocess), images, labels, num_classes,
                               lpips_pairs, seed)
    return (dict(zip(METRICS, (rec, div, f, lp))),
            {"recognizability": rec_c, "diversity": div_c, "lpips": lp_c})


# ---------------------------------------------------------------------------------- the paper's networks, offline
def fid_network(name: str, batch_size: int = 200, device: str | None = None
                ) -> Callable[[np.ndarray], np.ndarray] | None:
    """FID's feature space by name: ``"oracle"`` -> ``None`` (the oracle's pre-logits, mini world), or the FID
    Inception-v3 weights (``paper:fid_inception``: ``pt_inception-2015-12-05-6726825d.pth`` in torch hub's
    checkpoints, or a path to it) -> ``features(images)`` with
    torchmetrics' Inception (torch-fidelity's network, 2048-d pool features, its own resize to 299 px) on ``device``
    (default :func:`~synscale.runtime.distributed.default_device`)."""
    if name == "oracle":
        return None
    import torch
    from torchmetrics.image.fid import NoTrainInceptionV3


    path = weights_path(name, "fid_inception")  # paper:fid_inception (TORCH_HOME) or a file; one line if absent
    device = device or default_device()
    net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                             feature_extractor_weights_path=str(path)).to(device)

    @torch.no_grad()
    def features(images: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(images), batch_size):
            x = _as_nchw(images[i : i + batch_size]).to(device)
            out.append(net(x.contiguous()).reshape(len(x), -1).double().cpu())
        return torch.cat(out).numpy()

    return features


def lpips_network(name: str, device: str | None = None) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """LPIPS by name: ``"oracle"`` -> ``None`` (oracle-LPIPS, mini world), or ``"alex"`` / ``"vgg"`` /
    ``"squeeze"`` -> ``distance(a, b)`` with the LPIPS network (torchmetrics; paper: AlexNet) on ``device`` (default
    :func:`~synscale.runtime.distributed.default_device`). Its backbone's ImageNet weights come from torchvision through
    torch's hub cache, which must already hold them."""
    if name == "oracle":
        return None
    import torch
    import torchvision
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity


    backbone = {"alex": "AlexNet", "vgg": "VGG16", "squeeze": "SqueezeNet1_1"}
    if name not in backbone:
        raise ValueError(f"lpips_net must be 'oracle', 'alex', 'vgg' or 'squeeze', got {name!r}")
    url = torchvision.models.get_weight(f"{backbone[name]}_Weights.DEFAULT").url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
    if not cached.exists():
        raise FileNotFoundError(f"LPIPS-{name} needs torchvision's {backbone[name]} weights at {cached} (download "
                                f"{url} there on a machine with internet), or set lpips_net: 'oracle'")
    device = device or default_device()
    net = LearnedPerceptualImagePatchSimilarity(net_type=name, normalize=True).net.eval().to(device)

    @torch.no_grad()
    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # uint8 images -> [0, 1] RGB, LPIPS's normalize=True
        x, y = (_as_nchw(v).to(device).float().div(255.0) for v in (a, b))
        return net(x, y, normalize=True).reshape(len(a)).cpu().numpy()

    return distance
