#!/usr/bin/env bash
# Run every benchmark side by side with its competitor and print the ratios:
# `bash scripts/benchmarks.sh` (in a virtualenv with the test extra: `pip install -e ".[test]"`).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
for bench in tests/benchmarks/bench_*.py; do
    echo "=== $bench"
    "$VENV/bin/python" "$bench"
done
