"""open_clip's own trainer (``open_clip_train.main``) with four additions, as a module to launch:

    synscale clip <open_clip_train arguments>            # one process (CPU or one GPU)
    torchrun --nproc-per-node 8 -m synscale.methods.openclip_train <arguments>       # the paper's multi-GPU runs

1. The mini world's CLIP config (``synscale.methods.clip.MINI_NAME``) and the rehearsal's shrunk ViT-B-16
   (``synscale.methods.clip.REHEARSAL_NAME``) are registered, so ``--model synscale-mini-clip`` trains the mini CLIP
   with the very code that trains ViT-B/16 at paper scale.
2. open_clip_train 3.3's webdataset reader stops with ``KeyError: 'fname'`` under webdataset >= 0.2.96, whose
   ``tar_file_expander`` yields an end-of-file marker ``{}`` by default (open_clip issue #935, webdataset issue
   #384). The fix the maintainers give there, ``eof_value=None``, is applied here until a release carries it.
3. open_clip's ``setup_logging`` sets every logger to INFO, torch's too, whose compile statistics then fill the
   end of each log; torch's loggers go back to WARNING so a failed run's log ends with its error.
4. On CPUs, several processes (gloo) train without ``device_ids`` in ``DistributedDataParallel``, which torch
   requires there (:func:`_cpu_ddp`): the rehearsal's 2-rank runs of the paper's trainer.
5. webdataset's sample shuffle buffer, which open_clip leaves seeded by pid and clock, is seeded by rank, so a
   run repeats: the same data, settings and launcher give the same weights (a named difference from open_clip,
   whose shard order is already seeded by ``--seed`` and epoch).

Arguments are open_clip_train's, unchanged; :func:`synscale.methods.clip.open_clip_argv` writes them for the paper's
runs.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from synscale.methods import clip
from synscale.runtime import threads


def _patch_webdataset_eof() -> None:
    import open_clip_train.data as data
    from webdataset.tariterators import tar_file_expander, url_opener

    def tarfile_to_samples_nothrow(src, handler=data.log_and_continue):
        files = tar_file_expander(url_opener(src, handler=handler), handler=handler, eof_value=None)
        return data.group_by_keys_nothrow(files, handler=handler)

    data.tarfile_to_samples_nothrow = tarfile_to_samples_nothrow
    if not getattr(data.wds.shuffle, "synscale_seeded", False):  # seeded sample buffer (addition 5)
        unseeded = data.wds.shuffle

        def shuffle(*args, seed=None, rng=None, **kw):
            if seed is None and rng is None:
                seed = 7919 + int(os.environ.get("RANK", 0))
            return unseeded(*args, seed=seed, rng=rng, **kw)

        shuffle.synscale_seeded = True
        data.wds.shuffle = shuffle


def _quiet_torch_logs() -> None:
    import logging

    import open_clip_train.main as main

    setup = main.setup_logging

    def setup_logging(*args, **kwargs):
        setup(*args, **kwargs)
        for name in list(logging.root.manager.loggerDict):
            if name == "torch" or name.startswith("torch."):
                logging.getLogger(name).setLevel(logging.WARNING)

    main.setup_logging = setup_logging


def _cpu_ddp() -> None:
    """open_clip_train wraps the model as ``DistributedDataParallel(model, device_ids=[device])``, which torch
    refuses for a CPU module: on CPUs (gloo; the rehearsal's 2-rank runs) the wrapper is built without device ids.
    Patched in this trainer process only (it runs nothing else)."""
    ddp = torch.nn.parallel.DistributedDataParallel
    if getattr(ddp, "synscale_cpu_aware", False):
        return

    class CpuAwareDDP(ddp):
        synscale_cpu_aware = True

        def __init__(self, module, device_ids=None, **kw):
            on_cpu = device_ids and all(torch.device(d).type == "cpu" for d in device_ids)
            super().__init__(module, device_ids=None if on_cpu else device_ids, **kw)

    torch.nn.parallel.DistributedDataParallel = CpuAwareDDP


def main(argv: list[str] | None = None, prog: str = "synscale clip") -> None:
    """open_clip_train's main with the additions above; ``--args-file F`` reads the arguments from a JSON list
    (torchrun's own parser rejects ``--logs`` as an ambiguous prefix of its ``--logs-specs``)."""
    from open_clip_train.main import main as train

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--args-file"]:
        argv = json.loads(Path(argv[1]).read_text())
    clip.registered()
    if not torch.cuda.is_available():  # CPU runs compute with the study's thread count, whichever launcher runs them
        threads.pin()
    _patch_webdataset_eof()
    _quiet_torch_logs()
    _cpu_ddp()
    train(argv)


if __name__ == "__main__":
    main()
