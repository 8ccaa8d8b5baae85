"""Offline text resources for the mini world: WordNet 3.0, ImageNet-1k class metadata, CLIP templates, Places365.

Everything here works without network access:

* **WordNet 3.0** comes from the Debian packages ``wordnet-base`` + ``wordnet-sense-index``
  (``/usr/share/wordnet/``; ``SYNSCALE_WORDNET_DIR`` overrides). :func:`wordnet` copies those files once into
  ``<cache>/nltk_data/corpora/wordnet/``, adds the ``lexnames`` file Debian omits, and returns an nltk reader.
* **ImageNet-1k** wnids come from timm's ``timm/data/_info/imagenet_synsets.txt``, class names from open_clip's
  ``zero_shot_metadata.IMAGENET_CLASSNAMES`` (same order, the usual CLIP names).
* **CLIP prompt templates** are open_clip's 80 OpenAI ImageNet templates and its 7 "simple" ones.
* **Places365** scene names are vendored in ``resources/places365.txt`` (see ``resources/SOURCES.md``).

timm and open_clip data files are read from the installed packages *without importing them* (importing either
pulls in torch); this module itself only needs the standard library, and nltk for the WordNet functions.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from synscale.data.world import classes
from synscale.runtime import paths

if TYPE_CHECKING:  # pragma: no cover
    from nltk.corpus.reader.wordnet import Synset, WordNetCorpusReader

__all__ = [
    "wordnet",
    "synset",
    "gloss",
    "hypernyms",
    "lemmas",
    "class_synsets",
    "imagenet_classes",
    "imagenet_index",
    "imagenet_synset",
    "clip_templates",
    "fill_templates",
    "places365",
]

#: Where Debian's wordnet-base / wordnet-sense-index install WordNet 3.0.
DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")

#: WordNet 3.0's lexicographer files (``lexnames(5WN)``): number, name, syntactic category (1 n, 2 v, 3 a, 4 r).
LEXNAMES = [
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4),
    ("noun.Tops", 1), ("noun.act", 1), ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1),
    ("noun.body", 1), ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1),
    ("noun.food", 1), ("noun.group", 1), ("noun.location", 1), ("noun.motive", 1), ("noun.object", 1),
    ("noun.person", 1), ("noun.phenomenon", 1), ("noun.plant", 1), ("noun.possession", 1), ("noun.process", 1),
    ("noun.quantity", 1), ("noun.relation", 1), ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1),
    ("noun.time", 1),
    ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2), ("verb.competition", 2),
    ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2), ("verb.emotion", 2), ("verb.motion", 2),
    ("verb.perception", 2), ("verb.possession", 2), ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2),
    ("adj.ppl", 3),
]

_RESOURCES = Path(__file__).resolve().parent / "resources"


# --------------------------------------------------------------------------------------------------- WordNet


def _wordnet_source() -> Path:
    """The Debian WordNet directory (``SYNSCALE_WORDNET_DIR`` overrides); one-line error if it is incomplete."""
    src = Path(os.environ.get("SYNSCALE_WORDNET_DIR", DEFAULT_WORDNET_DIR))
    if not ((src / "data.noun").is_file() and (src / "index.sense").is_file()):
        raise FileNotFoundError(
            f"WordNet not found at {src}: install the Debian packages wordnet-base and wordnet-sense-index "
            "(sudo apt-get install wordnet-base wordnet-sense-index)"
        )
    return src


def _nltk_data_dir(src: Path) -> Path:
    """``<cache>/nltk_data`` holding ``corpora/wordnet/`` (the Debian files + ``lexnames``); built once, atomically."""
    root = paths.cache_dir() / "nltk_data"
    target = root / "corpora" / "wordnet"
    if (target / "lexnames").is_file():
        return root
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    try:
        for f in src.iterdir():
            if f.is_file():
                shutil.copyfile(f, tmp / f.name)
        (tmp / "lexnames").write_text(
            "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES))
        )
        tmp.chmod(0o755)  # mkdtemp makes it 0700; the cache is shared
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race; its copy is as good as ours
            if not (target / "lexnames").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


@functools.cache
def wordnet() -> WordNetCorpusReader:
    """The WordNet 3.0 reader (nltk), built from the Debian files; cached per process.

    Raises ``FileNotFoundError`` (one line, with the apt-get command) when the Debian packages are missing.
    """
    src = _wordnet_source()
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _WordNet30Reader(WordNetCorpusReader):  # type: ignore[misc]
        def map_wn(self, version: str = "wordnet") -> None:
            # nltk maps the loaded WordNet onto WordNet 3.0 sense keys for OMW data; ours *is* 3.0 and there
            # is no OMW offline, so that identity map only costs ~2/3 of the load time. Skip it.
            return None

    root = _nltk_data_dir(src)
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    with warnings.catch_warnings():  # "multilingual functions are not available": expected, no OMW offline
        warnings.simplefilter("ignore", UserWarning)
        return _WordNet30Reader(str(root / "corpora" / "wordnet"), None)


def _readable(lemma_name: str) -> str:
    return lemma_name.replace("_", " ")


def synset(synset_name: str) -> Synset:
    """The nltk synset for a ``name.pos.nn`` string, e.g. ``synset("dress.n.01")``."""
    return wordnet().synset(synset_name)


def gloss(synset_name: str) -> str:
    """The synset's definition, e.g. ``gloss("dress.n.01")`` -> ``"a one-piece garment for a woman; ..."``."""
    return synset(synset_name).definition()


def lemmas(synset_name: str) -> list[str]:
    """The synset's lemma names, readable (underscores -> spaces), WordNet's order (most frequent first)."""
    return [_readable(n) for n in synset(synset_name).lemma_names()]


def hypernyms(synset_name: str, depth: int = 1) -> list[str]:
    """Names of the hypernyms up to ``depth`` levels above the synset, nearest first.

    Each hypernym synset (instance hypernyms included) contributes its first lemma, readable; a level with
    several hypernyms lists them all; duplicates are dropped. ``hypernyms("sandal.n.01")`` -> ``["shoe"]``.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    seen: set[str] = set()
    out: list[str] = []
    level = [synset(synset_name)]
    for _ in range(depth):
        level = [h for s in level for h in s.hypernyms() + s.instance_hypernyms()]
        for h in level:
            if h.name() not in seen:
                seen.add(h.name())
                out.append(_readable(h.lemma_names()[0]))
        if not level:
            break
    return out


def class_synsets() -> dict[str, str]:
    """The mini world's class name -> WordNet synset name (``classes.NAMES`` -> ``classes.SYNSETS``), label order."""
    return dict(zip(classes.NAMES, classes.SYNSETS, strict=True))


# --------------------------------------------------------------------------------------------------- ImageNet / CLIP


def _package_dir(name: str) -> Path:
    """An installed package's directory, found without importing it (timm/open_clip import torch)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def _zero_shot_metadata() -> ModuleType:
    """open_clip's ``zero_shot_metadata.py`` (plain data, no imports) loaded standalone, without torch."""
    path = _package_dir("open_clip") / "zero_shot_metadata.py"
    spec = importlib.util.spec_from_file_location("_synscale_open_clip_zero_shot_metadata", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _imagenet_classes() -> tuple[tuple[str, str], ...]:
    wnids = (_package_dir("timm") / "data" / "_info" / "imagenet_synsets.txt").read_text().split()
    names = list(_zero_shot_metadata().IMAGENET_CLASSNAMES)
    if len(wnids) != 1000 or len(names) != 1000:
        raise RuntimeError(f"expected 1000 ImageNet classes, got {len(wnids)} wnids and {len(names)} names")
    return tuple(zip(wnids, names))


def imagenet_classes() -> list[tuple[str, str]]:
    """ImageNet-1k ``(wnid, name)`` in label order: timm's wnids, open_clip's CLIP class names.

    ``imagenet_classes()[0]`` -> ``("n01440764", "tench")``.
    """
    return list(_imagenet_classes())


def imagenet_index(wnid: str) -> int:
    """A wnid's ImageNet-1k label (0..999): the index of its class folder in the release's sorted order, which is
    also how ImageNet-V2 names its folders (``n01440764`` -> 0)."""
    index = {w: i for i, (w, _) in enumerate(_imagenet_classes())}
    if wnid not in index:
        raise ValueError(f"{wnid} is not one of ImageNet-1k's 1000 classes")
    return index[wnid]


def imagenet_synset(wnid: str) -> Synset:
    """The WordNet noun synset of an ImageNet wnid (``"n01440764"`` -> ``Synset('tench.n.01')``)."""
    if not (len(wnid) == 9 and wnid[0] == "n" and wnid[1:].isdigit()):
        raise ValueError(f"not a WordNet noun id like 'n01440764': {wnid!r}")
    return wordnet().synset_from_pos_and_offset("n", int(wnid[1:]))


_TEMPLATE_SETS = {80: "OPENAI_IMAGENET_TEMPLATES", 7: "SIMPLE_IMAGENET_TEMPLATES"}


def _template_callables(n: int) -> tuple[Callable[[str], str], ...]:
    if n not in _TEMPLATE_SETS:
        raise ValueError(f"clip templates: n must be one of {sorted(_TEMPLATE_SETS)} (OpenAI's 80, open_clip's "
                         f"simple 7), got {n!r}")
    return tuple(getattr(_zero_shot_metadata(), _TEMPLATE_SETS[n]))


def clip_templates(n: int) -> list[str]:
    """CLIP zero-shot prompt templates as ``str.format`` strings with one ``{}`` for the class name.

    ``n=80``: OpenAI's ImageNet ensemble; ``n=7``: open_clip's SIMPLE subset. open_clip stores them as
    lambdas (``lambda c: f'a photo of a {c}.'``); here they are rendered with ``"{}"``, so
    ``t.format(name)`` gives the same prompt. Any other ``n`` raises ``ValueError``.
    """
    return [t("{}") for t in _template_callables(n)]


def dataset_templates(task: str) -> list[str]:
    """CLIP's own zero-shot templates of a downstream set (``aircraft``: "a photo of a {}, a type of aircraft.") as
    ``str.format`` strings, from CLIP_benchmark's English templates (``resources/clip_dataset_templates.json``, MIT):
    Fan et al. sec. 5 follow CLIP's per-dataset prompts. An unknown task raises with the known ones."""
    import json
    from pathlib import Path

    table = json.loads((Path(__file__).resolve().parents[2] / "resources" / "clip_dataset_templates.json").read_text())
    if task not in table or task.startswith("_"):
        known = ", ".join(k for k in table if not k.startswith("_"))
        raise ValueError(f"no CLIP templates for task {task!r}; known: {known}")
    return [t.replace("{c}", "{}") for t in table[task]]


def fill_templates(n: int, classname: str) -> list[str]:
    """The ``n`` CLIP templates (80 or 7, see :func:`clip_templates`) filled with ``classname``."""
    return [t(classname) for t in _template_callables(n)]


# --------------------------------------------------------------------------------------------------- Places365


def _readable_scene(raw: str) -> str:
    """``"/b/bakery/shop"`` or ``"bakery/shop"`` -> ``"bakery shop"``; ``"airplane_cabin"`` -> ``"airplane cabin"``."""
    parts = [p for p in raw.strip().split("/") if p]
    if raw.startswith("/") and len(parts) > 1 and len(parts[0]) == 1:  # original "/a/airfield" layout
        parts = parts[1:]
    return " ".join(parts).replace("_", " ")


@functools.cache
def _places365() -> tuple[str, ...]:
    lines = [ln for ln in (_RESOURCES / "places365.txt").read_text().splitlines() if ln.strip()]
    return tuple(_readable_scene(ln) for ln in lines)


def places365() -> list[str]:
    """The 365 Places365 scene categories, readable (``"bakery/shop"`` -> ``"bakery shop"``), label order."""
    return list(_places365())
