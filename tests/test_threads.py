"""The same seed gives the same numbers whatever the thread count: training and generation pin it."""
import numpy as np
import pytest
import torch

from synscale.methods import clip, train
from synscale.runtime import threads
from synscale.runtime.checkpoint import TrainConfig


def _under(n, fn):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(old)


def test_a_classifier_trains_to_the_same_weights_with_one_and_two_threads(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (64, 32, 32), dtype=np.uint8), rng.integers(0, 10, 64)
    cfg = TrainConfig(steps=4, batch_size=32, warmup=1, ckpt_every=4)

    def fit(k):
        torch.manual_seed(0)
        m = train.create("resnet18", 10, channels=[8, 16, 16, 16])
        train.train_classifier(m, x, y, cfg, tmp_path / f"t{k}", progress=False)
        return m.state_dict()

    one, two = _under(1, lambda: fit(1)), _under(2, lambda: fit(2))
    for k in one:
        assert torch.equal(one[k], two[k]), k


def test_a_clip_trains_to_the_same_weights_with_one_and_two_threads():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, (32, 32, 32), dtype=np.uint8)
    caps = [f"a photo of a {w}" for w in ("coat", "bag", "dress", "shirt")] * 8

    def fit():
        m, _, _ = clip.train_new(x, caps, steps=3, batch_size=16, lr=1e-3, warmup=1, progress=False)
        return m.state_dict()

    one, two = _under(1, fit), _under(2, fit)
    for k in one:
        assert torch.equal(one[k], two[k]), k


def test_the_thread_count_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.count() == 3
    with threads.fixed() as n:
        assert n == 3 and torch.get_num_threads() == 3
    monkeypatch.setenv(threads.ENV, "0")
    with pytest.raises(ValueError, match="SYNSCALE_THREADS=0"):
        threads.count()


_PROBE = """
import hashlib, json, torch
from synscale.runtime.threads import capability
torch.set_num_threads(1); torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 4))
opt = torch.optim.AdamW(m.parameters(), 1e-2)
x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 4, (16,))
for _ in range(5):
    opt.zero_grad(); torch.nn.functional.cross_entropy(m(x), y).backward(); opt.step()
w = b"".join(p.detach().numpy().tobytes() for p in m.parameters())
print(json.dumps([capability(), hashlib.sha256(w).hexdigest()]))
"""


def _probe(env: dict) -> tuple[str, str]:
    import json
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in threads.ISAS["sse4"] and k != "OPENBLAS_CORETYPE"}
    out = subprocess.run([sys.executable, "-c", _PROBE], env={**clean, **env}, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_isa_cap_reaches_torchs_kernels_and_training_repeats_under_it():
    """Under the cap torch dispatches to the capped kernels, and training under the same cap gives the same weights
    (on an AVX-512 machine the native kernels give others: the cap is what makes two CPUs agree)."""
    capped = _probe(threads.isa_env("avx2"))
    assert capped[0] == "AVX2"
    assert _probe(threads.isa_env("avx2")) == capped
    lower = _probe(threads.isa_env("sse4"))
    assert lower[0] == "DEFAULT"
    native = _probe({})
    if native[0] == "AVX512":
        assert native[1] != capped[1]  # the instruction set changes the numbers: why the study caps it


def test_the_isa_comes_from_the_environment_and_a_bad_one_is_one_line(monkeypatch):
    monkeypatch.delenv(threads.ISA_ENV, raising=False)
    assert threads.isa() == "avx2" and threads.isa_env()["ATEN_CPU_CAPABILITY"] == "avx2"
    monkeypatch.setenv(threads.ISA_ENV, "native")
    assert threads.isa_env() == {threads.ISA_ENV: "native"}
    monkeypatch.setenv(threads.ISA_ENV, "avx9")
    with pytest.raises(ValueError, match="SYNSCALE_CPU_ISA='avx9'"):
        threads.isa()
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Zen")  # a machine's own setting wins
    assert threads.isa_env("avx2")["OPENBLAS_CORETYPE"] == "Zen"
