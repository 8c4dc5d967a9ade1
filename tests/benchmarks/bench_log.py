"""What the SQLite log costs an answer, and how it holds up with three processes writing at once.

    python tests/benchmarks/bench_log.py        (the test extra installs `llm`)

1. 10,000 offline `echo` answers (short prompt, `.text()` each) with the log on and off, in
   interleaved rounds; the median ratio on/off of the time the answers take, target <= 1.05;
   then also the time until their rows are written, and where the CPU goes. Side by side: the same answers plus
   `to_dict()` with the log off (the floor: describing the response is part of any log), and the
   `llm` library logging the same kind of answer with `response.log_to_db()`.
2. Three processes answering and logging at once into one database: rows per second, and rows
   lost (target 0); side by side, the same three processes with the log off.
"""

from __future__ import annotations

import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSWERS = 10_000
ROUNDS = 11
LLM_ANSWERS = 200
PROCESSES = 3
PER_PROCESS = 3_000

CHILD = """
import sys, llm_notebook
model = llm_notebook.get_model("echo")
print("ready", flush=True)
sys.stdin.readline()
for i in range(int(sys.argv[1])):
    model.prompt(f"{sys.argv[2]} {i} what stands out in this table?").text()
"""


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def writer_cpu() -> float:
    """CPU seconds the log's writer thread has used so far (0 before it starts, or off Unix)."""
    for thread in threading.enumerate():
        if thread.name == "llm_notebook-store" and hasattr(time, "pthread_getcpuclockid"):
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


def answers(model, variant: str) -> tuple[float, float, float, float]:
    """Wall seconds for ANSWERS answers, then for writing their rows; main and writer thread CPU
    seconds."""
    import llm_notebook
    from llm_notebook import log

    llm_notebook.settings.log = variant == "on"
    describe = variant == "to_dict"
    started, main, writer = time.perf_counter(), time.thread_time(), writer_cpu()
    for _ in range(ANSWERS):
        response = model.prompt("What stands out in this table?")
        response.text()
        if describe:
            response.to_dict()
    answered = time.perf_counter()
    if variant == "on":
        assert log.flush(timeout=60)
    return (answered - started, time.thread_time() - main, writer_cpu() - writer,
            time.perf_counter() - started)


def bench_overhead() -> None:
    import llm_notebook

    model = llm_notebook.get_model("echo")
    answers(model, "on")  # warm up: imports, the database, the writer thread
    runs: dict[str, list[tuple[float, float, float]]] = {"off": [], "on": [], "to_dict": []}
    for _ in range(ROUNDS):
        for variant in random.sample(list(runs), len(runs)):  # each round in a new order
            runs[variant].append(answers(model, variant))

    def median(variant: str, field: int = 0) -> float:
        return statistics.median(run[field] for run in runs[variant])

    def ratio(variant: str, field: int = 0) -> float:
        return statistics.median(a[field] / b[0] for a, b in zip(runs[variant], runs["off"]))

    per_answer = median("off") / ANSWERS * 1e6
    print(f"{ANSWERS:,} echo answers, {ROUNDS} interleaved rounds: log off {median('off'):.3f} s "
          f"({per_answer:.1f} us an answer), log on {median('on'):.3f} s: median ratio "
          f"{ratio('on'):.3f} (target <= 1.05: {met(ratio('on') <= 1.05)})")
    fastest = min(run[0] for run in runs["on"]) / min(run[0] for run in runs["off"])
    print(f"fastest round on / fastest round off: {fastest:.3f}")
    print(f"the same until every row is written too (the writer works once the burst of answers "
          f"ends): median ratio {ratio('on', 3):.3f}")
    print(f"floor, log off plus response.to_dict() for each (what any log must read): median ratio "
          f"{ratio('to_dict'):.3f}")
    main_added = (median("on", 1) - median("off", 1)) / ANSWERS * 1e6
    writer = median("on", 2) / ANSWERS * 1e6
    print(f"CPU an answer with the log on: +{main_added:.1f} us in the answering thread "
          f"(to_dict, the row, the queue), {writer:.1f} us in the writer thread (SQLite); "
          f"the writer overlaps the answers only when a core is free")
    rows = len(llm_notebook.logs(None))
    print(f"rows logged: {rows:,} of {ANSWERS * (ROUNDS + 1):,}")


def bench_llm_log_to_db() -> None:
    try:
        import llm
        import sqlite_utils
        from llm.migrations import migrate
    except ImportError:
        print("llm library not installed (pip install -e '.[test]'): comparison skipped")
        return

    class Echo(llm.Model):
        model_id = "bench-echo"
        can_stream = True

        def execute(self, prompt, stream, response, conversation):
            yield prompt.prompt

    db = sqlite_utils.Database(Path(tempfile.mkdtemp()) / "logs.db")
    migrate(db)
    model = Echo()

    def run(log: bool) -> float:
        started = time.perf_counter()
        for _ in range(LLM_ANSWERS):
            response = model.prompt("What stands out in this table?")
            response.text()
            if log:
                response.log_to_db(db)
        return time.perf_counter() - started

    run(True)  # warm up
    off, on = run(False), run(True)
    print(f"llm library, {LLM_ANSWERS:,} answers of a minimal model, log_to_db() after each: ratio "
          f"{on / off:.2f}, {(on - off) / LLM_ANSWERS * 1e6:+.0f} us an answer")


def three_processes(user_dir: Path, log_on: bool) -> tuple[float, int]:
    env = {**os.environ, "LLM_NOTEBOOK_USER_PATH": str(user_dir), "PYTHONPATH": str(ROOT),
           "LLM_NOTEBOOK_LOG": "1" if log_on else "0"}
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(PER_PROCESS), f"p{n}"],
                                 cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
                for n in range(PROCESSES)]
    for child in children:  # all three have imported before the clock starts
        assert child.stdout.readline() == "ready\n"
    started = time.perf_counter()
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        child.stdin.close()
        assert child.wait(timeout=120) == 0
        child.stdout.close()
    took = time.perf_counter() - started
    database = user_dir / "logs.db"
    if not database.exists():
        return took, 0
    connection = sqlite3.connect(database)
    rows = connection.execute("SELECT count(*) FROM responses").fetchone()[0]
    connection.close()
    return took, rows


def bench_three_processes() -> None:
    expected = PROCESSES * PER_PROCESS
    quiet, _ = three_processes(Path(tempfile.mkdtemp()), log_on=False)
    took, rows = three_processes(Path(tempfile.mkdtemp()), log_on=True)
    print(f"{PROCESSES} processes x {PER_PROCESS:,} answers into one log: "
          f"{rows / took:,.0f} rows/s ({took:.2f} s; with the log off {quiet:.2f} s, ratio "
          f"{took / quiet:.2f}); rows lost {expected - rows} of {expected:,} "
          f"(target 0: {met(rows == expected)})")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["LLM_NOTEBOOK_USER_PATH"] = tempfile.mkdtemp()
    bench_overhead()
    bench_llm_log_to_db()
    bench_three_processes()


if __name__ == "__main__":
    main()
