#!/usr/bin/env bash
# Install the package, then run examples/quickstart.ipynb in a real kernel on the offline models
# (no key, no network) and print each cell with its outputs: `bash scripts/demo.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[demo]'
"$VENV/bin/python" examples/demo.py
