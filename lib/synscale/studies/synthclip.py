"""SynthCLIP (Hammoud et al.): concept bank -> LLM captions -> MetaCLIP balanced sampling -> images -> CLIP.

* **Concept bank** :func:`concept_bank`: the paper uses MetaCLIP's ``metadata.json`` (500k entries: WordNet synsets
  and Wikipedia uni/bigrams and titles), read by path with :func:`load_metadata`; offline and in the mini world it
  is built from every WordNet 3.0 lemma (~148k entries) plus the world's own garment vocabulary.
* **Captions** :class:`synscale.methods.llm.LLMCaptioner` runs an instruction LLM on vLLM (the paper's engine, with its
  presence and frequency penalties) or ``transformers`` with the exact prompt of sec. 3.1
  (:data:`synscale.methods.llm.PROMPT`;
  Mistral-7B-Instruct-v0.2, temperature 0.7, top-p 0.95, one caption per concept per pass).
  :class:`StandInCaptioner` is the mini world's offline stand-in: it writes one concept-conditioned caption
  (<= 15 words) placing the concept in a scene with a garment the mini text-to-image models can draw, and, like an
  LLM, it over-produces some garments (a Zipf prior) -- the imbalance balanced sampling exists to correct.
  :func:`generate_captions` writes a pool pass by pass into the cache; under a launcher (``SYNSCALE_LAUNCHER``) an
  LLM's missing passes run as the job ``synscale llm --spec …``, rank-sharded by pass.
* **Balanced sampling** (MetaCLIP, as SynthCLIP applies it): :func:`match_entries` is MetaCLIP's
  ``substr_matching`` (an entry matches when `` entry `` is a substring of the caption with punctuation spaced
  out, i.e. whole words, case-sensitive); :func:`entry_counts` counts matches over the pool;
  :func:`balance_probs` gives ``p_e = t / max(count_e, t)``; :func:`keep_probs` ``1 - prod_e (1 - p_e)`` over a
  caption's matched entries (0 for unmatched captions); :func:`balanced_sample` draws the kept set, reproducibly
  by seed, at a given ``t`` or of an exact size (the smallest ``t`` that keeps that many). :func:`random_sample` is
  the ablation's plain random subset (Table 3a).
* **Images and training** reuse :func:`synscale.methods.generate.ensure_set` (one image per caption) and
  :func:`synscale.methods.clip.train_clip` (mini) or open_clip's trainer (paper); :func:`five_tasks` evaluates
  SynthCLIP's five tasks on a :class:`Benchmark`: the mini world's (:func:`mini_benchmark`) or the paper's by folder
  (:func:`folder_benchmark`).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synscale.data.prompts import PromptSet
from synscale.data.samples import Captions, ParquetColumn
from synscale.data.world.captions import CUT, PATTERN, TONE
from synscale.data.world.classes import NAMES, SYNONYMS
from synscale.data.world.downstream import TASKS
from synscale.data.world.folder import probe_task, retrieval_set
from synscale.data.world.text import _wordnet_source, clip_templates
from synscale.methods import clip
from synscale.methods import evaluate as E
from synscale.methods.llm import LLMCaptioner, caption_folder, caption_pass, launch_captions, missing_passes
from synscale.runtime.launch import Launcher
from synscale.runtime.paths import expand_path

# ---------------------------------------------------------------------------------------------------------------
# Concept bank
# ---------------------------------------------------------------------------------------------------------------


def load_metadata(path: str | Path) -> list[str]:
    """MetaCLIP's concept list (``metadata.json``: a JSON list of strings), by path (the paper's bank; ``~`` and
    ``${VAR:-default}`` expand)."""
    p = Path(expand_path(str(path)))
    if not p.exists():
        raise FileNotFoundError(f"MetaCLIP metadata file {p} not found: download metadata.json from "
                                "facebookresearch/MetaCLIP and pass its path (or use the offline WordNet bank)")
    entries = json.loads(p.read_text())
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ValueError(f"{p} is not a JSON list of strings (MetaCLIP's metadata.json format)")
    return entries


def world_vocabulary() -> list[str]:
    """The mini world's garment nouns and attribute words (all class names and synonyms)."""
    words = [w for syn in SYNONYMS for w in syn]
    words += [w for d in (TONE, PATTERN, CUT) for ws in d.values() for w in ws]
    return list(dict.fromkeys(words))


def wordnet_lemmas(pos: str | None = None) -> list[str]:
    """Every WordNet 3.0 lemma name, readable (``_`` -> space), sorted: the first field of each ``index.<pos>`` line
    of the Debian WordNet files (what nltk's ``all_lemma_names`` returns, without loading the whole database)."""
    files = {"n": "index.noun", "v": "index.verb", "a": "index.adj", "r": "index.adv"}
    if pos is not None and pos not in files:
        raise ValueError(f"pos must be one of {list(files)} or None, got {pos!r}")
    names: set[str] = set()
    for key, f in files.items():
        if pos is None or pos == key:
            with open(_wordnet_source() / f, encoding="utf-8") as fh:
                names.update(line.split(" ", 1)[0].replace("_", " ") for line in fh if not line.startswith(" "))
    return sorted(names)


def concept_bank(extra: Iterable[str] = (), pos: str | None = None) -> list[str]:
    """The offline concept bank: every WordNet 3.0 lemma (:func:`wordnet_lemmas`, ~147k), in a fixed order, then
    ``extra`` entries not already there. ``pos`` restricts to one part of speech ("n", "v", "a", "r")."""
    names = wordnet_lemmas(pos)
    seen = set(names)
    return names + [e for e in dict.fromkeys(extra) if e not in seen]


def subset_bank(bank: Sequence[str], keep: Iterable[str] | None = None, n: int | None = None, seed: int = 0
                ) -> list[str]:
    """A sub-bank (Table 4): entries in ``keep`` (the C_CC3M analog: concepts found in a real caption set), or,
    with ``n``, ``n`` entries drawn at random (C_rand), in bank order."""
    if (keep is None) == (n is None):
        raise ValueError("give exactly one of keep (a concept set) or n (a random subset size)")
    if keep is not None:
        k = set(keep)
        return [e for e in bank if e in k]
    if not 0 < n <= len(bank):
        raise ValueError(f"n must be in [1, {len(bank)}], got {n}")
    idx = np.sort(np.random.default_rng(seed).choice(len(bank), n, replace=False))
    return [bank[i] for i in idx]


# ---------------------------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------------------------


STAND_IN_TEMPLATES = (
    "a {tone} {noun} next to a {concept}",
    "a {concept} beside a {cut} {pattern} {noun}",
    "photo of a {tone} {pattern} {noun} near the {concept}",
    "a {cut} {noun} with a {concept} print, {tone}",
    "{concept} and a {tone} {noun} on display",
    "a {tone} {noun} lying on a {concept}",
    "someone holds a {concept} and wears a {cut} {tone} {noun}",
)
#: Used when the concept is itself a garment word of the world (the caption is about that garment).
GARMENT_TEMPLATES = ("a {tone} {noun}, {pattern}", "photo of a {cut} {tone} {noun}", "a {pattern} {noun} on a table",
                     "a {cut} {noun} in {tone} on a black background")


@dataclass
class StandInCaptioner:
    """The mini world's offline stand-in for the caption LLM (documented in notebook 08).

    For concept ``c`` it writes a one-sentence caption (<= 15 words, one of :data:`STAND_IN_TEMPLATES`) that places
    ``c`` in a scene with a garment the mini text-to-image models know. If ``c`` is itself a garment word of the
    world, the garment is ``c``'s class and the noun is ``c``; otherwise the garment class is drawn from a Zipf
    prior over the ten classes (``zipf`` exponent; class order shuffled once by ``seed``), like an LLM that keeps
    returning to the same few objects. Tone, pattern and cut words are uniform. ``labels`` of the last call give
    each caption's garment class. Deterministic given ``seed`` and the concept list.
    """

    seed: int = 0
    zipf: float = 1.2
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    def key(self) -> str:
        """Names the captions this captioner writes (caches)."""
        return f"stand-in-s{self.seed}-z{self.zipf:g}"

    def class_prior(self) -> np.ndarray:
        order = np.random.default_rng(self.seed).permutation(len(NAMES))
        p = np.empty(len(NAMES))
        p[order] = 1.0 / np.arange(1, len(NAMES) + 1) ** self.zipf
        return p / p.sum()

    def __call__(self, concepts: Sequence[str], pass_index: int = 0) -> list[str]:
        garment = {w: k for k, syn in enumerate(SYNONYMS) for w in syn}
        prior = self.class_prior()
        rng = np.random.default_rng([self.seed, pass_index])
        tones, pats, cuts = ([w for ws in d.values() for w in ws] for d in (TONE, PATTERN, CUT))
        out, labels = [], []
        for c in concepts:
            k = garment.get(c.lower())
            if k is None:
                k = int(rng.choice(len(prior), p=prior))
                noun = SYNONYMS[k][0] if rng.random() < 0.6 else SYNONYMS[k][int(rng.integers(len(SYNONYMS[k])))]
                pool = STAND_IN_TEMPLATES
            else:
                noun, pool = c.lower(), GARMENT_TEMPLATES
            t = pool[int(rng.integers(len(pool)))]
            out.append(t.format(concept=c, noun=noun, tone=tones[int(rng.integers(len(tones)))],
                                pattern=pats[int(rng.integers(len(pats)))], cut=cuts[int(rng.integers(len(cuts)))]))
            labels.append(k)
        self.labels = np.asarray(labels, dtype=np.int64)
        return out


def generate_captions(captioner: Callable[..., list[str]], concepts: Sequence[str], passes: int = 1,
                      cache: str | Path | None = None, launcher: Launcher | None = None
                      ) -> tuple[list[str], np.ndarray]:
    """``passes`` captions per concept (one per concept per pass, sec. 3.1): ``(captions, concept index)``.
    A :class:`StandInCaptioner`'s ``labels`` then hold the garment class of every caption of every pass.
    ``cache``: a folder; each pass is written there as soon as it is done (a checked file per pass, in a folder
    named by the captioner — ``captioner.key()`` —, the concepts and ``passes``), so an interrupted run of an LLM's
    millions of captions resumes at the first missing pass, and a finished pool is read back, not regenerated.

    An :class:`~synscale.methods.llm.LLMCaptioner` with a cache and a launcher other than ``inprocess``
    (``SYNSCALE_LAUNCHER``) captions the missing passes as the job ``synscale llm --spec …``
    (:func:`synscale.methods.llm.launch_captions`: each rank takes every world-size-th pass); this process waits, then
    reads the passes."""
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    folder = caption_folder(captioner, concepts, passes, cache) if cache is not None else None
    if folder is not None and isinstance(captioner, LLMCaptioner):
        launcher = launcher or Launcher.from_env()
        if not launcher.inprocess and missing_passes(folder, passes):
            launch_captions(captioner, concepts, passes, Path(cache), folder, launcher)
    caps, labels = [], []
    stand_in = isinstance(captioner, StandInCaptioner)
    for p in range(passes):
        got = caption_pass(captioner, concepts, p, folder)
        caps += got["captions"]
        if stand_in:
            labels.append(np.asarray(got["labels"], dtype=np.int64))
    if stand_in:  # the stand-in's garment class of every caption, all passes
        captioner.labels = np.concatenate(labels)
    return caps, np.tile(np.arange(len(concepts)), passes)


# ---------------------------------------------------------------------------------------------------------------
# MetaCLIP balanced sampling
# ---------------------------------------------------------------------------------------------------------------

_PUNCTS = (",", ".", ";", ":", "?", "!", "`")


def spacing(text: str) -> str:
    """MetaCLIP's ``spacing``: pad with spaces, put spaces around punctuation, tabs/newlines -> spaces."""
    s = f" {text} "
    for p in _PUNCTS:
        s = s.replace(p, f" {p} ")
    for c in ("\t", "\n", "\r"):
        s = s.replace(c, " ")
    return s


class EntryIndex:
    """Fast exact equivalent of MetaCLIP's ``substr_matching``: `` entry `` in ``spacing(text)``.

    The spaced text split on single spaces gives tokens; an entry matches iff it equals consecutive tokens joined
    by single spaces. Word-level prefixes stop the scan early, so matching costs ~(tokens x longest prefix run).
    """

    def __init__(self, entries: Sequence[str]):
        self.entries = list(entries)
        self.ids: dict[str, int] = {}
        for i, e in enumerate(self.entries):
            self.ids.setdefault(e, i)  # duplicates: the first id
        self.prefixes: set[str] = set()
        for e in self.ids:
            words = e.split(" ")
            for n in range(1, len(words)):
                self.prefixes.add(" ".join(words[:n]))

    def match(self, text: str) -> list[int]:
        toks = spacing(text).split(" ")
        found: dict[int, None] = {}
        for i in range(len(toks)):
            if not toks[i]:
                continue
            s = toks[i]
            j = i + 1
            while True:
                e = self.ids.get(s)
                if e is not None:
                    found[e] = None
                if s not in self.prefixes or j >= len(toks) or not toks[j]:
                    break
                s = f"{s} {toks[j]}"
                j += 1
        return sorted(found)


def match_entries(texts: Sequence[str], entries: Sequence[str] | EntryIndex) -> list[list[int]]:
    """Per text, the ids of the entries it matches (MetaCLIP substring matching, see :class:`EntryIndex`)."""
    index = entries if isinstance(entries, EntryIndex) else EntryIndex(entries)
    return [index.match(t) for t in texts]


def entry_counts(matches: Sequence[Sequence[int]], n_entries: int) -> np.ndarray:
    """How many texts match each entry (``[n_entries]``)."""
    flat = np.fromiter((e for m in matches for e in m), dtype=np.int64)
    return np.bincount(flat, minlength=n_entries).astype(np.int64)


def balance_probs(counts: np.ndarray, t: float) -> np.ndarray:
    """MetaCLIP's per-entry probability ``p_e = t / max(count_e, t)`` (1 for tail entries)."""
    if t <= 0:
        raise ValueError(f"t must be positive, got {t}")
    c = np.asarray(counts, dtype=np.float64)
    return t / np.maximum(c, t)


def keep_probs(matches: Sequence[Sequence[int]], counts: np.ndarray, t: float) -> np.ndarray:
    """Per text, ``1 - prod_e (1 - p_e)`` over its matched entries (0 for a text that matches nothing)."""
    p = balance_probs(counts, t)
    out = np.zeros(len(matches))
    for i, m in enumerate(matches):
        if len(m):
            out[i] = 1.0 - np.prod(1.0 - p[np.asarray(m)])
    return out


def balanced_sample(matches: Sequence[Sequence[int]], counts: np.ndarray | None = None, t: float | None = None,
                    target: int | None = None, seed: int = 0, iters: int = 60) -> tuple[np.ndarray, float]:
    """Indices of the kept texts (sorted) and the ``t`` used: each text is kept with :func:`keep_probs` (one uniform
    draw per text from ``seed``; unmatched texts never kept), MetaCLIP's sampling. ``counts`` defaults to
    :func:`entry_counts` over ``matches`` (the pool).

    Give ``t``, or ``target`` for a set of exactly ``target`` texts: with the draws fixed the kept set only grows
    with ``t``, so ``t`` is the smallest that keeps at least ``target`` (bisection on ``log t``), and of the texts
    that enter at that ``t`` as many as needed are kept at random (seeded). Baselines of the same size then train on
    as many pairs (SynthCLIP states its sets' sizes; a Bernoulli draw alone misses them by a few per cent)."""
    if counts is None:
        counts = entry_counts(matches, 1 + max((e for m in matches for e in m), default=0))
    if (t is None) == (target is None):
        raise ValueError("give exactly one of t or target")
    rng = np.random.default_rng(seed)
    u = rng.random(len(matches))
    if t is not None:
        return np.flatnonzero(u < keep_probs(matches, counts, t)), float(t)
    matched = sum(1 for m in matches if len(m))
    if not 0 < target <= matched:
        raise ValueError(f"target {target} must be in [1, {matched}] (the texts that match any entry); "
                         "generate more captions or lower the target")
    kept = lambda t: u < keep_probs(matches, counts, t)  # noqa: E731
    lo, hi = 1e-9, float(max(1, np.max(counts)))
    for _ in range(iters):
        mid = float(np.sqrt(lo * hi))
        lo, hi = (mid, hi) if kept(mid).sum() < target else (lo, mid)
    below, at = kept(lo), kept(hi)
    entering = np.flatnonzero(at & ~below)
    extra = rng.choice(entering, target - int(below.sum()), replace=False)
    return np.sort(np.concatenate([np.flatnonzero(below), extra])), hi


def random_sample(n_pool: int, n: int, seed: int = 0) -> np.ndarray:
    """``n`` indices drawn uniformly without replacement from ``n_pool`` (sorted): the random-sampling ablation."""
    if not 0 < n <= n_pool:
        raise ValueError(f"n must be in [1, {n_pool}], got {n}")
    return np.sort(np.random.default_rng(seed).choice(n_pool, n, replace=False))


def concept_balance(labels: np.ndarray, num_classes: int) -> dict[str, float]:
    """How balanced a caption set is over classes: normalised entropy (1 = uniform) and max/min class share."""
    c = np.bincount(np.asarray(labels)[np.asarray(labels) >= 0], minlength=num_classes).astype(float)
    p = c / max(c.sum(), 1)
    nz = p[p > 0]
    return {"entropy": float(-(nz * np.log(nz)).sum() / np.log(num_classes)),
            "max_over_min": float(c.max() / max(c.min(), 1))}


# ---------------------------------------------------------------------------------------------------------------
# Images and the five tasks
# ---------------------------------------------------------------------------------------------------------------


def caption_prompts(captions: Sequence[str], classes: Sequence[str], labels: Sequence[int] | None = None,
                    config: str = "synthclip"):
    """A :class:`synscale.data.prompts.PromptSet` whose prompts are the captions (one image each), for ``ensure_set``.
    ``labels`` (e.g. the stand-in's garment class, or a real image's class) are stored with the images; -1 when
    unknown."""
    y = (np.broadcast_to(np.int64(-1), (len(captions),)) if labels is None  # no memory per caption
         else np.asarray(labels, dtype=np.int64))
    if len(y) != len(captions):
        raise ValueError(f"{len(captions)} captions but {len(y)} labels")
    # a lazy pool's captions (synscale.data.samples) stay lazy: 06's paper profile has 371M of them
    lazy = isinstance(captions, (Captions, ParquetColumn))
    return PromptSet(config, tuple(classes), y, captions if lazy else tuple(captions))


@dataclass
class Benchmark:
    """The data of SynthCLIP's five tasks (images uint8 arrays or lazy arrays of ``synscale.data.arrays``).

    ``probes``: name -> ``(x_train, y_train, x_test, y_test)`` for linear probing and few-shot (the paper's nine
    vision sets); ``retrieval``: name -> ``(images, texts, text_to_image)`` (MS-COCO, Flickr8k, Flickr30k; None:
    text ``i`` describes image ``i``); ``zero_shot``: ``(images, labels, class names)`` (ImageNet-val);
    ``retrieval_gallery``: retrieval searches folds of that many images (``evaluate.retrieval_recall``), None: all."""

    probes: dict[str, tuple]
    retrieval: dict[str, tuple]
    zero_shot: tuple
    retrieval_gallery: int | None = None


def mini_benchmark(world, tasks: Sequence[str] | None = None, zero_shot_n: int = 2000, retrieval_split: str = "v2",
                   retrieval_n: int = 1000, downstream_n: int | None = None, retrieval_gallery: int | None = None
                   ) -> Benchmark:
    """The mini world's five tasks: its downstream tasks (``world.downstream``; train and test capped at
    ``downstream_n``), ``retrieval_n`` real ``retrieval_split`` images with their web-like captions (searched in
    folds of ``retrieval_gallery`` images when given), and ``zero_shot_n`` val images."""
    probes = {t: tuple(a[:downstream_n] for a in world.downstream(t)) for t in (tasks or TASKS)}
    xr, _ = world.split(retrieval_split, retrieval_n)
    xv, yv = world.split("val", zero_shot_n)
    return Benchmark(probes, {retrieval_split: (xr, world.captions(retrieval_split, retrieval_n), None)},
                     (xv, yv, world.classes), retrieval_gallery)


def folder_benchmark(world, probe_root: str | Path, probe_tasks: Sequence[str], retrieval_root: str | Path,
                     retrieval_sets: Sequence[str], image_size: int, zero_shot_n: int | None = None,
                     retrieval_n: int | None = None, downstream_n: int | None = None,
                     retrieval_gallery: int | None = None) -> Benchmark:
    """The paper's five tasks by folder: probe sets ``<probe_root>/<task>/{train,test}/<class>/``
    (``world.folder.probe_task``), retrieval sets ``<retrieval_root>/<set>/captions.tsv``
    (``world.folder.retrieval_set``) and the folder world's val split, all read at ``image_size``."""
    probes = {t: probe_task(probe_root, t, image_size, downstream_n) for t in probe_tasks}  # lazy: nothing decoded
    retrieval = {r: retrieval_set(retrieval_root, r, image_size, retrieval_n) for r in retrieval_sets}
    xv, yv = world.split("val", zero_shot_n)
    return Benchmark(probes, retrieval, (xv, yv, world.classes), retrieval_gallery)


def five_tasks(model, tokenizer, bench: Benchmark, templates: int = 7, few_shot_kw: dict | None = None,
               items: dict | None = None) -> dict[str, float]:
    """SynthCLIP's five tasks on ``bench``, in percent.

    ``linear_probing`` / ``few_shot``: mean over the probe sets of linear-probe top-1 and N-way 5-shot prototype
    accuracy on frozen image features (N = 5, or fewer when fewer classes have 20 test images);
    ``image_retrieval`` / ``text_retrieval``: recall@5 (CLIP_benchmark's default, which SynthCLIP reports), mean
    over the retrieval sets, within ``bench.retrieval_gallery``-image folds when set; recall@1 beside it
    (``image_retrieval@1``, ``text_retrieval@1``); ``zero_shot``: top-1 with ``templates`` CLIP templates (and its
    loss). Per-set values too. ``items`` (a dict) receives the per-item results each headline score averages —
    ``items[(task, set)]``: test-image hits, episode accuracies, per-query recall@5 hits — for bootstrap
    intervals (:func:`synscale.studies.claims.delta_mtl_replicates`)."""
    items = {} if items is None else items
    out: dict[str, float] = {}
    lp, fs = [], []
    feats = E.FeatureCache(lambda x: E.image_features(model, x).numpy())  # coarse/tone/cut share their images
    for task, (xtr, ytr, xte, yte) in bench.probes.items():
        ftr, fte = feats(xtr), feats(xte)
        r = E.linear_probe(ftr, ytr, fte, yte)
        items[("linear_probing", task)] = r["hits"]
        lp.append(100 * r["top1"])
        kw = {"k_shot": 5, "n_query": 15, "episodes": 100, **(few_shot_kw or {})}
        _, cnt = np.unique(yte, return_counts=True)  # 5-way, or fewer when fewer classes have enough images
        kw.setdefault("n_way", int(min(5, max(2, (cnt >= kw["k_shot"] + kw["n_query"]).sum()))))
        r = E.few_shot(fte, yte, **kw)
        items[("few_shot", task)] = r["episode_top1"]
        fs.append(100 * r["top1"])
        out[f"linear_probing.{task}"], out[f"few_shot.{task}"] = lp[-1], fs[-1]
    out["linear_probing"], out["few_shot"] = float(np.mean(lp)), float(np.mean(fs))
    rec = {}
    for name, (xr, texts, t2i) in bench.retrieval.items():
        r = E.retrieval_eval(model, tokenizer, xr, texts, t2i, ks=(1, 5), gallery=bench.retrieval_gallery, hits=True)
        for d in ("image", "text"):
            items[(f"{d}_retrieval", name)] = r[f"{d}_retrieval_hits@5"]
            for k, suffix in ((5, ""), (1, "@1")):
                rec.setdefault(f"{d}_retrieval{suffix}", []).append(100 * r[f"{d}_retrieval_recall@{k}"])
                out[f"{d}_retrieval{suffix}.{name}"] = rec[f"{d}_retrieval{suffix}"][-1]
    out.update({m: float(np.mean(v)) for m, v in rec.items()})
    xv, yv, names = bench.zero_shot
    clf = E.zero_shot_classifier(model, tokenizer, list(names), clip_templates(templates))
    z = E.zero_shot_eval(model, xv, yv, clf)
    items[("zero_shot", "val")] = z["hits"]
    out["zero_shot"], out["zero_shot_loss"] = 100 * z["top1"], z["loss"]
    return out


@dataclass(frozen=True)
class Trainer:
    """How notebook 08 trains and scores each CLIP, the same for every run: ``kind`` ``"synscale"`` trains the mini
    CLIP in memory (:func:`synscale.methods.clip.train_new`), ``"open_clip"`` runs open_clip's trainer on shards
    (:func:`synscale.methods.clip.train_open_clip`, under torchrun when ``nproc`` > 1) with SynthCLIP's random resized
    crops (scale 0.5–1). ``warmup_epochs`` > 0 sets each run's warm-up to that many epochs of its own data
    (SynthCLIP: 1), else ``warmup`` steps."""

    kind: str
    epochs: float
    batch_size: int
    lr: float
    weight_decay: float
    warmup: int
    warmup_epochs: float = 0.0
    clip_model: str = "synscale-mini-clip"
    logs: Path | None = None  # open_clip: where its runs live (cache)
    nproc: int = 1
    precision: str = "fp32"
    workers: int = 2
    gpu_batch: int = 0

    def __post_init__(self):
        if self.kind not in ("synscale", "open_clip"):
            raise ValueError(f"trainer must be 'synscale' (in memory, mini world) or 'open_clip' (shards), "
                             f"got {self.kind!r}")

    def fit(self, name: str, data: tuple, bench: Benchmark, seed: int, **task_kw
            ) -> tuple[dict[str, float], dict, dict]:
        """Train one CLIP on ``data`` = (images or shard urls, captions) with ``seed`` and score it on the five
        tasks: ``(scores, run info, per-item results)`` (:func:`five_tasks`)."""
        images_or_urls, captions = data
        n = len(captions)
        warm = int(np.ceil(self.warmup_epochs * n / self.batch_size)) if self.warmup_epochs > 0 else self.warmup
        items: dict = {}
        if self.kind == "synscale":
            steps = clip.epochs_to_steps(self.epochs, n, self.batch_size)
            model, tok, st = clip.train_new(images_or_urls, captions, init_seed=seed, steps=steps,
                                            batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                                            warmup=warm, seed=seed, progress=True)
        else:
            label = f"{name.replace(' ', '_').replace('+', '')}-seed{seed}"
            model, tok, st = clip.train_open_clip([images_or_urls], n, self.logs, label=label, epochs=self.epochs,
                                                  model=self.clip_model, warmup=warm, nproc=self.nproc, seed=seed,
                                                  hparams={"batch_size": self.batch_size, "lr": self.lr,
                                                           "weight_decay": self.weight_decay},
                                                  precision=self.precision, workers=self.workers,
                                                  gpu_batch=self.gpu_batch, extra=["--aug-cfg", "scale=(0.5,1.0)"])
        scores = five_tasks(model, tok, bench, items=items, **task_kw)
        info = {"run": name, "seed": seed, "pairs": n, "steps": clip.epochs_to_steps(self.epochs, n, self.batch_size),
                "seconds": st["seconds"], "images_per_s": st["images_per_s"], "final_loss": st["final_loss"]}
        return scores, info, items
