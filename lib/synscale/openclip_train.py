"""open_clip's own trainer (``open_clip_train.main``) with three additions, as a module to launch:

    python -m synscale.openclip_train <open_clip_train arguments>            # one process (CPU or one GPU)
    torchrun --nproc-per-node 8 -m synscale.openclip_train <arguments>       # the paper's multi-GPU runs

1. The mini world's CLIP config (``synscale.clip.MINI_NAME``) and the rehearsal's shrunk ViT-B-16
   (``synscale.clip.REHEARSAL_NAME``) are registered, so ``--model synscale-mini-clip`` trains the mini CLIP with
   the very code that trains ViT-B/16 at paper scale.
2. open_clip_train 3.3's webdataset reader stops with ``KeyError: 'fname'`` under webdataset >= 0.2.96, whose
   ``tar_file_expander`` yields an end-of-file marker ``{}`` by default (open_clip issue #935, webdataset issue
   #384). The fix the maintainers give there, ``eof_value=None``, is applied here until a release carries it.
3. open_clip's ``setup_logging`` sets every logger to INFO, torch's too, whose compile statistics then fill the
   end of each log; torch's loggers go back to WARNING so a failed run's log ends with its error.

Arguments are open_clip_train's, unchanged; :func:`synscale.clip.open_clip_argv` writes them for the paper's runs.
"""
from __future__ import annotations

import sys


def _patch_webdataset_eof() -> None:
    import open_clip_train.data as data
    from webdataset.tariterators import tar_file_expander, url_opener

    def tarfile_to_samples_nothrow(src, handler=data.log_and_continue):
        files = tar_file_expander(url_opener(src, handler=handler), handler=handler, eof_value=None)
        return data.group_by_keys_nothrow(files, handler=handler)

    data.tarfile_to_samples_nothrow = tarfile_to_samples_nothrow


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


def main(argv: list[str] | None = None) -> None:
    from open_clip_train.main import main as train

    from . import clip

    clip.register()
    clip.register(clip.REHEARSAL_NAME, clip.REHEARSAL_CONFIG)
    _patch_webdataset_eof()
    _quiet_torch_logs()
    train(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
