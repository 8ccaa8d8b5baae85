#!/usr/bin/env bash
# The test suite (what CI runs): set up what is missing, then pytest. Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)
"$ROOT/env/bootstrap.sh"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
cd "$ROOT"
exec "${SYNSCALE_VENV:-$ROOT/.venv}/bin/python" -m pytest "$@"
