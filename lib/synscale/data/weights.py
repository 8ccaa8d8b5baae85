"""Where every model's weights come from, resolved in one place: the shipped mini world, a local path, or a Hugging
Face repository in the local hub cache — the way a researcher's GPU node holds the paper's models.

Params name weights in one of four ways:

- ``"mini"``: the mini world's component (``mini_world/``, checksummed).
- ``"paper:<role>"``: the paper's model for that role (:data:`PAPER`), e.g. ``paper:sd`` is Stable Diffusion v1.5.
  Its environment variable (``SYNSCALE_SD`` …) may point it at a local folder or another repo id; otherwise its repo
  ids are looked up in the Hugging Face cache in order (a withdrawn id such as ``runwayml/stable-diffusion-v1-5``
  stays an alias of its maintained copy, so a cache holding either works).
- ``"<org>/<name>"`` or ``"hf-hub:<org>/<name>"``: that repo in the cache; ``"<org>/<name>@<revision>"`` pins a
  cached commit (or a branch / tag the cache has a ``refs/`` entry for).
- anything else: a local file or folder (``~`` and ``${VAR:-default}`` expand).

The cache is found as ``huggingface_hub`` finds it, but from the environment at call time (``HF_HUB_CACHE``, else
``HUGGINGFACE_HUB_CACHE``, else ``HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub`` or
``~/.cache/huggingface/hub``; ``~`` and ``$VAR`` expand), and read through huggingface_hub itself:
``snapshot_download(local_files_only=True)`` follows ``refs/main`` (and refuses a snapshot its own tree listing shows
incomplete). A repo fetched with ``--revision <sha>`` has no ``refs/main``, only ``snapshots/<sha>``: then
``scan_cache_dir`` lists its snapshots and the only one is used, or, if there are several, the most recently
modified one with a warning naming it (pin another with ``<org>/<name>@<sha>``). torch hub files (FID's Inception,
LPIPS's AlexNet) live under ``TORCH_HOME/hub/checkpoints``. Nothing is downloaded. :func:`problems` checks that what
a run needs is complete (a diffusers pipeline's every component in some variant, a model's config and weights, an
LLM's tokenizer) and says, in one line each, what is missing and how to provide it — before any GPU hour is spent.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from synscale.data import generators
from synscale.data.world import default_dir, verify
from synscale.runtime.paths import expand_path

MINI = "mini"
PREFIX = "paper:"


class MissingModelError(FileNotFoundError):
    """A named model is not on this machine (or incomplete); the message says what and how to provide it."""


@dataclass(frozen=True)
class PaperModel:
    """A model the papers use: the repo ids that hold it (maintained first), the variable that overrides it, the
    library that loads it, and (torch hub files) the file name under ``TORCH_HOME/hub/checkpoints``."""

    role: str
    repos: tuple[str, ...]
    env: str
    kind: str  # diffusers | timm | open_clip | transformers | torch_hub
    what: str
    file: str = ""


#: the text-to-image generators with repos: entries of the registry (``params/generators.yaml``), not code
GENERATORS: dict[str, PaperModel] = {g.key: PaperModel(g.key, g.repos, g.env or f"SYNSCALE_{g.key.upper()}",
                                                       "diffusers", g.what)
                                     for g in generators.registry().values() if g.repos}
PAPER: dict[str, PaperModel] = GENERATORS | {m.role: m for m in (
    PaperModel("oracle", ("timm/vit_base_patch16_224.augreg_in21k_ft_in1k",), "SYNSCALE_ORACLE", "timm",
               "ViT-B/16 ImageNet classifier: recognizability and diversity (Fan sec. 3.2)"),
    PaperModel("clip", ("laion/CLIP-ViT-B-16-laion2B-s34B-b88K",), "SYNSCALE_OPENCLIP", "open_clip",
               "OpenCLIP ViT-B/16 trained on LAION-2B: the upstream CLIP of the retrieval baseline (Geng)"),
    PaperModel("blip2", ("Salesforce/blip2-opt-2.7b",), "SYNSCALE_BLIP2", "transformers",
               "BLIP-2 OPT-2.7b: the IN-Captions captioner (Fan sec. 3.1)"),
    PaperModel("word2sen", ("mrm8488/t5-base-finetuned-common_gen",), "SYNSCALE_WORD2SEN", "transformers",
               "T5 CommonGen word-to-sentence model: the Word2Sen prompts (Fan sec. 3.1, after He et al.)"),
    PaperModel("mistral", ("mistralai/Mistral-7B-Instruct-v0.2",), "SYNSCALE_MISTRAL", "transformers",
               "Mistral-7B-Instruct v0.2: SynthCLIP's caption LLM"),
    PaperModel("llama2", ("meta-llama/Llama-2-7b-hf",), "SYNSCALE_LLAMA2", "transformers",
               "LLaMA-2 7B (base, in-context prompts): the retrieval baseline's caption LLM (Geng, after SynCLR)"),
    PaperModel("fid_inception", (), "SYNSCALE_FID_INCEPTION", "torch_hub",
               "FID's Inception-v3 (pytorch-fid / torch-fidelity weights)", "pt_inception-2015-12-05-6726825d.pth"),
    PaperModel("lpips_alex", (), "TORCH_HOME", "torch_hub",
               "torchvision's AlexNet, LPIPS's backbone (torchmetrics)", "alexnet-owt-7be5be79.pth"),
)}


#: chains a family's super-resolution stage after its weights: ``"paper:if+paper:if_stage2"``
CASCADE = "+"
#: the weights role of each text-to-image generator's super-resolution stage (the registry's ``stage2``)
STAGE2_ROLES = {g.key: g.stage2 for g in generators.registry().values() if g.stage2}


def stages(name: str) -> tuple[str, str | None]:
    """A text-to-image weights name split into the family's own weights and its super-resolution stage's (``None``
    when it has none): ``"paper:if+paper:if_stage2"`` -> ``("paper:if", "paper:if_stage2")``."""
    base, _, up = name.partition(CASCADE)
    return base, up or None


@dataclass(frozen=True)
class Weights:
    """Resolved weights: the folder or file, the repo id it came from (if any), and the diffusers/transformers
    weight ``variant`` to load (``"fp16"`` where only half-precision files are cached)."""

    path: Path
    repo: str | None = None
    variant: str | None = None


def hub_cache() -> Path:
    """The Hugging Face hub cache, found as ``huggingface_hub.constants`` finds it but from the environment now
    (those constants are read once, at import): ``HF_HUB_CACHE``, else ``HUGGINGFACE_HUB_CACHE``, else
    ``HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub`` (``~/.cache/huggingface/hub``); ``~`` and ``$VAR``
    expand. Empty variables count as unset."""
    env = os.environ

    def expand(p: str) -> str:
        return os.path.expandvars(os.path.expanduser(p))

    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    hub = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(expand(home), "hub")
    return Path(expand(hub))


def torch_checkpoints() -> Path:
    """torch hub's download folder (``TORCH_HOME/hub/checkpoints``), where torchvision / torchmetrics look."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def is_repo_id(name: str) -> bool:
    name = name.removeprefix("hf-hub:")
    return (name.partition("@")[0].count("/") == 1 and not name.startswith(("/", ".", "~", "$"))
            and not Path(name).exists())


def _download_cmd(spec: str) -> str:
    """``hf download`` for ``org/name`` or ``org/name@revision``."""
    repo, _, rev = spec.partition("@")
    return f"hf download {repo}" + (f" --revision {rev}" if rev else "")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _cached(repo: str, revision: str, cache: Path) -> Path:
    """``snapshot_download(local_files_only=True)``: the snapshot folder ``revision`` (a branch or tag with a
    ``refs/`` entry, or a commit) names; an incomplete one (by huggingface_hub's cached tree listing) is an error."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError

    try:
        return Path(snapshot_download(repo, revision=revision, cache_dir=cache, local_files_only=True))
    except IncompleteSnapshotError as e:
        what = _one_line(e).split(" Outgoing traffic")[0].split(" The Hub could not")[0]  # its fix assumes a network
        raise MissingModelError(f"{repo}: {what} — on a machine with internet run `{_download_cmd(repo)}` and copy "
                                "its whole models--… folder again") from None


def _snapshot(repo: str, revision: str | None = None) -> Path | None:
    """The cached snapshot of ``repo`` (``refs/main``'s, or ``revision``'s), ``None`` when the cache has no such repo.

    Without ``refs/main`` (a ``--revision <sha>`` download, or a copy without ``refs/``) the repo's snapshots are
    listed by ``scan_cache_dir``: the only one is used, the most recently modified of several with a warning. A
    ``refs/main`` naming an absent snapshot, a repo without snapshots and a repo huggingface_hub's scan calls
    corrupted are one-line errors with the fix."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import LocalEntryNotFoundError
    from huggingface_hub.file_download import repo_folder_name

    cache = hub_cache()
    try:
        d = cache / repo_folder_name(repo_id=repo, repo_type="model")
    except ValueError:  # not a valid repo id (HFValidationError): the cache cannot hold it
        return None
    if not d.is_dir():
        return None
    try:
        return _cached(repo, revision or "main", cache)
    except LocalEntryNotFoundError:
        pass
    spec = f"{repo}@{revision}" if revision else repo
    ref = d / "refs" / "main"
    if revision is None and ref.is_file():
        sha = ref.read_text()
        if sha != sha.strip() and (d / "snapshots" / sha.strip()).is_dir():
            raise MissingModelError(f"{repo}: {ref} ends in whitespace, which huggingface_hub reads as part of the "
                                    f"snapshot name: rewrite it as `printf %s {sha.strip()} > {ref}`")
        raise MissingModelError(f"{repo}: refs/main names snapshot {sha.strip()}, which is not in {d / 'snapshots'}: "
                                f"copy the whole models--{repo.replace('/', '--')} folder again (or "
                                f"`{_download_cmd(spec)}`)")
    try:
        info = scan_cache_dir(cache)
    except (OSError, ValueError) as e:  # an unreadable cache folder
        raise MissingModelError(f"{repo}: huggingface_hub cannot scan the cache {cache} ({_one_line(e)}): fix its "
                                "permissions or point HF_HUB_CACHE at a readable copy") from None
    found = [r for r in info.repos if r.repo_type == "model" and r.repo_path.name == d.name]
    if not found:
        root = str(d.resolve())
        why = [_one_line(w) for w in info.warnings if root + os.sep in str(w) or f"({root})" in str(w)]
        raise MissingModelError(f"{repo}: huggingface_hub finds no usable snapshot in {d} ("
                                + (why[0] if why else "not a valid cache folder") + "): copy the whole "
                                f"models--{repo.replace('/', '--')} folder again, blobs/ and snapshots/ included, or "
                                f"`{_download_cmd(spec)}`")
    revisions = sorted(found[0].revisions, key=lambda r: (r.last_modified, r.commit_hash))
    if revision is not None:
        have = ", ".join(r.commit_hash + (f" ({', '.join(sorted(r.refs))})" if r.refs else "")
                         for r in revisions) or "none"
        raise MissingModelError(f"{repo}: revision {revision} is not cached in {d} (snapshots: {have}): on a machine "
                                f"with internet run `{_download_cmd(spec)}` and copy its models--… folder")
    if not revisions:
        raise MissingModelError(f"{repo}: {d} has no snapshot: copy the whole models--{repo.replace('/', '--')} "
                                f"folder again, snapshots/ included, or `{_download_cmd(repo)}`")
    chosen = revisions[-1]
    if len(revisions) > 1:
        warnings.warn(f"{repo}: no refs/main in {d}; using the most recently modified of {len(revisions)} snapshots, "
                      f"{chosen.commit_hash} (pin one with '{repo}@<sha>', or write its sha to refs/main)",
                      stacklevel=3)
    try:
        return _cached(repo, chosen.commit_hash, cache)  # huggingface_hub's path, and its completeness check
    except LocalEntryNotFoundError:  # a snapshot folder not named by a 40-hex commit: take it as scanned
        return chosen.snapshot_path


def _missing(role: str, name: str, tried: list[str]) -> MissingModelError:
    m = PAPER.get(role)
    where = (f"the Hugging Face cache {hub_cache()} (HF_HUB_CACHE / HUGGINGFACE_HUB_CACHE / HF_HOME) has none of "
             f"{', '.join(tried)}")
    if m is not None and m.kind == "torch_hub":
        where = f"{torch_checkpoints() / m.file} does not exist (TORCH_HOME)"
    fix = (f"on a machine with internet run `{_download_cmd(tried[0])}` and copy its models--… folder into the cache"
           if tried else "copy the file there")
    env = f", or set {m.env} to a local copy" if m is not None and m.env != "TORCH_HOME" else ""
    what = f"{role} weights '{name}'" + (f" ({m.what})" if m is not None else "")
    return MissingModelError(f"{what} not found: {where}; {fix}{env}")


def resolve(name: str, role: str = "") -> Weights:
    """Resolve a weights name (see the module docstring) to files on this machine, or raise a one-line
    :class:`MissingModelError` saying what is missing and how to provide it."""
    if name == MINI:
        return Weights(verify(default_dir(), role))
    if name.startswith(PREFIX):
        role = name[len(PREFIX):]
        if role not in PAPER:
            raise MissingModelError(f"unknown paper model '{name}'; known: "
                                    + ", ".join(PREFIX + r for r in PAPER))
        m = PAPER[role]
        override = os.environ.get(m.env) if m.env != "TORCH_HOME" else None
        if override:
            return resolve(override, role)
        if m.kind == "torch_hub":
            f = torch_checkpoints() / m.file
            if not f.is_file():
                raise _missing(role, name, [])
            return Weights(f)
        for repo in m.repos:
            snap = _snapshot(repo)
            if snap is not None:
                return Weights(snap, repo, _variant(snap, m.kind))
        raise _missing(role, name, list(m.repos))
    if is_repo_id(name):
        spec = name.removeprefix("hf-hub:")
        repo, _, revision = spec.partition("@")
        snap = _snapshot(repo, revision or None)
        if snap is None:
            raise _missing(role, name, [spec])
        return Weights(snap, repo, _variant(snap, PAPER[role].kind if role in PAPER else ""))
    p = Path(expand_path(name))
    if p.exists():
        return Weights(p, None, _variant(p, PAPER[role].kind if role in PAPER else "") if p.is_dir() else None)
    m = PAPER.get(role)
    env = f" (or set {m.env})" if m is not None and m.env != "TORCH_HOME" else ""
    raise MissingModelError(f"{role or 'model'} weights '{name}' not found: {p} does not exist and it is not a repo "
                            f"id; give a local folder/file or a Hugging Face repo id in the cache{env}")


def path(name: str, role: str = "") -> Path:
    """Just the resolved folder or file (:func:`resolve`)."""
    return resolve(name, role).path


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")


def _weight_files(folder: Path) -> list[str]:
    """Weight (and shard index) files in ``folder``; a link whose blob is missing (a cache copied without
    ``blobs/``) does not count."""
    return [p.name for p in folder.iterdir()
            if (p.name.endswith(_WEIGHT_SUFFIXES) or p.name.endswith(".index.json")) and p.is_file()]


_FP16 = re.compile(r"\.fp16[.-]|\.index\.fp16\.json$")  # model.fp16.safetensors, model.fp16-00001-of-00002…


def _variant(folder: Path, kind: str) -> str | None:
    """``"fp16"`` when a diffusers pipeline's (or a transformers model's) weights are cached as the fp16 variant
    only (``*.fp16.safetensors``, sharded ``*.fp16-00001-of-00002.safetensors``), as IF and aMUSEd usually are, in
    some component; diffusers then loads each component's fp16 files, or its plain ones where it has no fp16 version
    (IF's watermarker). ``None`` when every component has plain weights."""
    if kind not in ("diffusers", "transformers") or not folder.is_dir():
        return None
    folders = [folder / c for c in _components(folder)] if kind == "diffusers" else [folder]
    for d in folders:
        files = _weight_files(d) if d.is_dir() else []
        if files and all(_FP16.search(f) for f in files):
            return "fp16"
    return None


def _components(folder: Path) -> list[str]:
    """The weight-bearing components a diffusers ``model_index.json`` lists (tokenizers and schedulers have none)."""
    import json

    f = folder / "model_index.json"
    if not f.is_file():
        return []
    index = json.loads(f.read_text())
    return [k for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0] is not None
            and not any(s in v[1] for s in ("Tokenizer", "Scheduler", "ImageProcessor", "FeatureExtractor"))]


def completeness(w: Weights, kind: str) -> str | None:
    """What a resolved model lacks for its loader (``None`` when complete): a diffusers component without config
    or weights, a timm / open_clip / transformers folder without its config, weights or (LLMs) tokenizer."""
    p = w.path
    if kind == "torch_hub" or p.is_file():
        return None
    need: list[tuple[Path, tuple[str, ...]]] = []
    if kind == "diffusers":
        if not (p / "model_index.json").is_file():
            return "no model_index.json"
        for c in _components(p):
            if not (p / c / "config.json").is_file():
                return f"component {c}/ has no config.json"
            if not (_weight_files(p / c) if (p / c).is_dir() else []):
                return f"component {c}/ has no weights"
        return None
    if kind == "timm":
        need = [(p, ("config.json",)), (p, ("model.safetensors", "pytorch_model.bin"))]
    elif kind == "open_clip":
        need = [(p, ("open_clip_config.json",)), (p, ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"))]
    elif kind == "transformers":
        weights = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                   "pytorch_model.bin.index.json", "model.fp16.safetensors")
        need = [(p, ("config.json",)), (p, weights), (p, ("tokenizer.json", "tokenizer.model", "spiece.model",
                                                           "vocab.json"))]
    for folder, names in need:
        if not any((folder / n).is_file() for n in names):
            return f"no {' or '.join(names)}"
    return None


def problems(needs: list[tuple[str, str]]) -> list[str]:
    """One line per ``(role, name)`` whose weights are missing or incomplete (empty when all are there)."""
    out = []
    for role, name in dict.fromkeys(needs):
        if name == MINI:
            continue
        try:
            w = resolve(name, role)
        except MissingModelError as e:
            out.append(str(e))
            continue
        kind = PAPER[role].kind if role in PAPER else ""
        lack = completeness(w, kind) if kind else None
        if lack:
            out.append(f"{role} weights '{name}' at {w.path} are incomplete ({lack}): copy the repo again "
                       f"(`hf download {w.repo or name}`)")
    return out


def inventory():
    """One row per paper model (:data:`PAPER`): where it is looked for, whether it is here and complete, and the fix
    when it is not (``pandas.DataFrame``; notebook 00 shows it)."""
    import pandas as pd

    rows = []
    for role, m in PAPER.items():
        name = PREFIX + role
        where = ", ".join(m.repos) or f"$TORCH_HOME/hub/checkpoints/{m.file}"
        problem = (problems([(role, name)]) or [None])[0]
        try:
            w = resolve(name, role)
        except MissingModelError:
            w = None
        rows.append({"role": role, "model": m.what, "looked up as": where, "override": m.env, "found": problem is None,
                     "path": str(w.path) if w else None, "variant": w.variant if w else None, "problem": problem})
    return pd.DataFrame(rows)
