"""Streaming speed of the OpenAI-compatible plugin: 20,000 small chunks from a loopback server.

Times, side by side in one run, on the same stream:
  plain   httpx + httpx-sse reading the events and joining their content (the floor),
  ours    llm_notebook's plugin: `model.prompt(...).text()`,
  llm     the `llm` library's OpenAI plugin pointed at the same server.
and prints the ratios. Target: ours <= 1.1x plain, and faster than llm.

Run: python tests/benchmarks/bench_openai_stream.py [--chunks 20000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.fake_llm_server import bench_words  # noqa: E402

MODEL = "bench-model"
KEY = "sk-bench-not-a-real-key"


def start_server(chunks: int) -> tuple[subprocess.Popen, str]:
    """The fake server in its own process, so it never competes with the client for the GIL."""
    process = subprocess.Popen([sys.executable, "-m", "tests.support.fake_llm_server",
                                "--chunks", str(chunks)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def plain_reader(base_url: str):
    import httpx
    from httpx_sse import EventSource

    client = httpx.Client(timeout=60)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "go"}], "stream": True,
            "stream_options": {"include_usage": True}}

    def run() -> str:
        parts = []
        with client.stream("POST", f"{base_url}/chat/completions", json=body,
                           headers={"Authorization": f"Bearer {KEY}"}) as response:
            for event in EventSource(response).iter_sse():
                if event.data == "[DONE]":
                    break
                choices = json.loads(event.data).get("choices")
                if choices:
                    content = choices[0]["delta"].get("content")
                    if content:
                        parts.append(content)
        return "".join(parts)

    return run


def ours(base_url: str):
    """The plugin as a user runs it, writing each response to the SQLite log."""
    import llm_notebook

    [model_id] = llm_notebook.add_openai_endpoint(base_url, models=[MODEL], api_key=KEY)
    model = llm_notebook.get_model(model_id)
    return lambda: model.prompt("go").text()


def llm_library(base_url: str):
    """`llm`'s own OpenAI plugin, configured the documented way: extra-openai-models.yaml."""
    user_path = tempfile.mkdtemp(prefix="llm-bench-")
    Path(user_path, "extra-openai-models.yaml").write_text(
        f"- model_id: {MODEL}\n  model_name: {MODEL}\n  api_base: {base_url}\n", encoding="utf-8")
    os.environ["LLM_USER_PATH"] = user_path
    import llm

    model = llm.get_model(MODEL)
    return lambda: model.prompt("go", key=KEY).text()


def check(run, expected: str) -> None:
    """One warm-up run, which must return the whole text."""
    text = run()
    if text != expected:
        raise SystemExit(f"wrong text: {len(text)} characters instead of {len(expected)}")


def seconds(run) -> float:
    gc.collect()  # garbage left by one contender must not be collected on another's clock
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    os.environ.setdefault("LLM_NOTEBOOK_USER_PATH", tempfile.mkdtemp(prefix="llm-notebook-bench-"))
    expected = "".join(bench_words(args.chunks))
    process, base_url = start_server(args.chunks)
    try:
        contenders = {
            "plain httpx + httpx-sse": plain_reader(base_url),
            "llm_notebook": ours(base_url),
            "llm": llm_library(base_url),
        }
        for run in contenders.values():
            check(run, expected)
        results: dict[str, list[float]] = {name: [] for name in contenders}
        # Round by round, so drift in the machine's load hits every contender alike.
        for _ in range(args.repeats):
            for name, run in contenders.items():
                results[name].append(seconds(run))
    finally:
        process.terminate()
        process.wait()
    # The fastest run is the one least disturbed by other work on the machine (as timeit advises);
    # the median is printed beside it.
    best = {name: min(values) for name, values in results.items()}
    plain = best["plain httpx + httpx-sse"]
    print(f"{args.chunks:,} chunks, {args.repeats} runs each: fastest (median)")
    for name, values in results.items():
        print(f"  {name:26s} {best[name] * 1000:8.1f} ms ({statistics.median(values) * 1000:7.1f} ms)"
              f"   {best[name] / plain:5.2f}x plain")
    ours_time = best["llm_notebook"]
    print(f"llm_notebook / plain = {ours_time / plain:.2f} (target <= 1.10)")
    print(f"llm_notebook / llm   = {ours_time / best['llm']:.3f} (target < 1.00)")


if __name__ == "__main__":
    main()
