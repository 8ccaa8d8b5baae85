"""The Jupyter kernel ``synscale``: ipykernel, started with the study's CPU instruction-set cap in its environment.

``python -m synscale.runtime.kernel -f {connection_file}`` (the kernel's ``kernel.json``, written by
``env/bootstrap.sh``) sets the variables of :func:`synscale.runtime.threads.isa_env` where they are not set
already — before numpy or torch is imported, which is when OpenBLAS, ATen and MKL read them — and then runs
ipykernel. A runner's kernel finds them set by the runner (``SYNSCALE_CPU_ISA`` may name another cap); JupyterLab's
Run All gets the default, so an interactive run computes the numbers the runner does. Nothing here imports numpy.
"""
from __future__ import annotations

import os
import sys


def main() -> None:
    from synscale.runtime.threads import isa_env

    for k, v in isa_env().items():
        os.environ.setdefault(k, v)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=sys.argv[1:])


if __name__ == "__main__":
    main()
