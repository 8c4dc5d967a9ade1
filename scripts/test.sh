#!/usr/bin/env bash
# Everything the tests need, on a fresh machine, then the tests: `bash scripts/test.sh [pytest args]`.
# VENV chooses the virtualenv (default .venv, created when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[test]'
PYTHON="$VENV/bin/python" bash scripts/install_llama_server.sh
bash scripts/install_browser.sh
"$VENV/bin/python" -m pytest "$@"
