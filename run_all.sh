#!/usr/bin/env bash
# The whole study: set up what is missing, then run every notebook's grid (default profile: mini).
#   ./run_all.sh                         # the default study in the embedded mini world
#   ./run_all.sh --profile smoke         # tiny version of every notebook (minutes)
#   ./run_all.sh 04 05 --profile paper   # selected notebooks at paper scale (needs weights and data)
#   ./run_all.sh --dry-run | --force | --shard i/n | --jobs N   (see: ./run_all.sh --help; it is `synscale run`)
# Two runs execute at once by default (one thread each; params `after:` orders them): --jobs 1 runs one at a time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)
"$ROOT/env/bootstrap.sh"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec "${SYNSCALE_VENV:-$ROOT/.venv}/bin/synscale" run "$@"
