"""synscale: scaling laws of synthetic images, reproduced notebook-first.

The top level is light (no torch): results helpers for notebooks. Experiment code lives in submodules.
"""
from synscale.runtime.results import collect, collect_table, record, record_table, savefig

__all__ = ["record", "record_table", "savefig", "collect", "collect_table"]
__version__ = "0.1.0"
