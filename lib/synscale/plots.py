"""Figures shared by the notebooks (matplotlib; arrays in, figures out)."""
from __future__ import annotations

import numpy as np


def image_grid(images: np.ndarray, labels: np.ndarray, class_names: list[str], per_class: int = 8,
               title: str | None = None, scale: float = 0.55):
    """Rows = classes, columns = the first ``per_class`` images of each class (uint8 grey or RGB)."""
    import matplotlib.pyplot as plt

    n = len(class_names)
    fig, axes = plt.subplots(n, per_class, figsize=(per_class * scale + 1.6, n * scale + 0.4), squeeze=False)
    for c in range(n):
        idx = np.flatnonzero(labels == c)[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j < len(idx):
                ax.imshow(images[idx[j]], cmap="gray", vmin=0, vmax=255)
        axes[c, 0].set_ylabel(class_names[c], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig
