"""The retrieval baseline of Geng et al., *Training with Real instead of Synthetic Generated Images Still Performs
Better*: targeted real images retrieved from the generator's own upstream pool vs targeted synthetic images, both
used to adapt the upstream CLIP to a downstream class list.

Sections:

* **Retrieval** (their sec. 3 and appendix A.2). :func:`match` keeps the pool captions that contain a class name and
  labels each by the matched class, in two semantics: ``"substring"`` (the paper's definition, ``c ∈ t``) and
  ``"token"`` (what an SQLite FTS5 index with its default ``unicode61`` tokenizer matches: the name's tokens as a
  contiguous phrase of the caption's tokens, so ``sandal`` does not match ``sandals`` and ``coat`` not
  ``overcoat``). :func:`match_shards` does the same streamed over a pool stored as webdataset shards (LAION as
  img2dataset writes it), keeping only the matched samples' image offsets. :func:`domain_scores` is the CLIP
  cosine similarity of each image with a domain text ("a photo of clothing"); :func:`filter_scores` keeps
  ``score > tau``; :func:`retrievable` adds the optional per-class cap;
  :func:`per_class_subset` draws a seeded, nested subset of at most ``k`` per class (the cap, and the equal-size
  subsets of the comparison).
* **Targeted synthetic captions** (appendix A.1, after SynCLR): :func:`targeted_captions` writes captions in the
  three forms ``c → caption``, ``c, background → caption`` and ``c, relation → caption``. The paper prompts
  LLaMA-2 7B with three in-context examples per form; :class:`LLMWriter` does that with a local base LLM
  continuing :data:`LLM_PROMPTS` (validated, resumable chunks), and in the mini world an offline grammar stands in
  (:func:`offline_writer`).
* **Adaptation** (appendix B): :class:`ZeroShotHeadClassifier` is the CLIP image encoder with a linear head
  initialised from the zero-shot text classifier (weights = ``logit_scale.exp() ×`` the ``[D, C]`` classifier of
  :func:`synscale.methods.evaluate.zero_shot_classifier`, bias 0, on L2-normalised image features), so before finetuning
  its logits *are* the zero-shot logits. :func:`finetune` trains it end to end with cross-entropy (AdamW
  β = (0.9, 0.95), weight decay, linear warm-up, cosine decay) through :func:`synscale.runtime.checkpoint.train_loop`:
  deterministic by seed and resumable from its checkpoint folder; lazy images (shards, files) are decoded a batch
  at a time, in DataLoader workers if asked, on whatever device there is. :func:`image_features` gives frozen
  features; :func:`assess` scores a (possibly adapted) CLIP as the paper does: linear probing on a real downstream
  train split (:func:`synscale.methods.evaluate.linear_probe`) and zero-shot accuracy against the text classifier, from
  one encoding.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from synscale.data import arrays, metadata, samples
from synscale.data.arrays import Concat, ShardImages, Squared, Take, content_key, iter_samples
from synscale.data.prompts import PromptSet
from synscale.data.shards import list_shards
from synscale.data.world import captions as W
from synscale.methods import clip as C
from synscale.methods import evaluate as E
from synscale.methods.clip import random_crop, to_tensor
from synscale.methods.evaluate import image_features as encode
from synscale.methods.evaluate import linear_probe, zero_shot_loss
from synscale.methods.train import ddp, step_stream
from synscale.runtime import integrity, logs
from synscale.runtime.checkpoint import TrainConfig, batch_indices, torch_generator, train_loop, warmup_cosine
from synscale.runtime.distributed import default_device, dist_env, dist_init
from synscale.runtime.launch import Launcher, LaunchError, run_spec
from synscale.runtime.paths import cache_dir
from synscale.runtime.progress import bar as tqdm

log = logs.logger(__name__)

MODES = ("substring", "token")

# ---------------------------------------------------------------------------------------------------------------
# Retrieval
# ---------------------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+")  # FTS5 unicode61: runs of letters and digits; everything else separates


def tokens(text: str) -> list[str]:
    """Lower-cased tokens as SQLite FTS5's ``unicode61`` tokenizer splits them (``"T-shirt"`` -> ``["t", "shirt"]``;
    diacritics are kept here, unicode61 folds them)."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Candidates:
    """Retrieved pool items: ``index[i]`` is a position in the pool's images (:func:`match`: the caption list;
    :func:`match_shards`: its matched images), ``labels[i]`` its class."""

    index: np.ndarray
    labels: np.ndarray
    mode: str
    n_ambiguous: int = 0  # captions that named two or more classes (dropped)
    searched: int = 0  # captions searched

    def __len__(self) -> int:
        return len(self.index)

    def counts(self, num_classes: int) -> np.ndarray:
        """Items per class (the paper's "found only 341k targeted samples", per class)."""
        return np.bincount(self.labels, minlength=num_classes)

    def subset(self, keep: np.ndarray) -> Candidates:
        """The items at positions (or boolean mask) ``keep``, in their original order."""
        keep = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.sort(np.asarray(keep, dtype=np.int64))
        return Candidates(self.index[keep], self.labels[keep], self.mode, self.n_ambiguous, self.searched)


def _spans(text: str, toks: list[str], query: str, qtoks: list[str], mode: str) -> list[tuple[int, int]]:
    """Every occurrence of ``query`` in a caption as ``(start, end)``: characters (substring) or tokens (token)."""
    if mode == "substring":
        out, i = [], text.find(query)
        while i >= 0:
            out.append((i, i + len(query)))
            i = text.find(query, i + 1)
        return out
    k = len(qtoks)
    return [(i, i + k) for i in range(len(toks) - k + 1) if k and toks[i:i + k] == qtoks]


def _queries(classnames: Sequence[str], queries: Sequence[Sequence[str]] | None) -> list[tuple[int, str, list[str]]]:
    """``(class, lower-cased query, its tokens)`` for every query string (default: each class's own name)."""
    if not classnames:
        raise ValueError("need at least one class name")
    queries = [[c] for c in classnames] if queries is None else queries
    if len(queries) != len(classnames) or any(not q for q in queries):
        raise ValueError(f"queries needs a non-empty list of strings for each of the {len(classnames)} classes")
    return [(c, q.lower(), tokens(q)) for c, qq in enumerate(queries) for q in qq]


def _label(caption: str, qs: list[tuple[int, str, list[str]]], mode: str) -> int | None:
    """The class a caption names (``-1``: two or more; None: none), after the nesting rule of :func:`match`."""
    text = caption.lower()
    toks = tokens(text) if mode == "token" else []
    hits = [(s, e, c) for c, q, qt in qs for s, e in _spans(text, toks, q, qt, mode)]
    if not hits:
        return None
    outer = {c for s, e, c in hits if not any(s2 <= s and e <= e2 and (s2, e2) != (s, e) for s2, e2, _ in hits)}
    return outer.pop() if len(outer) == 1 else -1


def _check_modes(modes: Sequence[str]) -> None:
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"match mode must be one of {MODES}, got {list(modes) or 'none'}")


def match(captions: Sequence[str], classnames: Sequence[str], mode: str = "substring",
          queries: Sequence[Sequence[str]] | None = None) -> Candidates:
    """Captions that contain a class name (case-insensitive), each labelled by the matched class.

    ``mode="substring"``: ``c`` occurs anywhere in the caption (the paper's ``c ∈ t``); ``mode="token"``: ``c``'s
    tokens occur as a contiguous run of the caption's tokens (:func:`tokens`; SQLite FTS5 phrase semantics).
    ``queries[c]`` replaces class ``c``'s single query (its name) by several strings (e.g. synonyms).

    A caption matching several classes keeps the match that *contains* the others (``"t-shirt"`` over the
    ``"shirt"`` inside it); if two or more classes remain (a caption naming two classes) it is dropped and counted
    in ``n_ambiguous``.
    """
    _check_modes([mode])
    qs = _queries(classnames, queries)
    index, labels, ambiguous, i = [], [], 0, -1
    for i, cap in enumerate(captions):
        c = _label(cap, qs, mode)
        if c is not None and c >= 0:
            index.append(i)
            labels.append(c)
        ambiguous += c == -1
    return Candidates(np.asarray(index, dtype=np.int64), np.asarray(labels, dtype=np.int64), mode, int(ambiguous),
                      i + 1)


def match_shards(spec: str | Path | Sequence[str], classnames: Sequence[str], modes: Sequence[str] = MODES,
                 queries: Sequence[Sequence[str]] | None = None, limit: int | None = None, progress: bool = False,
                 engine: str = "duckdb") -> dict[str, tuple[Candidates, ShardImages]]:
    """:func:`match` streamed over an upstream pool stored as webdataset shards (LAION as img2dataset writes it:
    ``jpg`` + ``txt`` per sample; a folder, a brace pattern or a list of paths), every mode in one pass.

    Only the matched samples are kept: per mode, ``(candidates, images)`` where ``images`` are the matched samples'
    images (lazy, read at their tar offsets) and ``candidates.index`` indexes ``images`` — nothing of a billion
    unmatched samples stays in memory. ``limit``: read only the first ``limit`` samples. Samples without an image
    or a caption are skipped.

    ``engine="duckdb"`` (default) searches img2dataset's parquet metadata beside the shards when every shard has
    it (:mod:`synscale.data.metadata`: one RE2 pattern in DuckDB, the exact rule on its hits only, then the tar headers
    of only the shards holding a hit); ``"tar"``, or shards without metadata, read every tar header. Both give the
    same candidates and images.
    """
    _check_modes(modes)
    qs = _queries(classnames, queries)
    urls = list(spec) if isinstance(spec, (list, tuple)) else list_shards(spec)
    files = metadata.parquet_beside(urls) if engine == "duckdb" else None
    if engine not in ("duckdb", "tar"):
        raise ValueError(f"engine must be 'duckdb' or 'tar', got {engine!r}")
    if files is not None:
        return _match_metadata(urls, files, classnames, modes, queries, limit)
    offsets, labels, ambiguous = ({m: [] for m in modes}, {m: [] for m in modes}, dict.fromkeys(modes, 0))
    samples = iter_samples(urls)
    if progress:
        samples = tqdm(samples, desc="matching captions", unit=" samples", total=limit)
    n = 0
    for shard, image, small in samples:
        if limit is not None and n >= limit:
            break
        n += 1
        if image is None or "txt" not in small:
            continue
        caption = small["txt"].decode("utf-8", errors="replace")
        for m in modes:
            c = _label(caption, qs, m)
            if c is not None and c >= 0:
                offsets[m].append((shard, *image))
                labels[m].append(c)
            ambiguous[m] += c == -1
    return {m: (Candidates(np.arange(len(labels[m]), dtype=np.int64), np.asarray(labels[m], dtype=np.int64), m,
                           int(ambiguous[m]), n),
                ShardImages(urls, np.asarray(offsets[m], dtype=np.int64).reshape(-1, 3))) for m in modes}


def match_metadata(files: Sequence[str | Path], classnames: Sequence[str], modes: Sequence[str] = MODES,
                   queries: Sequence[Sequence[str]] | None = None, limit: int | None = None
                   ) -> dict[str, tuple[Candidates, list[tuple[int, str]]]]:
    """:func:`match` over LAION-style parquet metadata (img2dataset's ``key`` / ``caption`` / ``status``) with
    DuckDB, every mode in one scan: per mode ``(candidates, where)`` with ``where[i]`` = (file index, sample key)
    of candidate ``i`` (``candidates.index`` = ``arange``). :mod:`synscale.data.metadata` keeps the rows one RE2
    pattern matches; the exact rule of :func:`match` labels those rows only. ``limit``: the first ``limit``
    written samples."""
    _check_modes(modes)
    qs = _queries(classnames, queries)
    files = [Path(f) for f in files]
    con = metadata.connect()
    plain = [(q, qt) for _, q, qt in qs]
    regex = metadata.pattern(plain, modes)
    hits: dict[str, list[tuple[int, str, int]]] = {m: [] for m in modes}
    ambiguous = dict.fromkeys(modes, 0)
    cols = {f"q_{m}": metadata.candidates_sql(plain, m) for m in modes}
    counts = metadata.success_rows(files, con)  # the pool's size, and where a limit cuts it: one scan
    for batch in metadata.search(files, regex, limit=limit, con=con, columns=cols, counts=counts):
        rows = zip(*(batch.column(c).to_pylist() for c in ("file", "key", "caption", *cols)))
        for f, key, caption, *cands in rows:
            for m, cand in zip(modes, cands):
                c = _label(caption, qs if not caption.isascii() else [qs[i] for i in cand], m)
                if c is not None and c >= 0:
                    hits[m].append((f, key, c))
                ambiguous[m] += c == -1
    searched = sum(counts)
    searched = searched if limit is None else min(searched, int(limit))
    return {m: (Candidates(np.arange(len(hits[m]), dtype=np.int64), np.asarray([c for *_, c in hits[m]], np.int64),
                           m, int(ambiguous[m]), searched), [(f, k) for f, k, _ in hits[m]]) for m in modes}


def _match_metadata(urls: list[str], files: list[Path], classnames: Sequence[str], modes: Sequence[str],
                    queries: Sequence[Sequence[str]] | None, limit: int | None
                    ) -> dict[str, tuple[Candidates, ShardImages]]:
    """:func:`match_shards` through :func:`match_metadata`: the tar headers of only the shards holding a hit."""
    found = match_metadata(files, classnames, modes, queries, limit)
    wanted: dict[int, set[str]] = {}
    for _, where in found.values():
        for f, key in where:
            wanted.setdefault(f, set()).add(key)
    offsets = {f: keyed_offsets(urls[f], keys) for f, keys in sorted(wanted.items())}
    out = {}
    for m, (cand, where) in found.items():
        missing = [(urls[f], k) for f, k in where if k not in offsets[f]]
        if missing:
            raise FileNotFoundError(f"{missing[0][0]} has no image for key {missing[0][1]} that its parquet lists "
                                    f"as written ({len(missing)} such): re-run img2dataset for that shard")
        out[m] = (cand, ShardImages(urls, np.asarray([(f, *offsets[f][k]) for f, k in where],
                                                     dtype=np.int64).reshape(-1, 3)))
    return out


def keyed_offsets(url: str, keys: set[str]) -> dict[str, tuple[int, int]]:
    """``key -> (offset, size)`` of the image of each sample of ``keys`` in shard ``url``, from its sample index
    (:mod:`synscale.data.samples`: the tar headers are read once, the first time the shard is asked for, and never
    again; a later run reads three columns of a small Parquet file)."""
    import pyarrow.parquet as pq

    t = pq.read_table(samples.index_shard(url), columns=["key", "offset", "size"])
    k, o, z = (t.column(c).to_numpy(zero_copy_only=False) for c in ("key", "offset", "size"))
    hit = np.flatnonzero(np.isin(k, list(keys)) & (o >= 0))
    return {str(k[i]): (int(o[i]), int(z[i])) for i in hit}


@torch.no_grad()
def domain_scores(model: torch.nn.Module, tokenizer: Callable, images: np.ndarray,
                  domain_text: str | Sequence[str], batch_size: int = 256) -> np.ndarray:
    """CLIP cosine similarity of each uint8 image with the domain text (several texts: their normalised mean).

    The paper's ``CLIP(x_i, domain text)`` of the filter ``> tau`` (0.19–0.21 on OpenCLIP ViT-B/16's scale).
    """
    texts = [domain_text] if isinstance(domain_text, str) else list(domain_text)
    if len(images) == 0:
        return np.zeros(0, dtype=np.float32)
    # cached by the model's weights, the images (a lazy set by its shards and rows) and the texts: 07's reruns
    # (other τ, other sizes) and the other arms score LAION's candidates once
    key = hashlib.sha1("\n".join([weights_key(model), content_key(images), *texts]).encode()).hexdigest()[:20]
    f = cache_dir() / "domain_scores" / f"{key}.npy"
    if (got := integrity.load(f, np.load, "cached domain scores")) is not None:
        return got
    t = F.normalize(E.text_features(model, tokenizer, texts).mean(0), dim=0)
    scores = (E.image_features(model, images, batch_size) @ t).numpy()
    integrity.save(f, lambda tmp: np.save(tmp, scores))
    return scores


def filter_scores(candidates: Candidates, scores: np.ndarray, tau: float) -> Candidates:
    """The candidates whose domain score (``scores[i]`` belongs to ``candidates.index[i]``) exceeds ``tau``."""
    scores = np.asarray(scores)
    if len(scores) != len(candidates):
        raise ValueError(f"{len(scores)} scores for {len(candidates)} candidates: score exactly the candidates")
    return candidates.subset(scores > tau)


def retrievable(candidates: Candidates, scores: np.ndarray, tau: float, cap_per_class: int = 0,
                seed: int = 0) -> Candidates:
    """The targeted retrieved data set: candidates with domain score above ``tau``, then at most ``cap_per_class``
    per class (0 = no cap; a seeded draw, nested in the cap)."""
    kept = filter_scores(candidates, scores, tau)
    return kept if not cap_per_class else kept.subset(per_class_subset(kept.labels, cap_per_class, seed))


def per_class_subset(labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of at most ``k`` items per class, drawn in one seeded order: the subset for ``k`` is
    contained in the subset for any larger ``k`` (nested sizes, as a growing data set)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    labels = np.asarray(labels)
    order = np.random.default_rng([seed, 7]).permutation(len(labels))
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = np.arange(len(members))
    return np.flatnonzero(rank < k)


def nested_subset(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of ``n`` items (all when ``n`` is larger), a subset of any larger ``n``'s (nested sizes), in
    the classes' proportions: every class holds its share of ``n`` to within one item (Geng et al.'s retrieved
    subsets are fractions of an unbalanced pool). Items are taken in :func:`per_class_subset`'s seeded order within
    each class, classes interleaved by the fraction of their items taken (ties: lower label first); on a balanced set
    ``n = k × classes`` is exactly ``per_class_subset(labels, k, seed)``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    labels = np.asarray(labels)
    if not len(labels):
        return np.zeros(0, dtype=np.int64)
    order = np.random.default_rng([seed, 7]).permutation(len(labels))
    rank = np.empty(len(labels), dtype=np.int64)
    counts = {}
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = np.arange(len(members))
        counts[c] = len(members)
    size = np.array([counts[c] for c in labels.tolist()], dtype=np.float64)
    return np.sort(np.lexsort((labels, (rank + 0.5) / size))[:n])


# ---------------------------------------------------------------------------------------------------------------
# Targeted synthetic captions (three forms, after SynCLR)
# ---------------------------------------------------------------------------------------------------------------

FORMS = ("caption", "background", "relation")
#: Background attributes for a clothing domain (paper: written per domain by GPT-4, e.g. garden/meadow for flowers).
CLOTHING_BACKGROUNDS = ("in a boutique", "in a closet", "in a dressing room", "on a bed", "on a clothes rail",
                        "in a shop window", "on a wooden floor", "at a street market", "on a runway",
                        "in a laundry room")
#: Domain-invariant spatial relations and the objects they relate to (SynCLR: "next to", "below", "besides", ...).
RELATIONS = ("next to", "below", "beside", "above", "in front of", "behind", "on top of", "near")
OBJECTS = ("a chair", "a table", "a lamp", "a plant", "a mirror", "a box", "a shelf", "a suitcase", "a hat", "a dog")

Writer = Callable[[str, str, "str | None", np.random.Generator], str]


def offline_writer(form: str, classname: str, attribute: str | None, rng: np.random.Generator) -> str:
    """The offline stand-in for the paper's LLM: a web-like caption of ``classname`` (the mini world's alt-text
    grammar, attribute words drawn at random), followed by the background or ``relation object`` attribute."""
    words = {k: v[rng.integers(len(v))] for k, v in (("tone", W.TONE[("dark", "mid", "light")[rng.integers(3)]]),
                                                     ("pattern", W.PATTERN[("patterned", "plain")[rng.integers(2)]]),
                                                     ("cut", W.CUT[("wide", "slim", "regular")[rng.integers(3)]]))}
    caption = W.TEMPLATES[rng.integers(len(W.TEMPLATES))].format(noun=classname, **words)
    return caption if form == "caption" else f"{caption} {attribute}"


#: SynCLR-style in-context prompts for a local LLM, one per form (the paper gives LLaMA-2 7B three in-context
#: examples per form but does not print them; these examples are ours, on classes outside any downstream set).
LLM_PROMPTS = {
    "caption": ("Write one sentence describing a photo of the given object.\n"
                "object: coucal => A vibrant coucal perched on the branch of a lush green tree.\n"
                "object: bee eater => A bee eater hovering above a field of sunflowers, catching a bee.\n"
                "object: three-toed sloth => A three-toed sloth hanging upside down from a vine in the rainforest.\n"
                "object: {c} =>"),
    "background": ("Write one sentence describing a photo of the given object in the given place.\n"
                   "object: tabby cat, place: on a windowsill => A tabby cat dozing on a sunny windowsill.\n"
                   "object: canoe, place: on a lake => A red canoe drifting on a calm lake at dawn.\n"
                   "object: espresso machine, place: in a cafe => A chrome espresso machine behind a cafe counter.\n"
                   "object: {c}, place: {a} =>"),
    "relation": ("Write one sentence describing a photo of the given object in the given spatial relation.\n"
                 "object: bicycle, relation: next to a lamp post => A bicycle leaning next to a lamp post at night.\n"
                 "object: teapot, relation: beside a cup => A porcelain teapot beside a steaming cup on a tray.\n"
                 "object: goldfish, relation: below a water lily => A goldfish swimming below a floating water "
                 "lily.\n"
                 "object: {c}, relation: {a} =>"),
}


class LLMWriter:
    """The paper's caption writer: a base LLM (paper: LLaMA-2 7B, ``LLMCaptioner(..., completion=True)``)
    continuing :data:`LLM_PROMPTS`' in-context examples, all captions of a set at once through
    :func:`synscale.methods.llm.complete_requests`: written in checked chunks under ``cache`` as they are done
    (a killed run resumes; a launcher other than ``inprocess`` makes them a job), each answer validated (non-empty,
    no chat preamble, naming its class, within SD's 77 text tokens) and sampled again, up to ``retries`` times,
    before the fallback "<class> <attribute>" is kept. ``stats`` then counts the re-samples, fallbacks and problems.
    """

    batched = True

    def __init__(self, captioner, cache: str | Path | None = None, chunk: int = 10_000, retries: int = 3):
        self.captioner, self.cache, self.chunk, self.retries = captioner, cache, chunk, retries
        self.stats: dict = {}

    def batch(self, requests: Sequence[tuple[str, str, str | None]]) -> list[str]:
        from synscale.methods.llm import Requests, complete_requests

        classes = list(dict.fromkeys(c for _, c, _ in requests))
        attributes = sorted({a for _, _, a in requests if a})
        ci, ai = {c: i for i, c in enumerate(classes)}, {a: i for i, a in enumerate(attributes)}
        codes = np.array([(FORMS.index(f), ci[c], ai[a] if a else -1) for f, c, a in requests], dtype=np.int32)
        req = Requests(tuple(LLM_PROMPTS[f] for f in FORMS), tuple(classes), tuple(attributes), codes.reshape(-1, 3))
        captions, self.stats = complete_requests(self.captioner, req, self.cache or cache_dir() / "geng_captions",
                                                 self.chunk, self.retries)
        return captions


def targeted_captions(classes: Sequence[str], n_per_class: int, seed: int = 0,
                      backgrounds: Sequence[str] = CLOTHING_BACKGROUNDS, relations: Sequence[str] = RELATIONS,
                      objects: Sequence[str] = OBJECTS, writer: Writer | LLMWriter = offline_writer):
    """``n_per_class`` captions per class (label order), each in one of :data:`FORMS` drawn uniformly: ``c ->
    caption``; ``c, background -> caption`` (a background drawn from ``backgrounds``); ``c, relation -> caption``
    (``"<relation> <object>"`` drawn from ``relations`` × ``objects``). Returns a
    :class:`synscale.data.prompts.PromptSet` (config ``geng_targeted``) for
    :func:`synscale.methods.generate.ensure_set`;
    every draw comes from ``seed``. ``writer``: one caption per call (:func:`offline_writer`), or a batched
    writer (``writer.batched``, e.g. :class:`LLMWriter`) given every (form, class, attribute) at once."""
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    if not backgrounds or not relations or not objects:
        raise ValueError("backgrounds, relations and objects must each hold at least one entry")
    batched = getattr(writer, "batched", False)
    rng = np.random.default_rng([seed, 1207])
    prompts, requests = [], []
    for c in classes:
        for _ in range(n_per_class):
            form = FORMS[rng.integers(len(FORMS))]
            attr = (None if form == "caption" else backgrounds[rng.integers(len(backgrounds))] if form == "background"
                    else f"{relations[rng.integers(len(relations))]} {objects[rng.integers(len(objects))]}")
            if batched:
                requests.append((form, c, attr))
            else:
                prompts.append(writer(form, c, attr, rng))
    if batched:
        prompts = list(writer.batch(requests))
    labels = np.repeat(np.arange(len(classes)), n_per_class)
    return PromptSet("geng_targeted", tuple(classes), labels, tuple(prompts))


# ---------------------------------------------------------------------------------------------------------------
# Adaptation: zero-shot-initialised head, end-to-end finetuning, features
# ---------------------------------------------------------------------------------------------------------------


class ZeroShotHeadClassifier(torch.nn.Module):
    """``head(normalize(clip.encode_image(x)))`` with ``head`` initialised to ``logit_scale.exp() · classifierᵀ``
    and bias 0: before training its logits equal :func:`synscale.methods.evaluate.zero_shot_logits` of the same
    classifier (WiSE-FT's and the paper's initialisation). ``clip`` is a deep copy; the given model is never changed."""

    def __init__(self, clip_model: torch.nn.Module, classifier: torch.Tensor):
        super().__init__()
        self.clip = copy.deepcopy(clip_model)
        d, c = classifier.shape
        self.head = torch.nn.Linear(d, c)
        with torch.no_grad():
            scale = self.clip.logit_scale.exp().float()
            self.head.weight.copy_(scale * classifier.detach().float().T)
            self.head.bias.zero_()
        for p in self.clip.parameters():  # only the image tower and the head train
            p.requires_grad_(False)
        for p in self.clip.visual.parameters():
            p.requires_grad_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.normalize(self.clip.encode_image(x).float(), dim=-1))


@dataclass(frozen=True)
class FinetuneConfig:
    """Appendix B.2 of the paper: batch 512, lr 1e-5, 500 warm-up steps, cosine decay, weight decay 0.1, AdamW
    β = (0.9, 0.95); 30 epochs (sec. 4). ``crop_pad`` > 0 adds random crops (pad, then crop back; 0 = none)."""

    epochs: float = 30
    batch_size: int = 512
    lr: float = 1.0e-5
    warmup: int = 500
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    crop_pad: int = 0
    seed: int = 0
    ckpt_every: int = 500
    workers: int = 0  # > 0: batches are decoded in that many DataLoader processes (lazy images at paper scale)

    def schedule(self, n: int) -> tuple[int, int, int]:
        """``(batch, steps, warmup)`` for ``n`` images: batch ``min(batch_size, n)``, ``ceil(epochs·n/batch)``
        steps, and warm-up ``min(warmup, steps // 5)`` so that small sets still spend most steps at the peak."""
        batch = min(self.batch_size, n)
        steps = max(1, math.ceil(self.epochs * n / batch))
        return batch, steps, min(self.warmup, steps // 5)


def _crop(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """Random crops of uint8 ``[N, H, W]`` / ``[N, H, W, 3]`` images after zero padding (the CLIP's pretraining
    augmentation, :func:`synscale.methods.clip.random_crop`)."""
    if x.ndim == 3:
        return random_crop(x.unsqueeze(1), pad, g).squeeze(1)
    return random_crop(x.permute(0, 3, 1, 2), pad, g).permute(0, 2, 3, 1)


class _BestEpoch:
    """The best epoch so far on a selection set: its score, its epoch and a copy of the trained weights; checkpointed
    with the run (``state_dict``/``load_state_dict``), so a resumed run keeps what it had selected."""

    def __init__(self, modules: dict[str, torch.nn.Module]):
        self.modules, self.score, self.epoch, self.weights, self.curve = modules, -math.inf, 0, None, []

    def offer(self, epoch: int, score: float) -> None:
        self.curve.append((epoch, score))
        if score > self.score:
            self.score, self.epoch = score, epoch
            self.weights = {k: {n: t.detach().clone() for n, t in m.state_dict().items()}
                            for k, m in self.modules.items()}

    def restore(self) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(self.weights[k])

    def state_dict(self) -> dict:
        return {"score": self.score, "epoch": self.epoch, "weights": self.weights, "curve": self.curve}

    def load_state_dict(self, d: dict) -> None:
        self.score, self.epoch, self.weights, self.curve = d["score"], d["epoch"], d["weights"], list(d["curve"])


class _StepBatches(torch.utils.data.Dataset):
    """Item ``step`` = ``(step, uint8 images, labels)`` of that step's batch (``checkpoint.batch_indices``, epochs),
    this rank's ``1 / world`` of it, decoded here: in DataLoader workers when the images are lazy files or shards."""

    def __init__(self, images, labels: np.ndarray, seed: int, batch: int, rank: int = 0, world: int = 1):
        self.images, self.labels, self.seed, self.batch = images, labels, seed, batch
        self.rank, self.per_rank = rank, batch // world

    def __len__(self) -> int:
        return 2**62  # indexed by step; the sampler says which

    def __getitem__(self, step: int):
        idx = batch_indices(self.seed, step, len(self.labels), self.batch, epochs=True)
        idx = idx[self.rank * self.per_rank:(self.rank + 1) * self.per_rank]
        return step, torch.from_numpy(np.ascontiguousarray(self.images[idx])), torch.from_numpy(self.labels[idx])


def weights_key(model: torch.nn.Module, *tensors: torch.Tensor) -> str:
    """16 hex digits naming a model's weights (and any extra tensors, e.g. a zero-shot head): caches of runs that
    start from it never serve another model's."""
    h = hashlib.sha1()
    for t in [*model.state_dict().values(), *tensors]:
        h.update(np.ascontiguousarray(t.detach().float().cpu().numpy()).tobytes())
    return h.hexdigest()[:16]


def finetune(clip_model: torch.nn.Module, classifier: torch.Tensor, images: np.ndarray, labels: np.ndarray,
             config: FinetuneConfig = FinetuneConfig(), ckpt_dir: str | Path | None = None,
             progress: bool = False, select: tuple[np.ndarray, np.ndarray] | None = None,
             launcher: Launcher | None = None) -> tuple[ZeroShotHeadClassifier, dict]:
    """Finetune a :class:`ZeroShotHeadClassifier` end to end on uint8 ``images`` with cross-entropy on ``labels``.

    Step ``s`` trains on ``checkpoint.batch_indices(seed, s, epochs=True)`` (a seeded shuffle per epoch) with crops
    drawn from ``(seed, s)``; weight decay applies to matrices only (not biases, norms, embeddings' gains). Through
    :func:`synscale.runtime.checkpoint.train_loop`: checkpoints go to ``ckpt_dir`` (default: ``<cache>/finetune/<key>``,
    keyed by the starting weights, data and settings, so a failed notebook run loses nothing), and a call finding
    one there resumes from it (a finished one: no training); the folder is tied to its settings.
    ``select`` = (images, labels) of a validation set: after every epoch the head's top-1 on it is measured and the
    best epoch's weights are returned (the paper's best-epoch selection); without it, the last epoch's.
    ``images`` may be lazy (``synscale.data.arrays``: shards, files): only each step's batch is decoded, in
    ``config.workers`` DataLoader processes when > 0 (same batches as in-process). The model trains on the
    device the library picks (``distributed.default_device``: a GPU when there is one, in bf16 autocast there).
    Returns the trained model (eval mode) and ``{n, batch, steps, warmup, seconds, first_loss, final_loss,
    resumed_from}``, plus ``{best_epoch, select_top1, select_curve}`` with ``select``.

    Under a launcher other than ``inprocess`` (``SYNSCALE_LAUNCHER``) the run is the job ``python -m
    synscale.studies.retrieval --spec …`` (DDP over its ranks, each decoding its share of every batch; with more than
    one rank another run than in one process, as for classifiers), whose result — the trained image tower and head,
    and the numbers above — lies in the run's folder (``result.pt``) and is read back here.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (> 0), got {len(images)} images and {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= classifier.shape[1]:
        raise ValueError(f"labels must lie in [0, {classifier.shape[1]}) (one column of the classifier per class)")
    model_key = weights_key(clip_model, classifier)
    settings = {**asdict(config), "n": len(images), "classes": int(classifier.shape[1]),
                "data": content_key(images) + content_key(labels), "model": model_key}
    settings.pop("workers")  # how batches are decoded does not change the run
    if select is not None:
        x_sel, y_sel = select[0], np.asarray(select[1])
        settings["select"] = content_key(x_sel) + content_key(y_sel)
    if ckpt_dir is None:  # keyed by everything the run depends on: a finished run is reused, a killed one resumes
        key = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
        ckpt_dir = cache_dir() / "finetune" / key
    ckpt = Path(ckpt_dir)
    launcher = launcher or Launcher.from_env()
    if not launcher.inprocess:
        return _finetune_launched(clip_model, classifier, images, labels, config, ckpt, settings, model_key, select,
                                  launcher)
    rank, world = dist_init()
    device = torch.device(default_device())
    torch.manual_seed(config.seed)
    model = ZeroShotHeadClassifier(clip_model, classifier).to(device)
    batch, steps, warmup = config.schedule(len(images))
    if batch % world:
        raise ValueError(f"the finetuning batch {batch} does not split over {world} ranks: use a batch_size "
                         f"divisible by {world}")
    net = ddp(model, device) if world > 1 else model  # DDP averages the ranks' gradients: the whole batch's
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for _, p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
                             {"params": [p for _, p in params if p.ndim < 2], "weight_decay": 0.0}],
                            lr=config.lr, betas=config.betas, fused=True)  # fused: ~3x faster step on CPU
    sched = warmup_cosine(opt, TrainConfig(steps=steps, lr=config.lr, warmup=max(1, warmup)), floor=0.0)
    _tie(ckpt, settings)
    modules = {"visual": model.clip.visual, "head": model.head}
    best = _BestEpoch(modules) if select is not None else None
    per_epoch = math.ceil(len(images) / batch)
    batch_at = step_stream(_StepBatches(images, labels, config.seed, batch, rank, world), steps, config.workers)

    def after_step(step: int) -> None:  # at each epoch's end: the head's top-1 on the selection set
        if (step + 1) % per_epoch and step + 1 != steps:
            return
        best.offer(math.ceil((step + 1) / per_epoch), float((head_logits(model, x_sel).argmax(1) == y_sel).mean()))
        for m in modules.values():
            m.train()

    def step_fn(step: int) -> torch.Tensor:
        _, x, y = batch_at(step)
        if config.crop_pad:  # one process: crops from (seed, step); ranks draw their own from (seed, rank, step)
            x = _crop(x, config.crop_pad, torch_generator(config.seed if world == 1 else config.seed * 7919 + rank,
                                                          step))
        x, y = to_tensor(x, model.clip).to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return F.cross_entropy(net(x).float(), y)

    info = train_loop(modules, opt, sched, step_fn, steps, ckpt / f"world{world}-rank{rank}" if world > 1 else ckpt,
                      every=config.ckpt_every, name="finetune", progress=progress and rank == 0,
                      after_step=after_step if best else None, extra={"best": best} if best else None)
    out = {"n": len(images), "batch": batch, "steps": steps, "warmup": warmup, "seconds": info["seconds"],
           "first_loss": info["first_loss"], "final_loss": info["final_loss"], "resumed_from": info["resumed_from"]}
    if best is not None:
        best.restore()
        out.update(best_epoch=best.epoch, select_top1=best.score, select_curve=[s for _, s in best.curve])
    model.eval()
    return model, out


def _finetune_launched(clip_model, classifier, images, labels, config: FinetuneConfig, ckpt: Path, settings: dict,
                       model_key: str, select, launcher: Launcher) -> tuple[ZeroShotHeadClassifier, dict]:
    """:func:`finetune` as a launched job: the starting CLIP's weights once per weights (``finetune/_models/
    <key>.state.pt``), the run's inputs and spec beside its folder; then wait, and read the trained tower and head
    back. Nothing the job reads is a pickled object (anyone who can write the cache could run code on every rank):
    the CLIP is its open_clip architecture as JSON in the spec plus its ``state_dict``, the classifier a tensor
    (both read with ``torch.load(weights_only=True)``), the labels and the images' arrays ``.npy`` files
    (``allow_pickle=False``), lazy images a JSON description (:func:`_images_to_spec`), the config JSON."""
    result = ckpt / "result.pt"
    if (state := _read_result(result)) is None:
        job = ckpt.with_name(f".{ckpt.name}.job")
        with integrity.exclusive(job):  # two runs that need the same finetuning: one launches, the other finds it
            if not integrity.sidecar(result).exists():
                _tie(ckpt, settings)
                start = ckpt.parent / "_models" / f"{model_key}.state.pt"
                if not integrity.sidecar(start).exists():
                    integrity.save(start, lambda f: torch.save(
                        {k: v.detach().cpu() for k, v in clip_model.state_dict().items()}, f))
                integrity.save(job / "classifier.pt", lambda f: torch.save(classifier.detach().cpu(), f))
                spec = {"ckpt": str(ckpt), "clip": {**_clip_to_spec(clip_model), "weights": str(start)},
                        "classifier": str(job / "classifier.pt"), "config": asdict(config),
                        "images": _images_to_spec(images, job, "images"),
                        "labels": _save_npy(job / "labels.npy", labels),
                        "select": None if select is None else
                        {"images": _images_to_spec(select[0], job, "select"),
                         "labels": _save_npy(job / "select.labels.npy", np.asarray(select[1]))}}
                seconds = run_spec("synscale.studies.retrieval", job, spec, "finetune", launcher)
                log.info(f"[{launcher}] finetuned on {len(labels)} images in {seconds:.0f} s")
        if (state := _read_result(result)) is None:
            raise LaunchError(f"job finetune for {ckpt} ended without a result (logs in {job})")
    model = ZeroShotHeadClassifier(clip_model, classifier)
    model.clip.visual.load_state_dict(state["visual"])
    model.head.load_state_dict(state["head"])
    return model.to(default_device()).eval(), json.loads(state["info"])


def _read_result(path: Path) -> dict | None:
    """A finetuning job's checked ``result.pt`` (the trained tower and head, and its numbers), or None."""
    return integrity.load(path, lambda f: torch.load(f, map_location="cpu", weights_only=True), "finetuning result")


def _finetune_from_spec(path: Path) -> Path:
    """This rank's part of the finetuning a launched job's spec describes; rank 0 writes the result. Reads only
    JSON, ``.npy`` files (``allow_pickle=False``) and tensors (``torch.load(weights_only=True)``)."""
    spec = json.loads(Path(path).read_text())
    state = torch.load(spec["clip"]["weights"], map_location="cpu", weights_only=True)
    clip_model = _clip_from_spec(spec["clip"], state)
    classifier = torch.load(spec["classifier"], map_location="cpu", weights_only=True)
    sel = spec["select"]
    select = None if sel is None else (_images_from_spec(sel["images"]), _load_npy(sel["labels"]))
    model, info = finetune(clip_model, classifier, _images_from_spec(spec["images"]), _load_npy(spec["labels"]),
                           _config_from_json(spec["config"]), ckpt_dir=spec["ckpt"], progress=True, select=select,
                           launcher=Launcher())
    result = Path(spec["ckpt"]) / "result.pt"
    if dist_env()[0] == 0:
        integrity.save(result, lambda f: torch.save({"visual": model.clip.visual.state_dict(),
                                                     "head": model.head.state_dict(),
                                                     "info": json.dumps(info)}, f))
    return result


def _config_from_json(d: dict) -> FinetuneConfig:
    """``FinetuneConfig(**asdict(config))`` read back from JSON (its lists made tuples again: ``betas``)."""
    return FinetuneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _clip_to_spec(model: torch.nn.Module) -> dict:
    """What rebuilds a CLIP's architecture (:func:`_clip_from_spec`, its weights aside), as JSON: the open_clip
    model name :func:`synscale.methods.clip.create` gave it (``synscale_model_name``: ``synscale-mini-clip``,
    ``ViT-B-16``, ``local-dir:<folder>`` for cached paper weights), that name's open_clip model config, the model's
    preprocess config (mean, std, size: what :func:`synscale.methods.clip.to_tensor` reads) and its train flag."""
    C.registered()
    name = getattr(model, "synscale_model_name", C.MINI_NAME)  # as clip.save and clip.input_size read it
    if name.startswith("local-dir:"):
        cfg = json.loads((Path(name.removeprefix("local-dir:")) / C.CONFIG_FILE).read_text()).get("model_cfg")
    elif ":" in name:  # hf-hub: open_clip would fetch its config; create() never names a model so
        cfg = None
    else:
        cfg = open_clip.get_model_config(name.replace("/", "-"))
    if cfg is None:
        raise ValueError(f"no open_clip model config for the CLIP to finetune ({name!r}): create it with "
                         "synscale.methods.clip.create, which names its architecture")
    return {"name": name, "model_cfg": cfg, "preprocess_cfg": dict(open_clip.get_model_preprocess_cfg(model)),
            "training": bool(model.training)}


def _clip_from_spec(spec: dict, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The CLIP :func:`_clip_to_spec` described, with the weights (and dtypes) of its ``state_dict`` ``state``: its
    config registered under a name keyed by the config, built by open_clip without loading any weights."""
    cfg = spec["model_cfg"]
    key = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    arch = C.register(f"synscale-finetune-{key}", cfg)
    model = open_clip.create_model(arch, load_weights=False, pretrained_image=False, pretrained_text=False)
    model.load_state_dict(state, strict=True, assign=True)  # every tensor as saved, dtype included
    open_clip.set_model_preprocess_cfg(model, {k: tuple(v) if isinstance(v, list) else v
                                               for k, v in spec["preprocess_cfg"].items()})
    model.synscale_model_name = spec["name"]
    return model.train(spec["training"])


def _save_npy(path: Path, a) -> str:
    """``a`` as a checked ``.npy`` file (never pickled objects: an object array is refused); its path."""
    a = np.asarray(a)
    if a.dtype.hasobject:
        raise TypeError(f"{path.name}: an array of Python objects would be pickled; a finetuning job takes numbers")
    integrity.save(path, lambda f: np.save(f, a, allow_pickle=False))
    return str(path)


def _load_npy(path: str) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _images_to_spec(images, folder: Path, name: str) -> dict:
    """A JSON description of an image array from which :func:`_images_from_spec` rebuilds it in a job (same
    images, same ``content_key``), its arrays ``.npy`` files in ``folder`` named after ``name``: a numpy array
    (``array``, its ``.npy``) or the lazy arrays of ``synscale.data.arrays`` — ``shards`` (shard paths, ``.npy``
    offsets), ``files`` (``ImageFiles``: paths, size), ``take`` (base, ``.npy`` indices), ``concat`` (parts),
    ``squared`` (base, size). Another lazy array is refused (it has no description to rebuild it from)."""
    from synscale.data.world.folder import ImageFiles

    kind = type(images)
    if kind is Take:
        return {"kind": "take", "base": _images_to_spec(images.base, folder, f"{name}.base"),
                "idx": _save_npy(folder / f"{name}.idx.npy", images.idx)}
    if kind is Concat:
        return {"kind": "concat", "parts": [_images_to_spec(p, folder, f"{name}.{i}")
                                            for i, p in enumerate(images.parts)]}
    if kind is Squared:
        return {"kind": "squared", "base": _images_to_spec(images.base, folder, f"{name}.base"), "size": images.size}
    if kind is ShardImages:
        return {"kind": "shards", "urls": list(images.urls),
                "offsets": _save_npy(folder / f"{name}.offsets.npy", images.offsets)}
    if kind is ImageFiles:
        return {"kind": "files", "paths": [str(p) for p in images.paths], "size": images.size,
                "as_path": all(isinstance(p, Path) for p in images.paths)}
    if isinstance(images, arrays.LazyImages) or hasattr(images, "key"):
        raise TypeError(f"cannot pass lazy images of type {kind.__name__} to a launched finetuning job: known are "
                        "numpy arrays, ShardImages, ImageFiles, Take, Concat and Squared")
    return {"kind": "array", "npy": _save_npy(folder / f"{name}.npy", images)}


def _images_from_spec(spec: dict):
    """The image array :func:`_images_to_spec` described."""
    from synscale.data.world.folder import ImageFiles

    kind = spec["kind"]
    if kind == "array":
        return _load_npy(spec["npy"])
    if kind == "take":
        return Take(_images_from_spec(spec["base"]), _load_npy(spec["idx"]))
    if kind == "concat":
        return Concat([_images_from_spec(p) for p in spec["parts"]])
    if kind == "squared":
        return Squared(_images_from_spec(spec["base"]), spec["size"])
    if kind == "shards":
        return ShardImages(spec["urls"], _load_npy(spec["offsets"]))
    if kind == "files":
        return ImageFiles([Path(p) for p in spec["paths"]] if spec["as_path"] else spec["paths"], spec["size"])
    raise ValueError(f"unknown kind of image array {kind!r} in a finetuning job's spec")


def main(argv: list[str] | None = None, prog: str = "synscale finetune") -> int:
    """``synscale finetune``: from flags (a person) or from a launched job's spec (a notebook)."""
    import argparse
    import typing
    from dataclasses import fields

    from synscale.data.world import open_world
    from synscale.data.world import text as T

    ap = argparse.ArgumentParser(
        prog=prog, description="Finetune a CLIP's image tower and zero-shot head end to end (Geng et al. sec. 4, "
        "App. B.2) on a world's labelled images into the shared cache, <cache>/finetune/<key>/ (keyed by the "
        "starting weights, the data and the settings: a finished run is found, a killed one resumes). DDP over "
        "RANK / WORLD_SIZE under torchrun; under SYNSCALE_LAUNCHER it runs as a job. Prints the run's numbers.")
    ap.add_argument("--spec", type=Path, metavar="JSON",
                    help="the job a notebook launched (written by finetune()); no other flag is read")
    ap.add_argument("--world", default="mini", help="'mini' or a folder world of class folders (synscale prepare)")
    ap.add_argument("--split", default="train", help="the split to finetune on")
    ap.add_argument("--select-split", help="a split on which the best epoch is chosen (the paper's: val)")
    ap.add_argument("--clip-arch", default="ViT-B-16", help="open_clip architecture (not read for --world mini)")
    ap.add_argument("--clip-weights", default="paper:clip",
                    help="the CLIP's weights: paper:clip, an open_clip weights file or folder (mini: the shipped one)")
    ap.add_argument("--templates", type=int, default=80, help="zero-shot templates of the head: 80 or 7")
    hints = typing.get_type_hints(FinetuneConfig)
    for f in fields(FinetuneConfig):
        if f.name != "betas":  # Table B.2's settings, one flag each
            ap.add_argument(f"--{f.name.replace('_', '-')}", type=hints[f.name], default=f.default)
    a = ap.parse_args(argv)
    if a.spec is not None:
        out = _finetune_from_spec(a.spec)
        if dist_env()[0] == 0:
            print(out)
        return 0
    config = FinetuneConfig(**{f.name: getattr(a, f.name) for f in fields(FinetuneConfig) if f.name != "betas"})
    if a.world == "mini":
        world = open_world(seed=a.seed)
        clip_model, _, tokenizer = C.create(pretrained=str(world.path("clip")))
    else:
        clip_model, _, tokenizer = C.create(a.clip_arch, pretrained=a.clip_weights, device=default_device())
        world = open_world(a.world, seed=a.seed, image_size=C.input_size(clip_model))
    x, y = world.split(a.split)
    classifier = E.zero_shot_classifier(clip_model, tokenizer, list(world.classes), T.clip_templates(a.templates))
    _, info = finetune(clip_model, classifier, x, y, config, progress=True,
                       select=world.split(a.select_split) if a.select_split else None)
    if dist_env()[0] == 0:
        print(json.dumps(info))
    return 0


def _tie(ckpt_dir: Path, settings: dict) -> None:
    """Write ``settings.json`` into a checkpoint folder, or check that a folder in use was made with the same."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = ckpt_dir / "settings.json"
    text = json.dumps(settings, sort_keys=True, default=list)
    if path.exists():
        if path.read_text() != text:
            raise ValueError(f"{ckpt_dir} holds a finetuning run with other settings ({path.read_text()}): "
                             "use another ckpt_dir for these settings")
        return
    integrity.atomic_write(path, text)  # a job's ranks read it while one may write it: never half a file


@torch.no_grad()
def image_features(model: torch.nn.Module, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Frozen ``encode_image`` features ``[N, D]`` (float32) of uint8 images, for linear probing. ``model`` is a
    CLIP or a :class:`ZeroShotHeadClassifier` (its adapted image tower)."""
    if len(images) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    clip_model = model.clip if isinstance(model, ZeroShotHeadClassifier) else model
    return encode(clip_model, images, batch_size, normalize=False).numpy()


@torch.no_grad()
def head_logits(model: ZeroShotHeadClassifier, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The classifier's logits ``[N, C]`` on uint8 images (before finetuning: the zero-shot logits)."""
    model.eval()
    dev = next(model.parameters()).device
    out = [model(to_tensor(images[i:i + batch_size], model.clip).to(dev)).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.head.out_features), dtype=np.float32)


@torch.no_grad()
def assess(model: torch.nn.Module, classifier: torch.Tensor, train: tuple[np.ndarray, np.ndarray],
           test: tuple[np.ndarray, np.ndarray], batch_size: int = 256) -> dict[str, float]:
    """How good a CLIP's image tower is for the downstream task, from one encoding of ``train`` and ``test``
    (uint8 images, labels):

    * ``lp_top1``: linear probe (:func:`synscale.methods.evaluate.linear_probe`) fit on ``train``'s frozen features;
    * ``zs_top1``, ``zs_loss``: zero-shot accuracy and loss of ``test`` against ``classifier`` (the frozen text
      tower's class embeddings, ``[D, C]``) at the CLIP's temperature, as
      :func:`synscale.methods.evaluate.zero_shot_eval`;
    * ``head_top1`` (a :class:`ZeroShotHeadClassifier` only): its own finetuned head's accuracy on ``test``;
    * ``lp_hits``, ``zs_hits``: per test image, whether each was right (paired bootstrap intervals).
    """
    (x_tr, y_tr), (x_te, y_te) = train, test
    f_tr, f_te = image_features(model, x_tr, batch_size), image_features(model, x_te, batch_size)
    clip_model = model.clip if isinstance(model, ZeroShotHeadClassifier) else model
    z = F.normalize(torch.from_numpy(f_te), dim=-1)
    zs = clip_model.logit_scale.exp().float().cpu() * z @ classifier.float().cpu()
    y = torch.as_tensor(np.asarray(y_te), dtype=torch.long)
    lp = linear_probe(f_tr, y_tr, f_te, y_te)
    zs_hits = (zs.argmax(1) == y).numpy()
    out = {"lp_top1": lp["top1"], "zs_top1": float(zs_hits.mean()), "zs_loss": zero_shot_loss(zs, y),
           "lp_hits": lp["hits"], "zs_hits": zs_hits}
    if isinstance(model, ZeroShotHeadClassifier):
        out["head_top1"] = float((model.head(z.to(model.head.weight.device)).argmax(1).cpu() == y).float().mean())
    return out


if __name__ == "__main__":  # a launched job: its lines go to its log
    logs.route()
    raise SystemExit(main())
