#!/usr/bin/env bash
# Run every benchmark side by side with its competitor and print the ratios:
# `bash scripts/benchmarks.sh` (after scripts/test.sh has set up the virtualenv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
for bench in tests/benchmarks/bench_*.py; do
    echo "=== $bench"
    "$VENV/bin/python" "$bench"
done
