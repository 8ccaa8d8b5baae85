#!/usr/bin/env bash
# The test suite (what CI runs): set up what is missing, the lint gate (ruff), then pytest. Extra arguments go to
# pytest; SYNSCALE_SKIP_LINT=1 skips the gate (e.g. while iterating on one test).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)
"$ROOT/env/bootstrap.sh"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
cd "$ROOT"
VENV=${SYNSCALE_VENV:-$ROOT/.venv}
if [ "${SYNSCALE_SKIP_LINT:-0}" != 1 ]; then
  "$VENV/bin/ruff" check lib tests benchmarks notebooks || { echo "error: ruff found problems (above); fix them or run \
\`$VENV/bin/ruff check --fix\`" >&2; exit 1; }
fi
exec "$VENV/bin/python" -m pytest "$@"
