"""Studies: each paper's experiment in one module, built from the layers below.

- ``supervised``: Fan et al. sec. 4 (classifiers on synthetic vs real images; notebooks 03–05);
- ``mixing``: Fan et al. sec. 5 (CLIP on synthetic, real and mixed data; notebook 06);
- ``retrieval``: Geng et al. (targeted retrieved vs synthetic images; notebook 07);
- ``synthclip``: Hammoud et al., SynthCLIP (notebook 08);
- ``claims``: every paper claim a notebook tests, with its effect and verdict.
"""
