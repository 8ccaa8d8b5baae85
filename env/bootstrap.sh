#!/usr/bin/env bash
# Idempotent set-up shared by run_all.sh and run_tests.sh: Debian data packages, the project venv with the
# pinned stack, the editable `synscale` package and the `synscale` Jupyter kernel. A second call only checks.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${SYNSCALE_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
KERNEL=synscale
say() { echo "[setup] $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# 1. Debian packages of the mini world (checked by the files they provide, so any install route works).
declare -A PROVIDES=(
  [dataset-fashion-mnist]=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
  [wordnet-base]=/usr/share/wordnet/data.noun
  [wordnet-sense-index]=/usr/share/wordnet/index.sense
)
missing=()
for pkg in "${!PROVIDES[@]}"; do [ -e "${PROVIDES[$pkg]}" ] || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "Debian packages missing (${missing[*]}) and apt-get is not available; install them by other means so that ${PROVIDES[dataset-fashion-mnist]} and /usr/share/wordnet exist"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  say "installing Debian packages: ${missing[*]}"
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || die "could not install Debian packages (${missing[*]}); run: sudo apt-get install ${missing[*]}"
fi

# 2. The venv, reinstalled only when the pinned list, its lock, constraints, pyproject or python change.
#    After changing env/requirements.txt, rewrite the lock: .venv/bin/pip freeze --exclude-editable (header kept).
stamp_of() { cat "$ROOT/env/requirements.txt" "$ROOT/env/requirements.lock" "$ROOT/env/constraints.txt" \
  "$ROOT/pyproject.toml" | sha256sum | cut -c1-16; }
want="$(stamp_of)-$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$(cat "$VENV/.synscale-stamp" 2>/dev/null)" != "$want" ]; then
  t0=$SECONDS
  say "creating/updating $VENV (first time: ~2.5 min, ~6 GB: the standard PyPI torch build)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  # --isolated: ignore machine-local pip config (a local CPU torch wheel there breaks torchvision);
  # -c constraints: torch stays pinned in every pip call; -c requirements.lock: so does every transitive package.
  pip=("$VENV/bin/python" -m pip install --isolated --disable-pip-version-check -q -c "$ROOT/env/constraints.txt"
       -c "$ROOT/env/requirements.lock")
  "${pip[@]}" -r "$ROOT/env/requirements.txt" || die "pip could not install env/requirements.txt (see above)"
  "${pip[@]}" --no-deps -e "$ROOT" || die "pip could not install the synscale package in editable mode"
  printf '[install]\nconstraint = %s\n' "$ROOT/env/constraints.txt" > "$VENV/pip.conf"
  echo "$want" > "$VENV/.synscale-stamp"
  say "environment ready in $((SECONDS - t0)) s"
fi

# 3. The named Jupyter kernel inside the venv (papermill and JupyterLab started from the venv find it). It starts
#    through synscale.runtime.kernel, which puts the study's CPU instruction-set cap in the kernel's environment
#    where the caller has not (the runner sets it itself), so Run All in JupyterLab computes the numbers the runner does.
spec="$VENV/share/jupyter/kernels/$KERNEL/kernel.json"
if ! grep -qF "$VENV/bin/python" "$spec" 2>/dev/null || ! grep -qF synscale.runtime.kernel "$spec"; then
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name "$KERNEL" --display-name "Python (synscale)" >/dev/null
  "$VENV/bin/python" - "$spec" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec["argv"] = [a if a != "ipykernel_launcher" else "synscale.runtime.kernel" for a in spec["argv"]]
json.dump(spec, open(sys.argv[1], "w"), indent=1)
PY
  say "installed Jupyter kernel '$KERNEL'"
fi
