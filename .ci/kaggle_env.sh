#!/usr/bin/env bash
# A Kaggle-like runtime: a venv holding Kaggle's package versions (../shared/runtimes/kaggle-core-pins.txt:
# ipywidgets 8.1.5, transformers 5.0.0, huggingface_hub 1.11.0, torch 2.10 ...) plus JupyterLab and
# papermill (Kaggle's image has both, unpinned; installed here under the pins), into which this project is
# installed the way a Kaggle user installs it (`pip install <repo>`, no -U). Fails if that install changed
# any pinned package.
#
#   bash .ci/kaggle_env.sh [VENV]       (default .venv-kaggle; `make kaggle-env` runs this)
#
# Kaggle runs Python 3.12: the first of $KAGGLE_PYTHON, python3.12 (also a pyenv 3.12) and python3.11
# that runs is used. The venv is rebuilt from scratch when the pins, pyproject.toml or the Python change;
# otherwise only the project is reinstalled and checked again.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${1:-.venv-kaggle}
PINS=${KAGGLE_PINS:-../shared/runtimes/kaggle-core-pins.txt}

runs() { "$1" -c "" >/dev/null 2>&1; }
PYTHON=
for candidate in ${KAGGLE_PYTHON:-} python3.12 $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 2>/dev/null) python3.11; do
    if runs "$candidate"; then PYTHON=$candidate; break; fi
done
[ -n "$PYTHON" ] || { echo "kaggle_env: no Python 3.12 or 3.11 found (set KAGGLE_PYTHON)" >&2; exit 1; }
[ -f "$PINS" ] || { echo "kaggle_env: $PINS not found (../shared beside the clone)" >&2; exit 1; }

key=$( (cat "$PINS" pyproject.toml; "$PYTHON" --version) | sha256sum | cut -d' ' -f1)
started=$SECONDS
if [ "$(cat "$VENV/.kaggle-key" 2>/dev/null)" != "$key" ]; then
    echo "kaggle_env: building $VENV from $PINS with $("$PYTHON" --version)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --no-compile -r "$PINS"
    "$VENV/bin/python" -m pip install -q --no-compile -c "$PINS" jupyterlab papermill
    echo "$key" > "$VENV/.kaggle-key"
    echo "kaggle_env: pinned runtime built in $((SECONDS - started)) s"
fi

"$VENV/bin/python" -m pip freeze --all > "$VENV/freeze-before.txt"
installed=$SECONDS
"$VENV/bin/python" -m pip install -q .  # the install cell's last resort, from this clone
"$VENV/bin/python" -m pip freeze --all > "$VENV/freeze-after.txt"
echo "kaggle_env: project installed in $((SECONDS - installed)) s"
"$VENV/bin/python" .ci/pins_unchanged.py "$PINS" "$VENV/freeze-before.txt" "$VENV/freeze-after.txt"
