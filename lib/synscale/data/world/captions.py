"""Web-like, noisy captions for real images, built from what each image shows (the LAION analog's alt-text).

Each caption is made from the image's own measured attributes (tone, pattern, cut) and a noun for its class
(the class name, a synonym, or a hypernym that avoids the class name), dressed in alt-text templates. Some
captions carry no class word, some name a wrong class and some are junk file names, as on the web. Everything
is seeded: the same images and seed give the same captions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synscale.data.world.classes import NAMES, SYNONYMS

TONE = {"dark": ["dark", "black", "charcoal", "navy"], "mid": ["grey", "muted", "mid-tone"],
        "light": ["light", "white", "pale", "cream"]}
PATTERN = {"patterned": ["patterned", "printed", "textured"], "plain": ["plain", "solid", "simple"]}
CUT = {"wide": ["wide", "loose", "oversized"], "slim": ["slim", "fitted", "narrow"],
       "regular": ["classic", "casual", "everyday"]}
GENERIC = ["clothing item", "fashion piece", "product", "garment", "wardrobe staple", "accessory"]
TEMPLATES = [
    "{tone} {noun}", "a {tone} {noun} for sale", "{noun}, {tone}, {pattern}", "women's {cut} {noun} in {tone}",
    "new {pattern} {noun} - free shipping", "photo of a {tone} {pattern} {noun}", "{cut} {tone} {noun}",
    "{noun} {tone} size m", "best {cut} {noun} deals", "men's {pattern} {noun}, {tone}",
    "a {cut}, {pattern} {noun} on a black background", "{tone} {noun} | summer collection",
]
JUNK = ["IMG_{n}.jpg", "untitled {n}", "DSC{n}", "product {n}", "image {n}"]


@dataclass(frozen=True)
class Attributes:
    tone: np.ndarray      # "dark" | "mid" | "light"
    pattern: np.ndarray   # "patterned" | "plain"
    cut: np.ndarray       # "wide" | "slim" | "regular"


def attributes(images: np.ndarray) -> Attributes:
    """Measured visual attributes of uint8 images [N, H, W] (bright object on dark background)."""
    x = images.astype(np.float32)
    fg = x > 30
    n_fg = np.maximum(fg.sum(axis=(1, 2)), 1)
    mean = (x * fg).sum(axis=(1, 2)) / n_fg
    std = np.sqrt(((x - mean[:, None, None]) ** 2 * fg).sum(axis=(1, 2)) / n_fg)
    cols, rows = fg.any(axis=1), fg.any(axis=2)
    width = cols.sum(axis=1) / np.maximum(rows.sum(axis=1), 1)  # bounding-box aspect (w / h)
    tone = np.where(mean < 110, "dark", np.where(mean < 170, "mid", "light"))
    pattern = np.where(std > 55, "patterned", "plain")
    cut = np.where(width > 1.15, "wide", np.where(width < 0.75, "slim", "regular"))
    return Attributes(tone, pattern, cut)


@dataclass(frozen=True)
class CaptionNoise:
    p_synonym: float = 0.35   # a synonym instead of the class name
    p_generic: float = 0.12   # no class word at all ("a dark garment")
    p_wrong: float = 0.05     # another class's noun
    p_junk: float = 0.03      # a file name, nothing else


def build_captions(images: np.ndarray, labels: np.ndarray, seed: int = 0,
                   noise: CaptionNoise = CaptionNoise()) -> tuple[list[str], dict[str, np.ndarray]]:
    """One caption per image, and per-caption flags: ``kind`` in {name, synonym, generic, wrong, junk}."""
    rng = np.random.default_rng(seed)  # drawn image by image: captions of a prefix = prefix of the captions
    att = attributes(images)
    cuts = np.cumsum([noise.p_junk, noise.p_wrong, noise.p_generic, noise.p_synonym])
    kinds = ("junk", "wrong", "generic", "synonym", "name")
    kind = np.empty(len(labels), dtype=object)
    out = []
    for i, y in enumerate(labels):
        k = kind[i] = kinds[int(np.searchsorted(cuts, rng.random(), side="right"))]
        if k == "junk":
            out.append(JUNK[rng.integers(len(JUNK))].format(n=rng.integers(1000, 9999)))
            continue
        if k == "wrong":
            noun = NAMES[(y + rng.integers(1, len(NAMES))) % len(NAMES)]
        elif k == "generic":
            noun = GENERIC[rng.integers(len(GENERIC))]
        elif k == "synonym":
            noun = SYNONYMS[y][1 + rng.integers(len(SYNONYMS[y]) - 1)]
        else:
            noun = NAMES[y]
        words = {
            "tone": TONE[att.tone[i]][rng.integers(len(TONE[att.tone[i]]))],
            "pattern": PATTERN[att.pattern[i]][rng.integers(len(PATTERN[att.pattern[i]]))],
            "cut": CUT[att.cut[i]][rng.integers(len(CUT[att.cut[i]]))],
        }
        out.append(TEMPLATES[rng.integers(len(TEMPLATES))].format(noun=noun, **words))
    return out, {"kind": kind.astype(str), "tone": att.tone, "pattern": att.pattern, "cut": att.cut}
