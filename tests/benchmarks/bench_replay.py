"""A notebook run again answers from the answer cache: as fast as printing the answers?

A 30-cell notebook of `%%llm` cells runs in a real kernel against the slow loopback server
(tests/support/slow_server.py: each answer waits, then streams word by word). It runs once to
fill the cache, then again in a new kernel with the same user directory: that run must send 0
requests. The floor is the same notebook with every `%%llm` cell replaced by a `print` of its
answer. Replay and floor runs alternate, side by side in one run; the time of the cells (from
the first answer cell's start to the last one's end, kernel start excluded) is compared.
Target: the second run sends 0 requests and takes at most 1.2x the floor.

Run: python tests/benchmarks/bench_replay.py [--cells 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.slow_server import SlowServer  # noqa: E402

SETUP = "%load_ext llm_notebook"
TARGET = 1.2


def answer_cells(count: int) -> list[str]:
    return [f"%%llm -m gpt-4o-mini\nQuestion {i}: what is {i} squared, in words?"
            for i in range(count)]


def run(sources: list[str], env: dict[str, str], workdir: str) -> tuple[float, list]:
    """Execute SETUP then `sources` in a fresh kernel; the seconds the `sources` took, and the
    executed cells."""
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in [SETUP, *sources]])
    marks: dict[str, float] = {}
    last = len(sources)

    def started(cell, cell_index):
        if cell_index == 1:
            marks["start"] = time.perf_counter()

    def executed(cell, cell_index, execute_reply):
        if cell_index == last:
            marks["end"] = time.perf_counter()

    client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": workdir}},
                            on_cell_start=started, on_cell_executed=executed)
    client.execute(env=env)  # the kernel is asked to stop: the cache it wrote is whole
    return marks["end"] - marks["start"], notebook.cells[1:]


def answer_text(cell) -> str:
    [answer] = [o for o in cell.outputs if "response_id" in
                o.get("metadata", {}).get("llm_notebook", {})]
    return answer["data"]["text/plain"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    server = SlowServer(delay=0.05, interval=0.005, words=20).start()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            env = {**os.environ, "LLM_NOTEBOOK_USER_PATH": str(Path(workdir) / "user"),
                   "LLM_NOTEBOOK_LOAD_PLUGINS": "", "LLM_NOTEBOOK_CACHE": "",
                   "OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-bench-replay"}
            cells = answer_cells(args.cells)
            asked_s, asked = run(cells, env, workdir)
            asked_requests = server.requests
            floor_cells = [f"print({answer_text(cell)!r})" for cell in asked]
            replays, floors, sent = [], [], 0
            for _ in range(args.repeats):
                before = server.requests
                seconds, replayed = run(cells, env, workdir)
                sent += server.requests - before
                replays.append(seconds)
                floors.append(run(floor_cells, env, workdir)[0])
                assert [answer_text(c) for c in replayed] == [answer_text(c) for c in asked]
    finally:
        server.stop()

    replay, floor = statistics.median(replays), statistics.median(floors)
    ratio = replay / floor
    print(f"{args.cells} %%llm cells, slow loopback server; medians of {args.repeats} runs each")
    print(f"  first run (asks the server): {asked_s:.2f} s, {asked_requests} requests")
    print(f"  run again (answer cache):    {replay:.2f} s, {sent} requests in {args.repeats} runs")
    print(f"  floor (print each answer):   {floor:.2f} s")
    print(f"  per cell: replay {replay / args.cells * 1000:.1f} ms, floor "
          f"{floor / args.cells * 1000:.1f} ms")
    print(f"  replay / floor: {ratio:.2f}x (target <= {TARGET}x), first run / replay: "
          f"{asked_s / replay:.1f}x")
    met = sent == 0 and ratio <= TARGET
    print(f"  {'met' if met else 'NOT met'}: 0 requests sent again ({sent}) and "
          f"<= {TARGET}x the floor ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
