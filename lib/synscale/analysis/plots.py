"""Figures shared by the notebooks (matplotlib; arrays in, figures out)."""
from __future__ import annotations

import numpy as np


def mosaic(images: np.ndarray, labels: np.ndarray, num_classes: int, per_class: int, pad: int = 1) -> np.ndarray:
    """One image: row c holds the first ``per_class`` images of class c (blank where a class has fewer)."""
    h, w = images.shape[1:3]
    shape = (num_classes * (h + pad) - pad, per_class * (w + pad) - pad) + images.shape[3:]
    out = np.full(shape, 255, dtype=np.uint8)
    for c in range(num_classes):
        for j, i in enumerate(np.flatnonzero(labels == c)[:per_class]):
            out[c * (h + pad): c * (h + pad) + h, j * (w + pad): j * (w + pad) + w] = images[i]
    return out


def image_grid(images: np.ndarray, labels: np.ndarray, class_names: list[str], per_class: int = 8,
               title: str | None = None, scale: float = 0.55, ax=None):
    """Rows = classes, columns = the first ``per_class`` images of each class (uint8 grey or RGB).

    Draws into ``ax`` when given (several grids side by side), else into a new figure; returns the figure.
    """
    import matplotlib.pyplot as plt

    n = len(class_names)
    if ax is None:
        _, ax = plt.subplots(figsize=(per_class * scale + 1.6, n * scale + 0.4))
    img = mosaic(images, labels, n, per_class)
    ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    h = images.shape[1]
    ax.set_yticks([c * (h + 1) + h / 2 for c in range(n)], class_names, fontsize=8)
    ax.set_xticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure
