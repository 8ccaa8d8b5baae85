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


# -- one look across the notebooks ----------------------------------------------------------------------------------
#: each family's colour map (a configuration's shade within it follows its prompt configuration and guidance); real
#: data is black everywhere, as the papers draw it
FAMILY_MAPS = {"sd": "Blues", "if": "Greens", "muse": "Oranges"}
FIXED = {"real": "#000000", "synthetic": "#1f77b4", "synthetic+real": "#9467bd"}


def colour(name: str) -> str:
    """The one colour of a data configuration (``real``, ``sd/in_captions/2``, a CLIP mode …) in every notebook:
    a stable function of its name, so a configuration keeps its colour from figure to figure."""
    import hashlib

    import matplotlib as mpl
    from matplotlib.colors import to_hex

    if name in FIXED:
        return FIXED[name]
    family = name.split("/")[0]
    cmap = mpl.colormaps[FAMILY_MAPS.get(family, "Purples")]
    shade = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF  # stable in the name
    return to_hex(cmap(0.45 + 0.5 * shade))


def palette(names) -> dict[str, str]:
    """``{name: colour(name)}`` for seaborn's ``palette=`` (every name its own colour in every figure)."""
    return {str(n): colour(str(n)) for n in dict.fromkeys(map(str, names))}


def log_ticks(ax, which: str = "both", at=None) -> None:
    """Readable log axes: on x ticks at 1, 2 and 5 per decade (or at the values ``at``: the sizes trained), on y at
    every integer step of a decade (losses span less than one), written plainly (``200``, ``0.5``), no minor
    labels."""
    from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter, NullLocator, StrMethodFormatter

    for axis in ((ax.xaxis, ax.yaxis) if which == "both" else ((ax.xaxis,) if which == "x" else (ax.yaxis,))):
        if at is not None and axis is ax.xaxis:
            axis.set_major_locator(FixedLocator(sorted(at)))
            axis.set_minor_locator(NullLocator())
        else:  # a loss axis spans less than a decade: every integer step of it, else 1-2-5
            axis.set_major_locator(LogLocator(base=10, subs=tuple(range(1, 10)) if axis is ax.yaxis else (1, 2, 5)))
        axis.set_major_formatter(StrMethodFormatter("{x:g}"))
        axis.set_minor_formatter(NullFormatter())


def fit_lines(ax, fits, ref_size: float, sizes, colours: dict[str, str], key: str = "data") -> None:
    """Each curve's fitted power law (eq. 2: L(D) = exp(−k (log D − log D_I) − performance)) over ``sizes``, in its
    colour, as the papers draw their fits through the points. ``fits``: rows with ``key``, ``k``, ``performance``."""
    grid = np.geomspace(min(sizes), max(sizes), 50)
    for r in fits.itertuples(index=False):
        name = str(getattr(r, key))
        ax.plot(grid, np.exp(-r.k * (np.log(grid) - np.log(ref_size)) - r.performance), "-", lw=1.2, alpha=0.8,
                color=colours.get(name, "grey"))
