"""Orchestration: params and their checks, costs, preflight, the notebook runner, notebook helpers, the mini-world
build, the paper-scale rehearsal and the ``synscale`` command. The top layer: nothing imports it but the
package's face (``synscale.__main__``)."""
