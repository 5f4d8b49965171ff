#!/usr/bin/env bash
# Build the Lava venv used by the Loihi oracle (tests/test_lava_oracle.py,
# benchmarks/bench_lava.py). Lava (lava-nc 0.10) installs only on Python 3.10,
# so it lives in its own venv, apart from nirc's .venv.
#
#   tools/lava/setup_venv.sh [VENV_DIR]      (default: .venv-lava next to this repo's root)
#
# Idempotent: when the venv already imports lava at the pinned version it exits at once.
# Python 3.10 is looked for as $LAVA_PYTHON, then `python3.10` on PATH, then under `pyenv root`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${1:-$ROOT/.venv-lava}"
REQUIREMENTS="$ROOT/tools/lava/requirements.txt"
STAMP="$VENV/.lava-installed"

if [[ -f "$STAMP" && "$STAMP" -nt "$REQUIREMENTS" ]] && "$VENV/bin/python" -c "import lava.magma" 2>/dev/null; then
    echo "lava venv up to date: $VENV"
    exit 0
fi

find_python310() {
    local candidate candidates home=~   # ~: $HOME, or the passwd entry when HOME is unset
    if [[ -n "${LAVA_PYTHON:-}" ]]; then candidates=("$LAVA_PYTHON")  # explicit choice: no fallback
    else candidates=(python3.10 "$(command -v pyenv >/dev/null 2>&1 && pyenv root || echo "${PYENV_ROOT:-$home/.pyenv}")"/versions/3.10.*/bin/python3.10); fi
    for candidate in "${candidates[@]}"; do
        if command -v "$candidate" >/dev/null 2>&1 && \
           "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
            command -v "$candidate"; return
        fi
    done
}

PY310="$(find_python310)"
if [[ -z "$PY310" ]]; then
    echo "error: Lava (lava-nc 0.10) needs Python 3.10; none found${LAVA_PYTHON:+ (LAVA_PYTHON=$LAVA_PYTHON is not one)} (set LAVA_PYTHON=/path/to/python3.10," \
         "put python3.10 on PATH, or 'pyenv install 3.10')" >&2
    exit 2
fi

start=$(date +%s)
echo "building lava venv $VENV with $PY310"
"$PY310" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet -r "$REQUIREMENTS"
"$VENV/bin/python" -c "import lava.magma, lava.proc.lif.models, lava.proc.dense.models"
touch "$STAMP"
echo "lava venv ready in $(( $(date +%s) - start )) s: $VENV"
