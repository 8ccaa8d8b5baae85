"""Models and methods: classifiers and their training, text-to-image generation, CLIP and its open_clip trainer,
evaluation, image metrics, captioning and LLM captions. Imports ``runtime`` and ``data``."""
