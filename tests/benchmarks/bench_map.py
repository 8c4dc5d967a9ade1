"""llm_notebook.map against a slow loopback server, side by side with the `llm` library.

    python tests/benchmarks/bench_map.py        (the test extra installs `llm`)

1. 200 prompts to an OpenAI-compatible loopback server (a separate process) that answers each
   after 100 ms, through `llm_notebook.map(..., concurrency=20)` and the built-in
   OpenAI-compatible plugin: ideal 1.0 s, target <= 1.25 s.
   Also the same prompts through asyncio.gather directly, the floor for this machine.
2. The same 200 prompts as a sequential loop of `llm` library prompts to the same server.
3. First-token latency the runner adds: `runner.iterate(response)` from sync code against
   `async for` directly on an event loop, same model, same server (no delay): target < 5 ms.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = 200
CONCURRENCY = 20
DELAY = 0.1
LATENCY_SAMPLES = 50


def start_server(delay: float) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, "-m", "tests.support.slow_server", "--delay",
                               str(delay)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return server, server.stdout.readline().strip()


def bench_map(url: str) -> float:
    import llm_notebook

    [model_id] = llm_notebook.add_openai_endpoint(url, name="bench", models=["slow"])
    llm_notebook.map("warm up {}", range(CONCURRENCY), model=model_id, concurrency=CONCURRENCY,
                     progress=False)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        answers = llm_notebook.map("Question {}", range(PROMPTS), model=model_id,
                                   concurrency=CONCURRENCY, progress=False)
        times.append(time.perf_counter() - started)
        assert not answers.errors and all(answers), answers.errors
    return statistics.median(times)


def bench_plain_gather(url: str) -> float:
    """The floor on this machine: the same async model, asyncio.gather and a semaphore, no map."""
    import llm_notebook

    model = llm_notebook.get_async_model(llm_notebook.add_openai_endpoint(
        url, name="bench", models=["slow"])[0])

    async def all_prompts() -> float:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> str:
            async with gate:
                return await model.prompt(f"Question {i}").text()

        await asyncio.gather(*(one(i) for i in range(CONCURRENCY)))
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(PROMPTS)))
        return time.perf_counter() - started

    return statistics.median(asyncio.run(all_prompts()) for _ in range(3))


def bench_llm_sequential(url: str) -> float:
    user_path = Path(tempfile.mkdtemp())
    (user_path / "extra-openai-models.yaml").write_text(
        f"- model_id: bench-slow\n  model_name: slow\n  api_base: \"{url}\"\n")
    os.environ["LLM_USER_PATH"] = str(user_path)
    os.environ.setdefault("OPENAI_API_KEY", "loopback-needs-no-key")
    import llm

    model = llm.get_model("bench-slow")
    model.prompt("warm up").text()
    started = time.perf_counter()
    texts = [model.prompt(f"Question {i}").text() for i in range(PROMPTS)]
    took = time.perf_counter() - started
    assert all(texts)
    return took


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
    slow, slow_url = start_server(DELAY)
    fast, fast_url = start_server(0.0)
    try:
        map_time = bench_map(slow_url)
        ideal = PROMPTS / CONCURRENCY * DELAY
        print(f"llm_notebook.map, {PROMPTS} prompts, {DELAY * 1000:.0f} ms each, concurrency "
              f"{CONCURRENCY}: {map_time:.3f} s (ideal {ideal:.2f} s, ratio {map_time / ideal:.2f}, "
              f"target <= 1.25 s: {'met' if map_time <= 1.25 else 'MISSED'})")
        floor = bench_plain_gather(slow_url)
        print(f"same model, plain asyncio.gather on one loop (no runner, no map): {floor:.3f} s "
              f"(map's own overhead: {(map_time - floor) * 1000:+.0f} ms)")
        try:
            llm_time = bench_llm_sequential(slow_url)
        except ImportError:
            print("llm library not installed (pip install -e '.[test]'): comparison skipped")
        else:
            print(f"llm library, sequential loop of the same {PROMPTS} prompts: {llm_time:.3f} s "
                  f"({llm_time / map_time:.1f}x the time of llm_notebook.map)")
        direct, through = bench_first_token(fast_url)
        added = (through - direct) * 1000
        print(f"first token, median of {LATENCY_SAMPLES}: async for on a loop {direct * 1000:.2f} ms, "
              f"runner.iterate from sync code {through * 1000:.2f} ms, added {added:.2f} ms "
              f"(target < 5 ms: {'met' if added < 5 else 'MISSED'})")
    finally:
        slow.terminate()
        fast.terminate()


if __name__ == "__main__":
    main()
