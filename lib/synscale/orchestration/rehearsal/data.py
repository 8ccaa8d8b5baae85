"""The data half of the rehearsal: every data root the ``paper`` profiles read, in its real on-disk layout, filled
with a few of the mini world's images (Fashion-MNIST garments, re-encoded as RGB JPEGs of odd sizes, as web and
ImageNet images are).

- ``imagenet`` (``SYNSCALE_IMAGENET``): ``train|val/<wnid>/*.JPEG``, ``sketch/``, ``rendition/`` and ``a/`` (ImageNet-R
  and -A: 200-class subsets), ``v2/<0..999>/`` (ImageNet-V2's release folders), ``classes.txt``. Here 10 real
  ImageNet-1k classes (T-shirt … cowboy boot), R and A on 4 classes each.
- ``laion400m``, ``laion2b``, ``cc12m``, ``cc3m`` (``SYNSCALE_LAION``, ``SYNSCALE_LAION2B``, ``SYNSCALE_CC12M``,
  ``SYNSCALE_CC3M``): img2dataset's
  output, ``00000.tar`` (``jpg``, ``txt``, ``json``), ``00000.parquet``, ``00000_stats.json``. Here mini pool pairs;
  the LAION-2B pool captions aircraft.
- ``fgvc-aircraft-2013b`` (the source of ``SYNSCALE_AIRCRAFT``): ``data/images/*.jpg``, ``data/variants.txt``,
  ``data/images_variant_{train,val,test}.txt``. Here 6 real variants.
- ``probes`` (``SYNSCALE_PROBES``), ``zeroshot`` (``SYNSCALE_ZEROSHOT``): ``<task>/{train,test}/<class>/*`` for every
  task the profiles name, 3 classes each.
- ``retrieval`` (``SYNSCALE_RETRIEVAL``): ``<set>/captions.tsv`` and its images (5 captions per image, as COCO),
  for mscoco, flickr8k and flickr30k.
- ``metaclip/metadata.json`` (``SYNSCALE_METACLIP_METADATA``): a JSON list of entries; here the stand-in LLMs'
  frequent words.

What a user computes from their data (BLIP-2 captions of ImageNet-train, the aircraft class folders) is not written
here: the rehearsal runs the same commands a user runs (``synscale.orchestration.rehearsal.cli.prepare``).
"""
from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synscale.data.world import load
from synscale.data.world.classes import NAMES
from synscale.data.world.text import imagenet_index
from synscale.orchestration.rehearsal.models import _words

#: real ImageNet-1k classes standing in for Fashion-MNIST's ten (label order of the mini world)
IMAGENET = [("n03595614", "T-shirt"), ("n03594734", "jeans"), ("n04370456", "sweatshirt"), ("n03450230", "gown"),
            ("n04479046", "trench coat"), ("n04133789", "sandal"), ("n02963159", "cardigan"),
            ("n04120489", "sneaker"), ("n04026417", "purse"), ("n03124043", "cowboy boot")]
#: images per class per split of the ImageNet stand-in (train is the "1.3M")
IMAGENET_SPLITS = {"train": 16, "val": 4, "sketch": 2, "rendition": 3, "a": 3, "v2": 3}
#: ImageNet-R and -A cover 200 of the 1000 classes: here 4 of the 10, different ones
SUBSETS = {"rendition": [0, 2, 5, 7], "a": [1, 3, 5, 8]}
#: the mini world's split each stand-in split takes its images from
SOURCE = {"train": "train", "val": "val", "sketch": "sketch", "rendition": "rendition", "a": "heldout", "v2": "v2"}
#: six real FGVC-Aircraft variants (of 100) and how web captions name them
AIRCRAFT = ["707-320", "737-800", "A320", "A340-500", "F/A-18", "Cessna 172"]
#: every downstream task a paper profile names (05: Table A2's probes, 06: Table 1's zero-shot, 08: SynthCLIP's)
PROBE_TASKS = ["cifar10", "cifar100", "food101", "pets", "flowers", "cars", "aircraft", "dtd", "sun397", "caltech101",
               "eurosat", "resisc45", "country211", "gtsrb", "stl10"]
RETRIEVAL_SETS = ["mscoco", "flickr8k", "flickr30k"]


def _jpeg(image: np.ndarray, size: tuple[int, int]) -> bytes:
    from PIL import Image

    im = Image.fromarray(np.asarray(image)).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _sizes(rng: np.random.Generator) -> tuple[int, int]:
    """An odd, non-square image size (web images and ImageNet files are all sorts of shapes)."""
    return int(rng.integers(40, 72)), int(rng.integers(36, 64))


def _per_class(labels: np.ndarray, k: int, n: int) -> np.ndarray:
    return np.flatnonzero(labels == k)[:n]


def imagenet(out: Path, world, splits: dict[str, int] = IMAGENET_SPLITS) -> Path:
    """An ImageNet-style folder world of :data:`IMAGENET`'s classes, each split in its release's layout (train files
    named ``<wnid>_<n>.JPEG``, val ``ILSVRC2012_val_<n>.JPEG`` sorted into class folders, V2 in numeric folders)."""
    out = Path(out)
    rng = np.random.default_rng(0)
    (out / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("".join(f"{w}\t{n}\n" for w, n in IMAGENET))
    serial = 0
    for split, n in splits.items():
        x, y = world.split(SOURCE[split])
        for k, (wnid, _) in enumerate(IMAGENET):
            if split in SUBSETS and k not in SUBSETS[split]:
                continue
            folder = out / split / (str(imagenet_index(wnid)) if split == "v2" else wnid)
            folder.mkdir(parents=True, exist_ok=True)
            for j, i in enumerate(_per_class(y, k, n)):
                serial += 1
                name = {"train": f"{wnid}_{j + 1}.JPEG", "val": f"ILSVRC2012_val_{serial:08d}.JPEG",
                        "v2": f"{serial:040x}.jpeg"}.get(split, f"{split}_{j}.jpg")
                (folder / name).write_bytes(_jpeg(x[i], _sizes(rng)))
    return out


def img2dataset(out: Path, images: Sequence[np.ndarray], captions: Sequence[str], shard_size: int = 50,
                seed: int = 0) -> Path:
    """(image, caption) pairs as img2dataset writes them: per shard ``NNNNN.tar`` (``<key>.jpg``, ``.txt``,
    ``.json``), ``NNNNN.parquet`` (its samples' metadata) and ``NNNNN_stats.json``; keys are shard and index
    digits (``000010003``)."""
    import pandas as pd
    import webdataset as wds

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for s, lo in enumerate(range(0, len(captions), shard_size)):
        rows = []
        with wds.TarWriter(str(out / f"{s:05d}.tar"), mtime=0.0) as w:
            for j, i in enumerate(range(lo, min(lo + shard_size, len(captions)))):
                key = f"{s:05d}{j:04d}"
                width, height = _sizes(rng)
                meta = {"url": f"https://example.invalid/{key}.jpg", "key": key, "status": "success",
                        "error_message": None, "width": width, "height": height, "original_width": width * 4,
                        "original_height": height * 4, "caption": captions[i]}
                w.write({"__key__": key, "jpg": _jpeg(images[i], (width, height)), "txt": captions[i], "json": meta})
                rows.append(meta)
        pd.DataFrame(rows).to_parquet(out / f"{s:05d}.parquet", index=False)
        (out / f"{s:05d}_stats.json").write_text(json.dumps({"count": len(rows), "successes": len(rows),
                                                             "failed_to_download": 0, "failed_to_resize": 0}))
    return out


def aircraft_release(out: Path, world, per_split: int = 3) -> Path:
    """FGVC-Aircraft 2013b's release layout for :data:`AIRCRAFT`: ``data/images/<id>.jpg``, ``data/variants.txt``,
    ``data/images_variant_{train,val,test}.txt`` (``<id> <variant>`` lines)."""
    out = Path(out) / "data"
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    x, _ = world.split("heldout")
    (out / "variants.txt").write_text("".join(f"{v}\n" for v in AIRCRAFT))
    n = 0
    for split in ("train", "val", "test"):
        lines = []
        for v in AIRCRAFT:
            for _ in range(per_split):
                image_id = f"{1000000 + n:07d}"
                (out / "images" / f"{image_id}.jpg").write_bytes(_jpeg(x[n], _sizes(rng)))
                lines.append(f"{image_id} {v}\n")
                n += 1
        (out / f"images_variant_{split}.txt").write_text("".join(lines))
    return out.parent


def aircraft_captions(n: int, seed: int = 0, named: float = 0.45) -> list[str]:
    """Web-like captions of a LAION-2B pool for the aircraft task: most name no variant (as on LAION), a share
    ``named`` names one or two (the retrieval baseline keeps those naming exactly one; LAION-2B itself: 341k of 2B).
    Unbalanced as LAION is: the last variant (:data:`AIRCRAFT`'s Cessna 172) is named in one caption only, so 07's
    rehearsal meets a class with fewer hits than its share of the smallest size."""
    rng = np.random.default_rng(seed)
    places = ["at the airport", "on the runway", "in the sky", "at an air show", "over the clouds"]
    other = ["a red bicycle", "a bowl of soup", "two cats on a sofa", "a mountain lake", "a city street at night"]
    common, rare = AIRCRAFT[:-1], AIRCRAFT[-1]
    out = []
    for i in range(n):
        r = rng.random()
        if r < 1 - named:
            out.append(f"{other[i % len(other)]} {places[i % len(places)]}")
        elif r < 1 - named * 10 / 45:  # of those naming a variant, 7 in 9 name one and 2 in 9 name two
            out.append(f"a {common[rng.integers(len(common))]} {places[rng.integers(len(places))]}")
        else:
            a, b = rng.choice(len(common), 2, replace=False)
            out.append(f"a {common[a]} next to a {common[b]}")
    out[0] = f"a {rare} on the runway"
    return out


def task_folders(out: Path, world, tasks: Sequence[str], splits: Sequence[str], classes: int = 3, per_class: int = 3,
                 names: bool = True) -> Path:
    """``<task>/<split>/<class>/*.jpg`` for each task (probe sets: train and test; zero-shot sets: test), with a
    ``classes.txt`` naming the folders' classes."""
    out = Path(out)
    rng = np.random.default_rng(2)
    x, y = world.split("heldout")
    for t, task in enumerate(tasks):
        picked = [(t + c) % len(NAMES) for c in range(classes)]
        d = out / task
        d.mkdir(parents=True, exist_ok=True)
        if names:
            (d / "classes.txt").write_text("".join(f"class_{k:03d}\t{NAMES[k]}\n" for k in picked))
        for split in splits:
            offset = 0 if split == "train" else per_class
            for k in picked:
                folder = d / split / f"class_{k:03d}"
                folder.mkdir(parents=True, exist_ok=True)
                for j, i in enumerate(_per_class(y, k, offset + per_class)[offset:]):
                    (folder / f"{j:04d}.jpg").write_bytes(_jpeg(x[i], _sizes(rng)))
    return out


def retrieval_sets(out: Path, world, images: int = 12, captions_per_image: int = 5) -> Path:
    """``<set>/captions.tsv`` (image path relative to the set, a tab, a caption; five per image as in COCO) and the
    images, for each of :data:`RETRIEVAL_SETS`."""
    out = Path(out)
    rng = np.random.default_rng(3)
    x, _ = world.split("v2")
    caps = world.captions("v2")
    for s, name in enumerate(RETRIEVAL_SETS):
        d = out / name
        (d / "images").mkdir(parents=True, exist_ok=True)
        lines = []
        for j in range(images):
            i = s * images + j
            rel = f"images/{name}_{j:05d}.jpg"
            (d / rel).write_bytes(_jpeg(x[i], _sizes(rng)))
            lines += [f"{rel}\t{caps[i]}{'' if c == 0 else f' ({c})'}\n" for c in range(captions_per_image)]
        (d / "captions.tsv").write_text("".join(lines))
    return out


def metaclip_metadata(out: Path, n: int = 2000) -> Path:
    """MetaCLIP's ``metadata.json`` shape (a JSON list of entry strings), standing in for its 500k entries: the
    ``n`` most frequent words of the stand-in LLMs' vocabulary (``rehearsal.models``), so that their random
    captions name some entries, as real captions of a concept name it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(sorted(set(_words()[:n]))))
    return out


#: the data roots' variables and their folders under the rehearsal root
ROOTS = {
    "SYNSCALE_IMAGENET": "data/imagenet",
    "SYNSCALE_LAION": "data/laion400m",
    "SYNSCALE_LAION2B": "data/laion2b",
    "SYNSCALE_CC12M": "data/cc12m",
    "SYNSCALE_CC3M": "data/cc3m",
    "SYNSCALE_AIRCRAFT": "data/aircraft",
    "SYNSCALE_PROBES": "data/probes",
    "SYNSCALE_ZEROSHOT": "data/zeroshot",
    "SYNSCALE_RETRIEVAL": "data/retrieval",
    "SYNSCALE_METACLIP_METADATA": "data/metaclip/metadata.json",
}
AIRCRAFT_SOURCE = "data/fgvc-aircraft-2013b"


def build_all(root: Path, pool: int = 400) -> dict[str, Path]:
    """Every data root under ``root/data`` (:data:`ROOTS`); returns variable -> path. The aircraft class folders
    (``SYNSCALE_AIRCRAFT``) and ImageNet's BLIP-2 captions are made by
    :func:`synscale.orchestration.rehearsal.cli.prepare`, as a
    user makes them."""
    root = Path(root)
    world = load()
    paths = {k: root / v for k, v in ROOTS.items()}
    imagenet(paths["SYNSCALE_IMAGENET"], world)
    x, _ = world.split("pool", pool)
    caps = world.captions("pool", pool)
    img2dataset(paths["SYNSCALE_LAION"], x, caps, shard_size=100)
    img2dataset(paths["SYNSCALE_CC12M"], x[::-1], caps[::-1], shard_size=100, seed=1)
    img2dataset(paths["SYNSCALE_CC3M"], x[1::2], caps[1::2], shard_size=100, seed=3)
    img2dataset(paths["SYNSCALE_LAION2B"], x, aircraft_captions(pool), shard_size=100, seed=2)
    aircraft_release(root / AIRCRAFT_SOURCE, world)
    task_folders(paths["SYNSCALE_PROBES"], world, PROBE_TASKS, ("train", "test"), per_class=20)  # few-shot: 5 + 15
    task_folders(paths["SYNSCALE_ZEROSHOT"], world, PROBE_TASKS, ("test",))
    retrieval_sets(paths["SYNSCALE_RETRIEVAL"], world)
    metaclip_metadata(paths["SYNSCALE_METACLIP_METADATA"])
    return paths
