"""A real image world read from class folders: ImageNet at paper scale, behind the mini world's interface.

The paper profile points ``world`` at a folder laid out as torchvision's ``ImageFolder`` expects, one folder per
split and one sub-folder per class (its WordNet id)::

    <root>/train/n01440764/*.JPEG      ImageNet-train (the "1.3M", D_I)
    <root>/val/n01440764/*.JPEG        ImageNet-val, sorted into class folders (the usual valprep layout)
    <root>/{sketch,rendition,a,v2}/... the OOD sets, same layout (ImageNet-R/-A use 200-class subsets)
    <root>/captions/train.tsv          "<path relative to root>\\t<caption>" per line: BLIP-2 captions of train
                                       (``in_captions``; written by ``synscale caption``)
    <root>/classes.txt                 optional: the wnids in the classifiers' output order (default: sorted),
                                       one per line, each optionally followed by a tab and its class name

:class:`FolderWorld` answers ``classes``, ``split(name, n)`` and ``captions(name)`` like the mini
:class:`~synscale.data.world.World`, so notebooks swap worlds, not code. Images are decoded lazily
(:class:`ImageFiles`, an array-like of uint8 RGB ``[N, S, S, 3]``: shorter side resized to ``S``, centre crop;
``S`` = 256, the size the paper stores its generated images at), so 1.3M files never sit in memory at once.
Class names come from ``classes.txt`` where it gives them, else ImageNet's (open_clip's list) for ImageNet wnids,
else the synset's first WordNet lemma, else the folder's name.
"""
from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from synscale.data.arrays import LazyImages, nested_order, square
from synscale.data.world.text import _readable, imagenet_classes, imagenet_index, imagenet_synset
from synscale.runtime.paths import expand_path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CAPTIONS = "captions"


class FolderWorldError(FileNotFoundError):
    """The folder world lacks a split, a class or a file; the message says what and how to provide it."""


class ImageFiles(LazyImages):
    """A lazy, read-only array of images on disk (``synscale.data.arrays``): ``x[i]``, ``x[a:b]``, ``x[index_array]``
    decode to uint8 ``[k, size, size, 3]`` (RGB; shorter side resized bicubically to ``size``, then centre-cropped)."""

    def __init__(self, paths: list[Path], size: int = 256):
        self.paths = list(paths)
        self.size = int(size)
        self.item_shape = (self.size, self.size, 3)

    def __len__(self) -> int:
        return len(self.paths)

    def key(self) -> str:
        """Names the images (paths and size) for caches keyed by content (``arrays.content_key``)."""
        h = hashlib.sha1(f"{self.size}\n".encode())
        for p in self.paths:
            h.update(f"{p}\n".encode())
        return h.hexdigest()[:16]

    def _read(self, i: int) -> np.ndarray:
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            return square(im, self.size)


def _imagenet_names() -> dict[str, str]:
    return dict(imagenet_classes())


def _lemma(wnid: str) -> str:
    """The first WordNet lemma of a noun wnid (``n02084071`` -> ``dog``), else the name as given."""
    from nltk.corpus.reader.wordnet import WordNetError


    try:
        return _readable(imagenet_synset(wnid).lemmas()[0].name())
    except (ValueError, WordNetError):
        return wnid.replace("_", " ")


@dataclass
class FolderWorld:
    root: Path
    seed: int = 0
    image_size: int = 256
    _files: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise FolderWorldError(f"world folder {self.root} does not exist: point `world` at an ImageNet-style "
                                   f"folder (<root>/train/<wnid>/*.JPEG, <root>/val/<wnid>/*.JPEG), or use 'mini'")

    @property
    def name(self) -> str:
        """Names the world's real splits in cache keys: the folder's name and a hash of its resolved path."""
        return f"{self.root.name}-{hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:8]}"

    @cached_property
    def _listed(self) -> list[tuple[str, str | None]]:
        """(wnid, name or None) in the classifiers' output order: ``classes.txt`` if present, else sorted folders."""
        listed = self.root / "classes.txt"
        if listed.exists():
            rows = [line.split("\t", 1) for line in listed.read_text().splitlines() if line.strip()]
            return [(r[0].strip(), r[1].strip() if len(r) > 1 else None) for r in rows]
        for split in ("train", "val", "test"):
            if (self.root / split).is_dir():
                return [(d.name, None) for d in sorted((self.root / split).iterdir()) if d.is_dir()]
        raise FolderWorldError(f"{self.root} has no train/, val/ or test/ class folders (nor classes.txt): "
                               f"lay ImageNet out as <root>/train/<wnid>/ and <root>/val/<wnid>/")

    @property
    def wnids(self) -> list[str]:
        return [w for w, _ in self._listed]

    @cached_property
    def classes(self) -> list[str]:
        imagenet = _imagenet_names()
        return [name or imagenet.get(w) or _lemma(w) for w, name in self._listed]

    def synsets(self) -> list[str]:
        """WordNet synset names of the classes, from their wnids (the description/hypernym prompt configs)."""
        return [imagenet_synset(w).name() for w in self.wnids]

    def files(self, name: str) -> tuple[list[Path], np.ndarray]:
        """The image paths of a split (class by class in ``wnids`` order, files sorted) and their labels."""
        if name not in self._files:
            d = self.root / name
            if not d.is_dir():
                raise FolderWorldError(f"split '{name}' not found: expected class folders under {d} "
                                       f"(see synscale.data.world.folder for the layout)")
            paths, labels = [], []
            for k, w in enumerate(self.wnids):
                cdir = self._class_dir(d, w)
                if cdir is None:
                    continue  # OOD sets with a class subset (ImageNet-R/-A: 200 classes)
                fs = sorted(p for p in cdir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
                paths += fs
                labels += [k] * len(fs)
            if not paths:
                raise FolderWorldError(f"split '{name}' at {d} has no images in any of the {len(self.wnids)} "
                                       f"class folders")
            self._files[name] = (paths, np.asarray(labels, dtype=np.int64))
        return self._files[name]

    @staticmethod
    def _class_dir(split_dir: Path, wnid: str) -> Path | None:
        """A class's folder in a split: named by its wnid, or — ImageNet-V2's release layout — by its ImageNet-1k
        label (``0`` … ``999``)."""
        if (split_dir / wnid).is_dir():
            return split_dir / wnid
        try:
            numeric = split_dir / str(imagenet_index(wnid))
        except ValueError:
            return None
        return numeric if numeric.is_dir() else None

    def split_classes(self, name: str) -> list[int]:
        """The labels a split has images of: all of them, or a subset (ImageNet-R and -A cover 200 of the 1000
        classes, and are scored over those classes' outputs only, as their authors score them)."""
        return sorted(set(self.files(name)[1].tolist()))

    def split(self, name: str, n: int | None = None) -> tuple[ImageFiles, np.ndarray]:
        """Lazy images and labels of a split in ``arrays.nested_order`` (classes interleaved), so ``n`` takes a
        class-balanced prefix and a smaller ``n`` is a prefix of a larger one, as in the mini world."""
        paths, labels = self.files(name)
        idx = nested_order(labels)[:n]
        return ImageFiles([paths[i] for i in idx], self.image_size), labels[idx]

    def captions(self, name: str, n: int | None = None) -> list[str]:
        """Captions of a split's images, in ``split(name, n)`` order, from ``<root>/captions/<name>.tsv``."""
        f = self.root / CAPTIONS / f"{name}.tsv"
        if not f.exists():
            raise FolderWorldError(
                f"no captions for split '{name}' ({f} is missing): caption it once with BLIP-2, "
                f"`synscale caption --root {self.root} --split {name} --model <BLIP-2 folder>`")
        table = dict(line.split("\t", 1) for line in f.read_text().splitlines() if "\t" in line)
        images, _ = self.split(name, n)
        rel = [str(p.relative_to(self.root)) for p in images.paths]
        missing = [r for r in rel if r not in table]
        if missing:
            raise FolderWorldError(f"{f} has no caption for {len(missing)} of {len(rel)} images (e.g. {missing[0]}): "
                                   f"re-run the caption command, it fills in what is missing")
        return [table[r].strip() for r in rel]


def _task_world(root: Path | str, task: str, image_size: int) -> FolderWorld:
    """``<root>/<task>`` (``~`` and ``${VAR:-default}`` expand) as a folder world of its splits."""
    return FolderWorld(Path(expand_path(str(root))) / task, image_size=image_size)


def probe_task(root: Path | str, task: str, image_size: int = 256, n: int | None = None
               ) -> tuple[ImageFiles, np.ndarray, ImageFiles, np.ndarray]:
    """A downstream linear-probe data set by folder (the paper's Table A2 sets, appendix A.3):
    ``<root>/<task>/{train,test}/<class>/*`` -> lazy ``(x_train, y_train, x_test, y_test)``, each split capped at
    a class-balanced prefix of ``n`` (all when None)."""
    w = _task_world(root, task, image_size)
    return (*w.split("train", n), *w.split("test", n))


def zero_shot_task(root: Path | str, task: str, image_size: int = 224, n: int | None = None
                   ) -> tuple[ImageFiles, np.ndarray, list[str]]:
    """A zero-shot test set by folder (Fan et al. Table 1's 15 sets): ``<root>/<task>/test/<class>/*`` ->
    lazy ``(images, labels, class names)``, ``n`` a class-balanced prefix. Class names come from
    ``<root>/<task>/classes.txt`` (``<folder><TAB><name>``) where given, else from the folder names."""
    w = _task_world(root, task, image_size)
    return (*w.split("test", n), w.classes)


def retrieval_set(root: Path | str, name: str, image_size: int = 224, n: int | None = None
                  ) -> tuple[ImageFiles, list[str], np.ndarray]:
    """An image-text retrieval test set by folder (MS-COCO / Flickr, SynthCLIP's retrieval tasks):
    ``<root>/<name>/captions.tsv`` lines ``<image path relative to that folder><TAB><caption>``, several lines per
    image allowed (COCO has 5 captions each) -> lazy ``(images, texts, text_to_image)`` over the first ``n`` images
    in file order, ``text_to_image[t]`` the image caption ``t`` describes."""
    d = Path(expand_path(str(root))) / name
    f = d / "captions.tsv"
    if not f.exists():
        raise FolderWorldError(f"retrieval set '{name}' has no {f}: write '<image path>\\t<caption>' lines there, "
                               f"one per caption (see synscale.data.world.folder.retrieval_set)")
    rows = [line.split("\t", 1) for line in f.read_text().splitlines() if "\t" in line]
    order: dict[str, int] = {}
    for rel, _ in rows:
        order.setdefault(rel, len(order))
    keep = [(order[rel], cap.strip()) for rel, cap in rows if n is None or order[rel] < n]
    paths = [d / rel for rel in order][:n]
    return ImageFiles(paths, image_size), [c for _, c in keep], np.asarray([i for i, _ in keep], dtype=np.int64)


def aircraft_folders(src: Path | str, out: Path | str) -> Path:
    """FGVC-Aircraft 2013b (``<src>/data/images/*.jpg`` and ``images_variant_{train,val,test}.txt``) as a folder
    world at ``out``: ``{train,val,test}/<variant>/`` of symbolic links to the images, and ``classes.txt`` with the
    100 variant names in ``variants.txt`` order (the retrieval baseline's downstream task, Geng et al.)."""
    src, out = Path(src).expanduser() / "data", Path(out).expanduser()
    if not (src / "variants.txt").exists():
        raise FolderWorldError(f"{src / 'variants.txt'} not found: point --src at the unpacked fgvc-aircraft-2013b")
    variants = [v.strip() for v in (src / "variants.txt").read_text().splitlines() if v.strip()]
    folder = {v: v.replace("/", "_").replace(" ", "_") for v in variants}
    for split in ("train", "val", "test"):
        for line in (src / f"images_variant_{split}.txt").read_text().splitlines():
            image, variant = line.split(" ", 1)
            d = out / split / folder[variant.strip()]
            d.mkdir(parents=True, exist_ok=True)
            link = d / f"{image}.jpg"
            if not link.exists():
                link.symlink_to((src / "images" / f"{image}.jpg").resolve())
    (out / "classes.txt").write_text("".join(f"{folder[v]}\t{v}\n" for v in variants))
    return out


def main(argv: list[str] | None = None, prog: str = "synscale prepare") -> int:
    ap = argparse.ArgumentParser(prog=prog,
                                 description="Prepare an ImageNet-style folder world for the paper profile.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("aircraft", help="FGVC-Aircraft 2013b as train/val/test class folders (notebook 07)")
    f.add_argument("--src", required=True, type=Path, help="the unpacked fgvc-aircraft-2013b folder")
    f.add_argument("--out", required=True, type=Path)
    a = ap.parse_args(argv)
    print(aircraft_folders(a.src, a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
