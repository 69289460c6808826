#!/usr/bin/env bash
# Create/refresh the project virtualenv: pinned torch, then fairseq built against it,
# then this project (editable, with dev extras).  Idempotent: each step is skipped when
# what it installs is already there, so a second run takes seconds.
#
#   VENV         where the virtualenv lives (default .venv)
#   PYTHON       interpreter to create it with (>= 3.11; default python3)
#   TORCH_SPEC   torch requirement (default torch==2.13.0, CPU). A GPU user passes e.g.
#                TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
#   FAIRSEQ_SPEC fairseq distribution (default fairseq-fixed==0.12.3.1, a snapshot of fairseq
#                main that supports Python 3.11; built with --no-build-isolation so that its
#                C++/Cython extensions compile against the torch installed here)
set -euo pipefail

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
FAIRSEQ_SPEC=${FAIRSEQ_SPEC:-fairseq-fixed==0.12.3.1}

say() { printf '[setup] %s\n' "$*"; }

"$PYTHON" - <<'PY' || { echo "[setup] error: Python >= 3.11 is required (set PYTHON=...)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
elif ! "$VENV/bin/python" -m pip --version > /dev/null 2>&1; then
    say "$VENV has no working pip (an interrupted creation?): recreating it"
    "$PYTHON" -m venv --clear "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

installed_version() {  # distribution version without importing it (fast)
    "$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$1"
}

torch_name=$(printf '%s' "$TORCH_SPEC" | awk '{print $1}')
wanted_torch=${torch_name#torch==}
have_torch=$(installed_version torch)
if [ -z "$have_torch" ] || { [ "$wanted_torch" != "$torch_name" ] && [ "${have_torch%%+*}" != "$wanted_torch" ]; }; then
    say "installing $TORCH_SPEC"
    # shellcheck disable=SC2086  # TORCH_SPEC may carry pip options such as --index-url
    "${PIP[@]}" install $TORCH_SPEC
    have_torch=$(installed_version torch)
fi
say "torch $have_torch"

# Every later install is constrained to the torch we have: nothing may pull another torch.
constraints="$VENV/torch-constraint.txt"
printf 'torch==%s\n' "$have_torch" > "$constraints"

if [ -z "$(installed_version "${FAIRSEQ_SPEC%%==*}")" ]; then
    say "building $FAIRSEQ_SPEC against torch $have_torch (about 3 minutes the first time)"
    "${PIP[@]}" install -c "$constraints" numpy cython "setuptools>=64" wheel
    "${PIP[@]}" install -c "$constraints" --no-build-isolation "$FAIRSEQ_SPEC"
fi
say "fairseq $(installed_version "${FAIRSEQ_SPEC%%==*}")"

# Editable install of this project; redone only when pyproject.toml changed.
stamp="$VENV/.project-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || ! "$PY" -c "import fairseq_plugins, alignment_eval" 2>/dev/null; then
    say "installing this project (editable, with dev extras)"
    "${PIP[@]}" install -c "$constraints" -e ".[dev]"
    touch "$stamp"
fi

# Build the C++ row kernels now (about a minute, cached) rather than in the first training or test.
"$PY" -c "from fairseq_plugins import cpu_kernels; print('[setup] sparse attention CPU normalizers:', cpu_kernels.status())"

"$PY" - <<'PY'
import importlib.metadata as m
for name in ("torch", "entmax", "sacrebleu", "hydra-core"):
    print(f"[setup] {name} {m.version(name)}")
PY
say "done: activate with 'source $VENV/bin/activate' or call $VENV/bin/fairseq-train directly"
