"""Rehearsal: paper-shaped stand-ins, so the study's real ``paper`` code path runs end to end on a CPU.

``models`` builds tiny random-weight stand-ins for every real model, under the real repo ids in a Hugging Face hub
cache (and the real file names in torch's hub cache); ``hub`` writes that cache layout; ``data`` writes the data
roots in their real layouts."""
