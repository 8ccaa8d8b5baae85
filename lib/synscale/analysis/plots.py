"""Figures shared by the notebooks (matplotlib; arrays in, figures out), and the one look of every notebook's figures
and tables (:func:`house_style`)."""
from __future__ import annotations

import math
import sys

import numpy as np


def number(x: float) -> str:
    """A table's number as a reader wants it: 3 significant digits (``0.648``, ``1.33``), whole counts with
    thousands separators (``341,000``, not ``341000.0`` or ``3.41e+05``), ``—`` for a missing value."""
    if x is None or not math.isfinite(x):
        return "—"
    if abs(x) >= 1000 or (x == int(x) and abs(x) >= 100):
        return f"{x:,.0f}"
    return f"{x:.3g}"


def house_style() -> None:
    """One look for every notebook: seaborn's whitegrid theme for figures; pandas tables with :func:`number`, every
    column shown and text cells unclipped (claims and why-lines are sentences)."""
    import pandas as pd
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)
    for key, value in (("display.float_format", number), ("display.max_columns", None),
                       ("display.max_colwidth", 400), ("display.width", 250), ("display.max_rows", 120)):
        pd.set_option(key, value)
    ipython = sys.modules.get("IPython")  # loaded in a kernel; elsewhere there is no notebook to show tables in
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:  # tables shown in a notebook carry their units in the headers (the data keep their names)
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame,
                                                                 lambda df: with_units(df)._repr_html_())


#: a table column's header with its unit, for the columns the notebooks show (values stay as they are)
UNITS = {"loss": "loss (nats)", "val_loss": "val loss (nats)", "train_loss": "train loss (nats)",
         "top1": "top-1 (fraction)", "top5": "top-5 (fraction)", "k": "k (log-log slope)",
         "k_lo": "k low (95%)", "k_hi": "k high (95%)", "performance": "performance (−log L at D_I)",
         "perf_lo": "performance low (95%)", "perf_hi": "performance high (95%)", "r2": "R² (log-log)",
         "recognizability": "recognizability (macro F1)", "diversity": "diversity (feature std)",
         "seconds": "seconds", "images_per_s": "images/s", "delta_mtl": "Δ_MTL (%)"}


def with_units(df):
    """``df`` with :data:`UNITS` headers (every column level and the index names; other names as they are)."""
    out = df.rename(columns=lambda c: UNITS.get(c, c) if isinstance(c, str) else c)
    names = [UNITS.get(n, n) if isinstance(n, str) else n for n in out.index.names]
    return out.rename_axis(index=names) if names != list(out.index.names) else out


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
    ax.grid(False)  # the house style's grid would cross the images
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


# -- one look across the notebooks ----------------------------------------------------------------------------------
#: a prompt configuration's hue (tab10, in the papers' order of Table A4); a family is a lightness of it (Stable
#: Diffusion as is, Imagen/IF darker, Muse lighter) and high guidance (CFG ≥ 5) darker again; real data is black
#: everywhere, as the papers draw it
CONFIG_HUES = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
FAMILY_SHADE = {"sd": 0.0, "if": -0.35, "muse": 0.4}
FIXED = {"real": "#000000", "synthetic": "#1f77b4", "synthetic+real": "#9467bd"}
#: CLIP runs named by their data (08's ``CLIP real-400``, ``SynthCLIP-400 random`` …): the colour of their role, first
#: match wins; several runs of one role are told apart by :func:`palette` (larger data darker)
ROLES = ((" random", "#ff7f0e"), (" C_rand", "#2ca02c"), ("Mixed", "#9467bd"), ("SynthCLIP", "#1f77b4"),
         ("SynthCI", "#1f77b4"), ("real", "#000000"), ("CLIP trained on", "#000000"))


def _shade(rgb, amount: float):
    """Towards white (amount > 0) or black (amount < 0) by ``|amount|``."""
    return tuple(c + (1 - c) * amount if amount > 0 else c * (1 + amount) for c in rgb)


def colour(name: str) -> str:
    """The one colour of a data configuration (``real``, ``sd/in_captions/2``, a CLIP mode …) in every notebook:
    a function of its name alone, so a configuration keeps its colour from figure to figure. The hue says the prompt
    configuration, the lightness the family and the guidance."""
    import hashlib

    from matplotlib.colors import to_hex, to_rgb

    from synscale.data.prompts import PAPER_NAMES

    if name in FIXED:
        return FIXED[name]
    role = next((c for key, c in ROLES if key in name), None)
    if role is not None:
        return role
    family, config, cfg = (name.split("/") + ["", ""])[:3]
    order = list(PAPER_NAMES)
    i = order.index(config) if config in order else int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)
    rgb = _shade(to_rgb(CONFIG_HUES[i % len(CONFIG_HUES)]), FAMILY_SHADE.get(family, 0.2))
    try:
        high = float(cfg) >= 5
    except ValueError:
        high = False
    return to_hex(_shade(rgb, -0.4) if high else rgb)


def style(name: str) -> dict:
    """Matplotlib keywords of a configuration's line: its colour, and a marker per family (real: a filled circle)."""
    family = name.split("/")[0]
    return {"color": colour(name), "marker": {"sd": "o", "if": "s", "muse": "^"}.get(family, "o")}


def palette(names) -> dict[str, str]:
    """``{name: colour}`` for seaborn's ``palette=``: every name its :func:`colour`; names that share one (several
    sizes of one role, ``CLIP real-400`` and ``CLIP real-800``) get lighter with less data (the number in the name),
    so each still has its own colour."""
    import re

    from matplotlib.colors import to_hex, to_rgb

    names = list(dict.fromkeys(map(str, names)))
    out = {n: colour(n) for n in names}
    size = lambda n: float(m.group()) if (m := re.search(r"\d+(\.\d+)?", n)) else 0.0  # noqa: E731
    for base in set(out.values()):
        same = sorted((n for n in names if out[n] == base), key=lambda n: (-size(n), n))
        for i, n in enumerate(same[1:], 1):  # the largest keeps the base colour, the smallest is the lightest
            out[n] = to_hex(_shade(to_rgb(base), 0.65 * i / (len(same) - 1)))
    return out


def generator_palette(names) -> dict[str, str]:
    """``{name: colour}`` where the generator, not the prompt, tells the data apart (notebook 09: every curve is
    IN-Captions): each generator of the registry its own colour of a colour-blind-safe qualitative palette, in the
    registry's order (so a generator keeps its colour from run to run), ``real`` its usual colour."""
    import seaborn as sns
    from matplotlib.colors import to_hex

    from synscale.data import generators

    keys = generators.generators()  # stages (IF-II) take no colour
    colours = sns.color_palette("colorblind", len(keys))
    out = {}
    for n in map(str, names):
        family = n.split("/")[0]
        out[n] = colour(n) if family not in keys else to_hex(colours[keys.index(family)])
    return out


def log_ticks(ax, which: str = "both", at=None) -> None:
    """Readable log axes: on x ticks at 1, 2 and 5 per decade (or at the values ``at``: the sizes trained), on y at
    every integer step of a decade (losses span less than one), written plainly (``200``, ``0.5``), no minor
    labels."""
    from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter, NullLocator, StrMethodFormatter

    for axis in ((ax.xaxis, ax.yaxis) if which == "both" else ((ax.xaxis,) if which == "x" else (ax.yaxis,))):
        if at is not None and axis is ax.xaxis:
            kept: list[float] = []
            for v in sorted(at):  # labels closer than ~1/6 of a decade would overlap (8.8 and 10)
                if not kept or np.log10(v / kept[-1]) > 0.16:
                    kept.append(v)
            axis.set_major_locator(FixedLocator(kept))
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
