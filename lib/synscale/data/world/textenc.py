"""The text side shared by the mini text-to-image models: an offline CLIP tokenizer and a small CLIP text config.

The tokenizer is transformers' ``CLIPTokenizer`` built from open_clip's BPE vocabulary (shipped in the
open_clip wheel), so token ids equal open_clip's and nothing is downloaded: ``vocab.json`` is open_clip's
encoder with ``<start_of_text>``/``<end_of_text>`` renamed to ``<|startoftext|>``/``<|endoftext|>``, and
``merges.txt`` is ``#version: 0.2`` plus the BPE file's merge lines (as CLIP's own files are made).
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

MAX_LENGTH = 77  # CLIP's context; IFPipeline pads prompts to 77 tokens, so every text encoder takes 77


def write_tokenizer_files(out: Path) -> Path:
    """Write vocab.json + merges.txt (+ tokenizer config) into ``out``; return ``out``."""
    from open_clip.tokenizer import SimpleTokenizer, default_bpe

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(k, k): v for k, v in SimpleTokenizer().encoder.items()}
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    with gzip.open(default_bpe(), "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]  # exactly the merges open_clip's SimpleTokenizer uses
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return out


def build_tokenizer(out: Path):
    """A ``CLIPTokenizer`` saved in ``out`` (``save_pretrained`` layout) and returned."""
    from transformers import CLIPTokenizer

    d = write_tokenizer_files(out)
    tok = CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"), model_max_length=MAX_LENGTH,
                        pad_token="<|endoftext|>")
    tok.save_pretrained(str(out))
    return tok


def text_config(width: int = 64, layers: int = 2, heads: int = 2, projection_dim: int = 64):
    """A small ``CLIPTextConfig`` over the full CLIP vocabulary (49,408 ids) and 77 positions."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=49408, hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
        num_attention_heads=heads, max_position_embeddings=MAX_LENGTH, projection_dim=projection_dim,
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )
