"""llm_notebook.map against a slow loopback server, side by side with the `llm` library.

    python tests/benchmarks/bench_map.py        (the test extra installs `llm`)

1. 200 prompts to an OpenAI-compatible loopback server (a separate process) that answers each
   after 100 ms, at concurrency 20 (ideal 1.0 s), three contenders interleaved round by round:
   `llm_notebook.map(...)` (target <= 1.25 s), the same async model through a plain
   asyncio.gather with a semaphore (the floor), and the `llm` library's async model of the same
   server through the same gather and semaphore.
2. First-token latency the runner adds: `runner.iterate(response)` from sync code against
   `async for` directly on an event loop, same model, same server (no delay): target < 5 ms.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = 200
CONCURRENCY = 20
DELAY = 0.1
LATENCY_SAMPLES = 50


ROUNDS = 5


_LOOP = asyncio.new_event_loop()  # one loop for every gather run: clients stay on a live loop


def gather_all(model, prefix: str) -> float:
    """Seconds for PROMPTS prompts to an async model at CONCURRENCY."""
    async def all_prompts() -> float:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> str:
            async with gate:
                return await model.prompt(f"{prefix} {i}").text()

        started = time.perf_counter()
        texts = await asyncio.gather(*(one(i) for i in range(PROMPTS)))
        took = time.perf_counter() - started
        assert all(texts)
        return took

    return _LOOP.run_until_complete(all_prompts())


def contenders(url: str) -> dict:
    """Each contender as a function returning the seconds one run took."""
    import llm_notebook

    [model_id] = llm_notebook.add_openai_endpoint(url, name="bench", models=["slow"])
    ours = llm_notebook.get_async_model(model_id)

    def with_map() -> float:
        started = time.perf_counter()
        answers = llm_notebook.map("Question {}", range(PROMPTS), model=model_id,
                                   concurrency=CONCURRENCY, progress=False)
        took = time.perf_counter() - started
        assert not answers.errors and all(answers), answers.errors
        return took

    runs = {"llm_notebook.map": with_map,
            "llm_notebook async model + gather (floor)": lambda: gather_all(ours, "Floor")}
    try:
        user_path = Path(tempfile.mkdtemp())
        (user_path / "extra-openai-models.yaml").write_text(
            f"- model_id: bench-slow\n  model_name: slow\n  api_base: \"{url}\"\n")
        os.environ["LLM_USER_PATH"] = str(user_path)
        os.environ.setdefault("OPENAI_API_KEY", "loopback-needs-no-key")
        import llm

        theirs = llm.get_async_model("bench-slow")
        runs["llm async model + gather"] = lambda: gather_all(theirs, "Theirs")
    except ImportError:
        print("llm library not installed (pip install -e '.[test]'): comparison skipped")
    return runs


def bench_map(url: str) -> None:
    runs = contenders(url)
    for run in runs.values():  # warm up: imports, connections
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name in random.sample(list(runs), len(runs)):  # interleaved, in a new order each round
            times[name].append(runs[name]())
    ideal = PROMPTS / CONCURRENCY * DELAY
    medians = {name: statistics.median(values) for name, values in times.items()}
    mapped = medians["llm_notebook.map"]
    print(f"{PROMPTS} prompts, {DELAY * 1000:.0f} ms each, concurrency {CONCURRENCY} "
          f"(ideal {ideal:.2f} s), median of {ROUNDS} interleaved rounds:")
    for name, median in medians.items():
        print(f"  {name:45} {median:.3f} s  {median / mapped:5.2f}x map")
    print(f"llm_notebook.map: {mapped:.3f} s (target <= 1.25 s: {'met' if mapped <= 1.25 else 'NOT met'})")
    theirs = medians.get("llm async model + gather")
    if theirs is not None:
        print(f"llm_notebook.map / llm async at the same concurrency = {mapped / theirs:.2f} "
              f"(target <= 1.0: {'met' if mapped <= theirs else 'NOT met'})")


def bench_first_token(url: str) -> tuple[float, float]:
    import llm_notebook
    from llm_notebook import runner

    [model_id] = llm_notebook.add_openai_endpoint(url, name="fast", models=["slow"])
    model = llm_notebook.get_async_model(model_id)

    async def direct() -> list[float]:
        waits = []
        for i in range(LATENCY_SAMPLES + 5):
            started = time.perf_counter()
            chunks = model.prompt(f"direct {i}").__aiter__()
            await chunks.__anext__()
            waits.append(time.perf_counter() - started)
            async for _ in chunks:
                pass
        return waits[5:]

    def through_runner() -> list[float]:
        waits = []
        for i in range(LATENCY_SAMPLES + 5):
            started = time.perf_counter()
            chunks = runner.iterate(model.prompt(f"runner {i}"))
            next(chunks)
            waits.append(time.perf_counter() - started)
            for _ in chunks:
                pass
        return waits[5:]

    direct_waits = asyncio.run(direct())
    runner_waits = through_runner()
    return statistics.median(direct_waits), statistics.median(runner_waits)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.server_process import start_module_server

    slow, slow_url = start_module_server("tests.support.slow_server", "--delay", str(DELAY))
    fast, fast_url = start_module_server("tests.support.slow_server", "--delay", "0.0")
    try:
        bench_map(slow_url)
        direct, through = bench_first_token(fast_url)
        added = (through - direct) * 1000
        print(f"first token, median of {LATENCY_SAMPLES}: async for on a loop {direct * 1000:.2f} ms, "
              f"runner.iterate from sync code {through * 1000:.2f} ms, added {added:.2f} ms "
              f"(target < 5 ms: {'met' if added < 5 else 'NOT met'})")
    finally:
        slow.terminate()
        fast.terminate()


if __name__ == "__main__":
    main()
