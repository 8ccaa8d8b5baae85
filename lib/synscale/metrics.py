"""Image-set metrics from the paper's definitions (arrays in, numbers out).

- recognizability: the oracle's predictions on N generated images per class; per-class F1, averaged over classes
  (equals scikit-learn's macro F1 with the intended class as the label).
- diversity: per class, the standard deviation of the oracle's features over that class's images, taken per
  feature dimension and averaged over dimensions; then averaged over classes.
"""
from __future__ import annotations

import numpy as np


def per_class_f1(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """F1 of each class c: 2·TP / (2·TP + FP + FN) (0 where the class is neither predicted nor present)."""
    f1 = np.zeros(num_classes)
    for c in range(num_classes):
        tp = np.sum((pred == c) & (labels == c))
        denom = np.sum(pred == c) + np.sum(labels == c)
        f1[c] = 2 * tp / denom if denom else 0.0
    return f1


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
