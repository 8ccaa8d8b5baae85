"""Data: worlds (the mini world and ImageNet-style folders), lazy arrays, tar shards, caption metadata, prompts,
and the resolution of model weights in the Hugging Face cache. Imports only ``runtime``."""
