#!/usr/bin/env bash
# Install the package and show it working end to end on the offline models: `bash scripts/demo.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet -e .
"$VENV/bin/python" examples/demo.py
