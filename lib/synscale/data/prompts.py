"""Class prompts in every configuration of the paper (Fan et al., sec. 3.1 and appendix A.2).

``make_prompts(config, classes, n_per_class, seed, ...)`` returns a :class:`PromptSet`: ``n_per_class`` prompts for
each class, in label order, drawn deterministically from ``seed``. A prompt set is a plain TSV file
(``label<TAB>class<TAB>prompt``) via :meth:`PromptSet.save` / :func:`load`.

| config | prompt for ``tench`` (paper) | source here |
|---|---|---|
| ``classnames`` | ``tench`` | the class name |
| ``classnames_description`` | ``tench, freshwater dace-like game fish ...`` | WordNet gloss |
| ``classnames_hypernyms`` | ``tench, Tinca tinca, cyprinid, cyprinid fish`` | other lemmas + the hypernyms' lemmas |
| ``word2sen`` | ``a tench with fish in the distance.`` | paper: T5 word-to-sentence; mini: :func:`word2sen_offline` |
| ``clip_templates_7`` / ``_80`` | ``a photo of the large tench`` | open_clip's template sets, one drawn per image |
| ``in_captions`` | ``tench, a man holding a fish`` | class name + the caption of a real training image of the class |
| ``classnames_description_places`` | ``tench, <gloss> inside <place>`` | + a Places365 scene drawn per image |
| ``classnames_hypernyms_places`` | ``tench, <hypernyms> inside <place>`` | + a Places365 scene drawn per image |

The ``... inside <place>`` form follows the paper's source for these two configurations (Sariyildiz et al., "Fake
it till you make it", prompts ``c, d_c inside b``).
"""
from __future__ import annotations

import csv
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synscale.data.weights import path as weights_path
from synscale.data.world import text as T
from synscale.runtime import integrity
from synscale.runtime.paths import cache_dir

CONFIGS = (
    "classnames", "classnames_description", "classnames_hypernyms", "word2sen", "clip_templates_7",
    "clip_templates_80", "in_captions", "classnames_description_places", "classnames_hypernyms_places",
)
#: our config name -> the name printed in the paper's tables (``../shared/reference`` CSVs)
PAPER_NAMES = {
    "classnames": "Classnames", "classnames_description": "Classnames+Description",
    "classnames_hypernyms": "Classnames+Hypernym", "word2sen": "Word2Sen", "clip_templates_7": "CLIP Templates (7)",
    "clip_templates_80": "CLIP Templates (80)", "in_captions": "IN-Captions",
    "classnames_description_places": "Classnames+Description+Places",
    "classnames_hypernyms_places": "Classnames+Hypernym+Places",
}
WORD2SEN_PER_CLASS = 100  # the paper generates 100 sentences per class


def without_replacement(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` indices into ``n`` items, each used once before any repeats (a fresh permutation per pass): IN-Captions
    gives each real image's caption one prompt, as the paper's one prompt per ImageNet-train image (drawing with
    replacement left only ~63% of a class's captions in a set of its size)."""
    passes = -(-k // n)
    return np.concatenate([rng.permutation(n) for _ in range(passes)])[:k]


@dataclass(frozen=True)
class PromptSet:
    """``prompts[i]`` is for class ``labels[i]``; labels are in blocks of ``n_per_class``, label order. A set of
    pool captions (06: up to 371M) keeps its captions lazy (``synscale.data.samples``): ``prompts`` and ``labels``
    are then sequences read from disk a part at a time, never lists of the whole."""

    config: str
    classes: tuple[str, ...]
    labels: Sequence[int]
    prompts: Sequence[str]

    def __len__(self) -> int:
        return len(self.prompts)

    def for_class(self, label: int) -> list[str]:
        return [p for p, y in zip(self.prompts, self.labels) if y == label]

    def save(self, path: Path | str) -> Path:
        """Write ``label<TAB>class<TAB>prompt`` lines, with a header naming the config (label -1, class empty: a
        caption without a class, e.g. LAION's); to a ``.parquet`` path: columns ``label`` and ``prompt`` (the config
        and classes in its metadata), streamed, for sets too large to read whole (:func:`load` reads it lazily)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".parquet":
            from synscale.data.samples import write_columns

            write_columns(path, {"label": _as_array(self.labels), "prompt": self.prompts})
            integrity.atomic_write(path.with_suffix(".json"), json.dumps({"config": self.config,
                                                                          "classes": list(self.classes)}))
            return path
        with path.open("w", newline="", encoding="utf-8") as f:
            f.write(f"# config={self.config}\n")
            w = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            w.writerow(["label", "class", "prompt"])
            for y, p in zip(self.labels, self.prompts):
                w.writerow([int(y), self.classes[int(y)] if y >= 0 else "", p])
        return path


def _as_array(labels: Sequence[int]) -> Sequence[int]:
    return labels if isinstance(labels, np.ndarray) or not isinstance(labels, (list, tuple)) else np.asarray(labels)


def load(path: Path | str, classes: Sequence[str]) -> PromptSet:
    """Read a prompt set written by :meth:`PromptSet.save` (``classes`` gives the label order). A ``.parquet`` set
    stays on disk: its prompts and labels are read a row group at a time, as they are indexed."""
    path = Path(path)
    if path.suffix == ".parquet":
        from synscale.data.samples import ParquetColumn

        meta = json.loads(path.with_suffix(".json").read_text())
        if list(meta["classes"]) != list(classes):
            raise ValueError(f"{path}: its classes differ from the given class list (e.g. {meta['classes'][:1]})")
        return PromptSet(meta["config"], tuple(classes), ParquetColumn(path, "label"), ParquetColumn(path, "prompt"))
    with path.open(encoding="utf-8", newline="") as f:
        first = f.readline()
        if not first.startswith("# config="):
            raise ValueError(f"{path}: not a synscale prompt file (first line must be '# config=<name>')")
        rows = list(csv.DictReader(f, delimiter="\t"))
    labels = np.array([int(r["label"]) for r in rows], dtype=np.int64)
    bad = [r["class"] for r in rows if int(r["label"]) >= len(classes)
           or (int(r["label"]) >= 0 and classes[int(r["label"])] != r["class"])]  # -1: a caption without a class
    if bad:
        raise ValueError(f"{path}: class names do not match the given class list (e.g. {bad[0]!r})")
    return PromptSet(first.strip().split("=", 1)[1], tuple(classes), labels, tuple(r["prompt"] for r in rows))


# ---------------------------------------------------------------------------------------------- pieces per class
def hypernym_phrase(classname: str, synset_name: str) -> str:
    """``tench, Tinca tinca, cyprinid, cyprinid fish``: the class name, its synset's other lemmas, then every lemma
    of its direct hypernyms (the paper's example), comma-separated, without repeats."""
    syn = T.synset(synset_name)
    words = [classname] + T.lemmas(synset_name)
    for h in syn.hypernyms() + syn.instance_hypernyms():
        words += T.lemmas(h.name())
    seen: set[str] = set()
    return ", ".join(w for w in words if not (w.lower() in seen or seen.add(w.lower())))


# The offline Word2Sen stand-in: a tiny grammar of scene sentences around the class word, as the T5 model's outputs
# in the paper's example ("a tench with fish in the distance."). Context nouns come from WordNet's noun lexicon.
_W2S_FORMS = (
    "a {c} with {n} in the distance.", "a {c} next to a {n}.", "a {c} and a {n} on a table.",
    "someone holding a {c} near the {n}.", "a {c} lying beside a {n}.", "the {c} in front of a {n}.",
    "a close-up of a {c} and some {n}.", "a {c} under the {n}.", "a {c} on display with a {n}.",
    "there is a {c} by the {n}.",
)


@functools.cache
def _context_nouns() -> tuple[str, ...]:
    """Common concrete nouns from WordNet (artifact/object/plant/animal/food lexicographer files), single words.
    Scanning WordNet's sense counts takes ~20 s, so the list is kept in ``<cache>/text/`` after the first call."""


    f = cache_dir() / "text" / "word2sen_context_nouns_v1.json"
    cached = integrity.load_json(f, "cached WordNet noun list")
    if cached is not None:
        return tuple(cached)
    wn = T.wordnet()
    keep = {"noun.artifact", "noun.object", "noun.plant", "noun.animal", "noun.food"}
    nouns = sorted({l.name() for s in wn.all_synsets("n") if s.lexname() in keep for l in s.lemmas()
                    if l.name().isalpha() and l.name().islower() and l.count() >= 5})
    integrity.save_json(f, nouns)
    return tuple(nouns)


def word2sen_offline(classname: str, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` sentences around ``classname`` (mini stand-in for the paper's T5 word-to-sentence model)."""
    nouns = _context_nouns()
    return [_W2S_FORMS[rng.integers(len(_W2S_FORMS))].format(c=classname, n=nouns[rng.integers(len(nouns))])
            for _ in range(n)]


def word2sen_t5(model_path: str, max_new_tokens: int = 32) -> Callable[[str, int, np.random.Generator], list[str]]:
    """The paper's Word2Sen: a T5 word-to-sentence model (local folder / HF cache) through transformers.

    Returns a function with :func:`word2sen_offline`'s signature; sampling is seeded from ``rng``.
    """
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer


    path = str(weights_path(model_path, "word2sen"))
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True).eval()

    @torch.no_grad()
    def sentences(classname: str, n: int, rng: np.random.Generator) -> list[str]:
        torch.manual_seed(int(rng.integers(2**31)))
        ids = tok([classname] * n, return_tensors="pt").input_ids
        out = model.generate(ids, do_sample=True, top_p=0.95, max_new_tokens=max_new_tokens)
        return tok.batch_decode(out, skip_special_tokens=True)

    return sentences


# ------------------------------------------------------------------------------------------------------ prompts
def make_prompts(config: str, classes: Sequence[str], n_per_class: int, seed: int = 0, *,
                 synsets: Sequence[str] | None = None, captions: Sequence[Sequence[str]] | None = None,
                 word2sen: Callable[[str, int, np.random.Generator], list[str]] = word2sen_offline) -> PromptSet:
    """``n_per_class`` prompts per class in configuration ``config`` (one of :data:`CONFIGS`).

    ``synsets``: WordNet synset name per class (description/hypernym configs; default: the mini world's, or
    ImageNet's via their wnids). ``captions``: per class, captions of real training images of that
    class (``in_captions``; paper: BLIP-2 captions of ImageNet-train, mini: the world's captions of the curated
    train images). Per-image random choices (template, caption, place, sentence) come from ``seed`` alone.
    """
    if config not in CONFIGS:
        raise ValueError(f"unknown prompt config {config!r}; known: {', '.join(CONFIGS)}")
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    classes = tuple(classes)
    needs_syn = "description" in config or "hypernyms" in config
    if needs_syn:
        synsets = list(synsets) if synsets is not None else _default_synsets(classes)
        if len(synsets) != len(classes):
            raise ValueError(f"{len(synsets)} synsets for {len(classes)} classes: give one synset per class")
    if config == "in_captions":
        if captions is None or len(captions) != len(classes) or any(len(c) == 0 for c in captions):
            raise ValueError("in_captions needs captions=[captions of real training images of class c, for each c]")
    rng = np.random.default_rng([seed, CONFIGS.index(config)])
    places = T.places365() if config.endswith("_places") else None
    prompts: list[str] = []
    for c, name in enumerate(classes):
        if config == "classnames":
            ps = [name] * n_per_class
        elif config.startswith("classnames_description"):
            ps = [f"{name}, {T.gloss(synsets[c])}"] * n_per_class
        elif config.startswith("classnames_hypernyms"):
            ps = [hypernym_phrase(name, synsets[c])] * n_per_class
        elif config == "word2sen":
            pool = word2sen(name, WORD2SEN_PER_CLASS, rng)
            ps = [pool[i] for i in rng.integers(len(pool), size=n_per_class)]
        elif config.startswith("clip_templates"):
            filled = T.fill_templates(int(config.rsplit("_", 1)[1]), name)
            ps = [filled[i] for i in rng.integers(len(filled), size=n_per_class)]
        else:  # in_captions: each real image's caption once (the paper: one prompt per ImageNet-train image)
            caps = captions[c]
            ps = [f"{name}, {caps[i]}" for i in without_replacement(len(caps), n_per_class, rng)]
        if places is not None:
            ps = [f"{p} inside {places[i]}" for p, i in zip(ps, rng.integers(len(places), size=n_per_class))]
        prompts += ps
    labels = np.repeat(np.arange(len(classes)), n_per_class)
    return PromptSet(config, classes, labels, tuple(prompts))


def _default_synsets(classes: tuple[str, ...]) -> list[str]:
    mini = T.class_synsets()
    if all(c in mini for c in classes):
        return [mini[c] for c in classes]
    wnids = {n: w for w, n in T.imagenet_classes()}
    if all(c in wnids for c in classes):  # ImageNet's classes (all 1000 or a subset), via their wnids
        return [T.imagenet_synset(wnids[c]).name() for c in classes]
    raise ValueError("no WordNet synsets known for these classes: pass synsets=[one synset name per class]")


def class_captions(captions: Sequence[str], labels: np.ndarray, num_classes: int) -> list[list[str]]:
    """Group image captions by their image's label: the ``captions`` argument of ``in_captions``."""
    out: list[list[str]] = [[] for _ in range(num_classes)]
    for cap, y in zip(captions, labels):
        out[int(y)].append(cap)
    return out


def word2sen_writer(name: str = "offline") -> Callable[[str, int, np.random.Generator], list[str]]:
    """The Word2Sen sentence writer by name: ``"offline"`` (:func:`word2sen_offline`, the mini world's grammar) or
    T5 weights (``paper:word2sen``, a cached repo id or a folder: :func:`word2sen_t5`, loaded once)."""
    return word2sen_offline if name == "offline" else _word2sen_t5_cached(name)


@functools.lru_cache(maxsize=2)
def _word2sen_t5_cached(name: str):
    return word2sen_t5(name)


def for_world(config: str, world, n_per_class: int, seed: int = 0, word2sen: str = "offline") -> PromptSet:
    """A prompt set for a world's classes; ``in_captions`` uses the world's captions of its curated real ``train``
    images (mini: the world's web-like captions; a folder world: its BLIP-2 captions of ImageNet-train). A world
    that knows its classes' synsets (``synsets()``, the folder world's wnids) gives them to the WordNet configs;
    ``word2sen`` names the Word2Sen writer (:func:`word2sen_writer`)."""
    captions = None
    if config == "in_captions":
        _, y = world.split("train")
        captions = class_captions(world.captions("train"), y, len(world.classes))
    needs_syn = "description" in config or "hypernyms" in config
    synsets = world.synsets() if needs_syn and hasattr(world, "synsets") else None
    writer = word2sen_writer(word2sen) if config == "word2sen" else word2sen_offline
    return make_prompts(config, world.classes, n_per_class, seed, synsets=synsets, captions=captions, word2sen=writer)
