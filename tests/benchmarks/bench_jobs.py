"""Batch jobs at scale: a job of 100,000 tiny rows through the loopback OpenAI batch server
(submitted, waited for, collected into the answer cache and the log, its result checked), next
to the floor a job that kept its requests in memory would start from: the same 100,000 request
lines built as one JSONL string, before anything is sent. Each runs in a fresh process; the
figure is its peak memory over the baseline (interpreter, pandas and the input loaded).

Target: the job needs at most 200 MB of kernel memory for 100,000 rows.

    python tests/benchmarks/bench_jobs.py [ROWS]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
TARGET_MB = 200

from tests.support.server_process import start_module_server  # noqa: E402


def measure(base_url: str, rows: int, *extra: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as user:
        done = subprocess.run([sys.executable, "-m", "tests.support.batch_job_memory", base_url,
                               str(rows), *extra], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env={**os.environ, "LLM_NOTEBOOK_USER_PATH": user})
    if done.returncode != 0:
        raise SystemExit(f"the measured process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    server, base_url = start_module_server("tests.support.batch_servers", "--per-poll", "100000",
                                           "--rate", "1000000")
    try:
        floor = measure(base_url, rows, "--naive")
        job = measure(base_url, rows)
    finally:
        server.terminate()
        server.wait(timeout=30)
    per_row = 1e6 / rows
    print(f"batch job of {rows:,} rows in {job['batches']} batches "
          f"({'result checked' if job['ok'] else 'RESULT WRONG'})")
    print(f"  peak memory over baseline: job {job['peak_mb']:.0f} MB (submitting "
          f"{job['submit_peak_mb']:.0f} MB), the requests built in memory "
          f"{floor['peak_mb']:.0f} MB (ratio {job['peak_mb'] / max(floor['peak_mb'], 1):.2f})")
    print(f"  time per row: submit {job['submit_s'] * per_row:.0f} µs (building the lines alone: "
          f"{floor['submit_s'] * per_row:.0f} µs), wait and collect {job['collect_s'] * per_row:.0f}"
          f" µs, result {job['result_s'] * per_row:.0f} µs")
    met = job["ok"] and job["peak_mb"] <= TARGET_MB
    print(f"target ≤ {TARGET_MB} MB for 100,000 rows: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
