"""Runtime: where things live, threads, progress, integrity, ranks, job launchers, checkpoints and results files.

The bottom layer: it imports nothing else of the package. Every layer above may import it."""
