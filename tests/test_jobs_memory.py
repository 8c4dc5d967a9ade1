"""A batch job of 100,000 tiny rows, measured in a process of its own: its requests and results
go through files on disk, so the kernel's peak memory stays within ~200 MB over what the input
itself takes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.server_process import start_module_server

ROOT = Path(__file__).resolve().parent.parent
ROWS = 100_000
MOST_MB = 200


def test_a_100000_row_job_stays_within_200_mb_of_kernel_memory(tmp_path):
    server, base_url = start_module_server("tests.support.batch_servers", "--per-poll", "100000",
                                           "--rate", "1000000")
    try:
        measured = subprocess.run(
            [sys.executable, "-m", "tests.support.batch_job_memory", base_url, str(ROWS)],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
            env={**os.environ, "LLM_NOTEBOOK_USER_PATH": str(tmp_path / "user")})
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert measured.returncode == 0, measured.stderr[-3000:]
    figures = json.loads(measured.stdout.strip().splitlines()[-1])
    assert figures["ok"] and figures["batches"] == 2  # 50,000 requests a batch at most
    assert figures["peak_mb"] <= MOST_MB, figures
