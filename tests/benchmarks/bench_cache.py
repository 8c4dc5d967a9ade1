"""The answer cache's costs and its promise, measured side by side in one run.

    python tests/benchmarks/bench_cache.py

1. Lookup: the median time of `cache.lookup(response)` (the request's key, then the database)
   with 100,000 answers stored, hits and misses; target <= 1 ms.
2. Overhead: an offline `map` of 10,000 rows that misses every time, with the cache on ("replay":
   every row looked up, then stored) next to the cache off, rounds interleaved; target: the
   cache adds <= 5%.
3. Resuming: a `map` of 2,000 rows against the slow loopback server, interrupted at about half,
   then run again: the server must see exactly the rows that had no answer.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["LLM_NOTEBOOK_USER_PATH"] = tempfile.mkdtemp(prefix="bench-cache-")

import llm_notebook  # noqa: E402
from llm_notebook import cache, store  # noqa: E402
from llm_notebook.request_key import request_key  # noqa: E402
from llm_notebook.settings import settings  # noqa: E402

STORED = 100_000
LOOKUPS = 2_000
MAP_ROWS = 10_000
ROUNDS = 5
RESUME_ROWS = 2_000


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def fill(model, count: int) -> None:
    """`count` answers written straight into the cache table (as many as years of use)."""
    answer = json.dumps({"chunks": ["a stored answer of a few words"],
                         "usage": {"input": 12, "output": 7, "details": None}, "tool_calls": [],
                         "response_json": None, "duration_ms": 900, "first_chunk_ms": 200,
                         "cost": "0.00001"})
    rows = ((request_key(model.prompt(f"stored question {i}").prompt), model.model_id, None,
             "2026-11-30T14:02:00+00:00", 12, 7, answer) for i in range(count))
    connection = store.connect()
    try:
        connection.execute("BEGIN")
        connection.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        connection.execute("COMMIT")
    finally:
        connection.close()


def bench_lookup() -> bool:
    model = llm_notebook.get_model("echo")
    fill(model, STORED)
    timings = {"hit": [], "miss": []}
    for i in range(LOOKUPS):
        kind = "hit" if i % 2 else "miss"
        text = f"stored question {i * 37 % STORED}" if kind == "hit" else f"new question {i}"
        response = model.prompt(text)
        started = time.perf_counter()
        found = cache.lookup(response)
        timings[kind].append(time.perf_counter() - started)
        assert (found is not None) == (kind == "hit"), text
    met = True
    for kind, times in timings.items():
        median = statistics.median(times) * 1000
        met &= median <= 1.0
        print(f"lookup with {STORED:,} stored answers, {kind}: median {median:.3f} ms, "
              f"p95 {sorted(times)[int(len(times) * 0.95)] * 1000:.3f} ms "
              f"(target <= 1 ms: {verdict(median <= 1.0)})")
    return met


def timed_map(prefix: str, mode: str) -> float:
    settings.cache = mode
    started = time.perf_counter()
    answers = llm_notebook.map(prefix + " {}", list(range(MAP_ROWS)), model="echo",
                               concurrency=16, progress=False)
    took = time.perf_counter() - started
    assert answers.replayed == 0 and all(answers)
    store.flush(60)  # the writes of one round are not left to slow the next
    return took


def bench_overhead() -> bool:
    off, on = [], []
    timed_map("warm-up", "off")
    for round_ in range(ROUNDS):  # the order alternates, so drift in the machine's load cancels
        for mode in (("off", "replay") if round_ % 2 else ("replay", "off")):
            (off if mode == "off" else on).append(timed_map(f"{mode} round {round_}", mode))
    ratio = min(on) / min(off)
    print(f"map of {MAP_ROWS:,} offline rows, all misses: cache off {min(off):.2f} s, cache on "
          f"{min(on):.2f} s (best of {ROUNDS}): {ratio:.3f}x (target <= 1.05x: "
          f"{verdict(ratio <= 1.05)})")
    return ratio <= 1.05


def bench_resume() -> bool:
    from tests.support.slow_server import SlowServer, loopback_models

    server = SlowServer(delay=0.02).start()
    llm_notebook.register(*loopback_models(server.url, "loopback"))
    settings.cache = "replay"
    rows = [f"resume row {i}" for i in range(RESUME_ROWS)]
    main = threading.main_thread().ident

    def interrupt_at_half() -> None:
        server.wait_for(lambda s: s.requests >= RESUME_ROWS // 2, timeout=120)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt_at_half, daemon=True).start()
    try:
        llm_notebook.map("{}", rows, model="loopback", concurrency=50, progress=False)
        raise AssertionError("the map was not interrupted")
    except llm_notebook.MapInterrupted as interrupted:
        missing = sum(text is None for text in interrupted.result)
    before = server.requests
    again = llm_notebook.map("{}", rows, model="loopback", concurrency=50, progress=False)
    sent = server.requests - before
    server.stop()
    met = sent == missing and all(again) and again.sent == missing
    print(f"map of {RESUME_ROWS:,} rows interrupted with {RESUME_ROWS - missing:,} answered: the "
          f"re-run replayed {again.replayed:,} and sent {sent:,} requests for {missing:,} missing "
          f"rows (target: exactly the missing rows: {verdict(met)})")
    return met


if __name__ == "__main__":
    results = [bench_lookup(), bench_overhead(), bench_resume()]
    print("all targets met" if all(results) else "some targets NOT met")
