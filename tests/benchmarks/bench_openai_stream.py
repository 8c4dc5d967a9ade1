"""Streaming speed of the OpenAI-compatible plugin: 20,000 small chunks from a loopback server.

Times, side by side in one run, on the same stream:
  plain   httpx + httpx-sse reading the events and joining their content (the floor),
  ours    llm_notebook's plugin: `model.prompt(...).text()`,
  llm     the `llm` library's OpenAI plugin pointed at the same server.
and prints the medians of the round-by-round ratios. Targets: ours <= 1.05x plain, and faster
than llm.

Run: python tests/benchmarks/bench_openai_stream.py [--chunks 20000] [--repeats 9] [--pairs 45]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.fake_llm_server import bench_words  # noqa: E402
from tests.support.server_process import start_module_server  # noqa: E402

MODEL = "bench-model"
KEY = "sk-bench-not-a-real-key"


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
    parser.add_argument("--repeats", type=int, default=9, help="rounds of all three")
    parser.add_argument("--pairs", type=int, default=45,
                        help="more rounds of llm_notebook and plain alone")
    args = parser.parse_args()
    os.environ.setdefault("LLM_NOTEBOOK_USER_PATH", tempfile.mkdtemp(prefix="llm-notebook-bench-"))
    expected = "".join(bench_words(args.chunks))
    process, base_url = start_module_server("tests.support.fake_llm_server", "--chunks",
                                            str(args.chunks))
    try:
        contenders = {
            PLAIN: plain_reader(base_url),
            "llm_notebook": ours(base_url),
            "llm": llm_library(base_url),
        }
        for run in contenders.values():
            check(run, expected)
        results: dict[str, list[float]] = {name: [] for name in contenders}
        run_rounds(contenders, results, args.repeats)
        # More rounds of the two quick contenders: their ratio is the one near 1, where the
        # machine's noise matters most (the first rounds pair with llm's, index by index).
        quick = {name: contenders[name] for name in ("llm_notebook", PLAIN)}
        run_rounds(quick, results, args.pairs)
    finally:
        process.terminate()
        process.wait()
    print(f"{args.chunks:,} chunks, {args.repeats} rounds of all, {args.pairs} more of "
          "llm_notebook and plain: median (fastest)")
    for name, values in results.items():
        print(f"  {name:26s} {statistics.median(values) * 1000:8.1f} ms ({min(values) * 1000:7.1f} ms)")
    report("llm_notebook / plain", paired_ratio(results["llm_notebook"], results[PLAIN]), 1.05)
    report("llm_notebook / llm  ", paired_ratio(results["llm_notebook"], results["llm"]), 1.00,
           strictly=True)


PLAIN = "plain httpx + httpx-sse"


def run_rounds(contenders: dict, results: dict[str, list[float]], rounds: int) -> None:
    """Round by round, so drift in the machine's load hits every contender alike; the order
    turns each round, so no contender always runs right after another."""
    names = list(contenders)
    for round_number in range(rounds):
        turn = round_number % len(names)
        for name in names[turn:] + names[:turn]:
            results[name].append(seconds(contenders[name]))


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """The median of the round-by-round ratios: each pair ran under the same machine load."""
    return statistics.median(a / b for a, b in zip(ours, theirs))


def report(label: str, ratio: float, target: float, *, strictly: bool = False) -> None:
    met = ratio < target if strictly else ratio <= target
    sign = "<" if strictly else "<="
    print(f"{label} = {ratio:.3f} (median of paired runs; target {sign} {target:.2f}): "
          f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
