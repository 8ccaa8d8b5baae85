"""Downstream classification tasks of the mini world: the analog of the paper's 15 linear-probe data sets (Table A2).

Every task draws from the same fresh real images: the held-out ImageNet-A candidates the oracle classifies
*correctly* (so no image is in the ``a`` OOD split, and none was ever trained on by a classifier, generator or CLIP),
split in two halves (train / test). Tasks differ in what they ask of the frozen features:

| task   | classes | what a feature must carry | paper analog |
|--------|---------|---------------------------|--------------|
| coarse | 4 (tops, lower body and dresses, footwear, bags) | object category at a coarser grain | CIFAR-10/STL-10 |
| tone   | 3 (dark, mid, light fabric)   | intensity, not shape           | DTD / colour-driven sets |
| cut    | 3 (wide, slim, regular)       | silhouette proportions         | fine-grained shape (Cars, Aircraft) |
| sketch | 10 (the classes, as outlines) | the class under a domain shift | ImageNet-Sketch as a probe set |
| style  | 5 (rendition styles)          | rendering style, not the class | DTD / Country211-like nuisance |
"""
from __future__ import annotations

import numpy as np

from synscale.data.world import data
from synscale.data.world.captions import attributes
from synscale.data.world.classes import NAMES

TASKS = ("coarse", "tone", "cut", "sketch", "style")

#: Fashion-MNIST label → coarse group (tops; lower body & dresses; footwear; bags).
COARSE = np.array([0, 1, 0, 1, 0, 2, 0, 2, 3, 2])
COARSE_NAMES = ["top", "lower body or dress", "footwear", "bag"]
_ATTR = {"tone": ["dark", "mid", "light"], "cut": ["wide", "slim", "regular"]}


def class_names(task: str) -> list[str]:
    names = {"coarse": COARSE_NAMES, "sketch": list(NAMES), "style": list(data.RENDITION_STYLES), **_ATTR}
    if task not in names:
        raise KeyError(f"unknown downstream task '{task}'; known: {', '.join(TASKS)}")
    return names[task]


def make(task: str, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images, task labels) of the task built from real uint8 images and their class labels."""
    class_names(task)  # validates the name
    if task == "coarse":
        return images, COARSE[labels]
    if task == "sketch":
        return data.sketch(images), labels
    if task == "style":
        styles = np.random.default_rng(seed).integers(0, len(data.RENDITION_STYLES), len(images))
        return data.rendition(images, styles, seed=seed), styles.astype(np.int64)
    values = getattr(attributes(images), task)
    return images, np.array([_ATTR[task].index(v) for v in values], dtype=np.int64)
