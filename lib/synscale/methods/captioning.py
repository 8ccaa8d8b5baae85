"""BLIP-2 captions of a folder world's split: the IN-Captions prompts' source (sec. 3.1 of the scaling paper).

    synscale caption --root ~/data/imagenet --split train --model paper:blip2

writes ``<root>/captions/<split>.tsv`` ("<path relative to root>\\t<caption>" per line), appended batch by batch:
an interrupted run resumes where it stopped. Under a multi-process launcher (torchrun, SLURM) rank ``r`` of ``W``
captions every W-th image into ``<split>.rank<r>.tsv`` and rank 0 merges the parts in image order when all are done.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import Blip2ForConditionalGeneration, Blip2Processor

from synscale.data.weights import resolve
from synscale.data.world import folder as F
from synscale.runtime.distributed import barrier, default_device, dist_init
from synscale.runtime.progress import bar as tqdm


def caption_split(world: F.FolderWorld, split: str, model: str, batch_size: int = 64, device: str | None = None,
                  max_new_tokens: int = 30) -> Path:
    """BLIP-2 captions (transformers ``Blip2ForConditionalGeneration``, weights by local path / HF cache) of every
    image of ``split`` into ``<root>/captions/<split>.tsv``; images already captioned there are skipped, and the
    file is appended batch by batch, so an interrupted run resumes (rank-sharded under torchrun / SLURM)."""
    w = resolve(model, "blip2")  # paper:blip2, a cached repo id or a folder; one line if absent
    device = device or default_device()
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    processor = Blip2Processor.from_pretrained(str(w.path), local_files_only=True)
    net = Blip2ForConditionalGeneration.from_pretrained(str(w.path), local_files_only=True, dtype=dtype,
                                                        variant=w.variant).to(device)
    final = world.root / F.CAPTIONS / f"{split}.tsv"
    rank, world_size = dist_init()
    out = final if world_size == 1 else final.with_name(f"{split}.rank{rank}.tsv")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _captioned(final) | _captioned(out)
    paths, _ = world.files(split)
    todo = [p for p in paths[rank::world_size] if str(p.relative_to(world.root)) not in done]
    loader = F.ImageFiles(todo, 224)
    with open(out, "a") as f:
        for i in tqdm(range(0, len(todo), batch_size), desc=f"BLIP-2 captions of {split}", mininterval=30):
            batch = processor(images=list(loader[i : i + batch_size]), return_tensors="pt").to(device, dtype)
            ids = net.generate(**batch, max_new_tokens=max_new_tokens)
            for p, cap in zip(todo[i : i + batch_size], processor.batch_decode(ids, skip_special_tokens=True)):
                f.write(f"{p.relative_to(world.root)}\t{' '.join(cap.split())}\n")
            f.flush()
    if world_size > 1:
        barrier()
        if rank == 0:
            _merge(final, [final.with_name(f"{split}.rank{r}.tsv") for r in range(world_size)], paths, world.root)
        barrier()
    return final


def _captioned(path: Path) -> set[str]:
    return {line.split("\t", 1)[0] for line in path.read_text().splitlines()} if path.exists() else set()


def _merge(final: Path, parts: list[Path], paths: list[Path], root: Path) -> None:
    """The ranks' parts and what ``final`` already held, one line per image in the split's order, written
    atomically; the parts are removed after."""
    rows: dict[str, str] = {}
    for p in [final, *parts]:
        if p.exists():
            for line in p.read_text().splitlines():
                rows.setdefault(line.split("\t", 1)[0], line)
    order = [str(p.relative_to(root)) for p in paths]
    tmp = final.with_suffix(".tsv.tmp")
    tmp.write_text("".join(rows[r] + "\n" for r in order if r in rows))
    tmp.replace(final)
    for p in parts:
        p.unlink(missing_ok=True)


def main(argv: list[str] | None = None, prog: str = "synscale caption") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, type=Path, help="the folder world (ImageNet-style class folders)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--model", default="paper:blip2",
                    help="BLIP-2 weights: paper:blip2 (Salesforce/blip2-opt-2.7b, HF cache), a repo id or a folder")
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args(argv)
    print(caption_split(F.FolderWorld(a.root.expanduser()), a.split, a.model, a.batch_size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
