#!/usr/bin/env bash
# A Colab-like runtime: a Python 3.11 venv holding Colab's package versions
# (../shared/runtimes/colab-core-pins.txt), into which this project is installed the way a Colab user
# installs it (`pip install <repo>`, no -U). Fails if that install changed any pinned package.
#
#   bash .ci/colab_env.sh [VENV]        (default .venv-colab; `make colab-env` runs this)
#
# The venv is rebuilt from scratch when the pins, pyproject.toml or the Python change (CI always starts
# clean); otherwise only the project is reinstalled and checked again.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${1:-.venv-colab}
PINS=${COLAB_PINS:-../shared/runtimes/colab-core-pins.txt}
PYTHON=${COLAB_PYTHON:-python3.11}
COLAB_PIP=24.1.2  # the pip of Colab's runtime (colab-gpu-2026-08-19.txt)

command -v "$PYTHON" >/dev/null || { echo "colab_env: $PYTHON not found (the Colab-like env needs Python 3.11)" >&2; exit 1; }
[ -f "$PINS" ] || { echo "colab_env: $PINS not found (../shared beside the clone)" >&2; exit 1; }

key=$( (cat "$PINS" pyproject.toml; "$PYTHON" --version; echo "pip $COLAB_PIP") | sha256sum | cut -d' ' -f1)
started=$SECONDS
if [ "$(cat "$VENV/.colab-key" 2>/dev/null)" != "$key" ]; then
    echo "colab_env: building $VENV from $PINS"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q "pip==$COLAB_PIP"
    "$VENV/bin/python" -m pip install -q --no-compile -r "$PINS"
    echo "$key" > "$VENV/.colab-key"
    echo "colab_env: pinned runtime built in $((SECONDS - started)) s"
fi

"$VENV/bin/python" -m pip freeze --all > "$VENV/freeze-before.txt"
installed=$SECONDS
"$VENV/bin/python" -m pip install -q .  # the README's Colab line, from this clone
"$VENV/bin/python" -m pip freeze --all > "$VENV/freeze-after.txt"
echo "colab_env: project installed in $((SECONDS - installed)) s"

"$VENV/bin/python" .ci/pins_unchanged.py "$PINS" "$VENV/freeze-before.txt" "$VENV/freeze-after.txt"
