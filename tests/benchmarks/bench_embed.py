"""llm_notebook.embed against a slow loopback embeddings server, side by side with the `llm` library.

    python tests/benchmarks/bench_embed.py        (the test extra installs `llm`)

1. 2,000 texts, 100 per request, to a loopback `/v1/embeddings` (a separate process) that answers
   each request after 50 ms: `llm_notebook.embed(..., concurrency=4)` (ideal 0.25 s; target
   <= 1.3x ideal), the same one batch at a time (the sequential floor, 1.0 s), and the `llm`
   library's `embed_multi` with its OpenAI embedding model pointed at the same server (one batch
   at a time, as it sends them). Interleaved round by round, medians.
2. The offline `hashed-ngrams` model on 5,000 texts through `embed()` next to the same array
   made by hand (a loop over the function that makes its vectors, then `numpy.asarray`): what
   batching, the checks and the runner add (target <= 1.15x).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXTS = 2_000
BATCH = 100
DELAY = 0.05
CONCURRENCY = 4
ROUNDS = 5
OFFLINE_TEXTS = 5_000


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def contenders(url: str, texts: list[str]) -> dict:
    from llm_notebook.default_plugins.openai_embeddings import OpenAIEmbeddingModel
    from llm_notebook.vectors import embed

    ours = OpenAIEmbeddingModel("bench-embed", base_url=url, encoding_format="base64")

    def check(vectors) -> None:
        assert len(vectors) == TEXTS and vectors[5][0] == len(texts[5])

    runs = {
        f"llm_notebook.embed, concurrency {CONCURRENCY}": lambda: check(embed(
            texts, ours, batch_size=BATCH, concurrency=CONCURRENCY, progress=False)),
        "llm_notebook.embed, one batch at a time": lambda: check(embed(
            texts, ours, batch_size=BATCH, concurrency=1, progress=False)),
    }
    try:
        os.environ["LLM_USER_PATH"] = tempfile.mkdtemp()
        os.environ["OPENAI_BASE_URL"] = url
        os.environ.setdefault("OPENAI_API_KEY", "loopback-needs-no-key")
        import llm

        theirs = llm.get_embedding_model("3-small")
        runs["llm embed_multi"] = lambda: check(list(theirs.embed_multi(texts,
                                                                        batch_size=BATCH)))
    except ImportError:
        print("llm library not installed (pip install -e '.[test]'): comparison skipped")
    return runs


def bench_server(url: str) -> None:
    texts = [f"review number {i}: " + "word " * (i % 7) for i in range(TEXTS)]
    runs = contenders(url, texts)
    for run in runs.values():  # warm up: imports, connections
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name in random.sample(list(runs), len(runs)):  # interleaved, a new order each round
            times[name].append(timed(runs[name]))
    medians = {name: statistics.median(values) for name, values in times.items()}
    requests = TEXTS // BATCH
    ideal = requests / CONCURRENCY * DELAY
    ours = medians[f"llm_notebook.embed, concurrency {CONCURRENCY}"]
    print(f"{TEXTS} texts, {BATCH} per request ({requests} requests), {DELAY * 1000:.0f} ms each "
          f"(ideal at concurrency {CONCURRENCY}: {ideal:.2f} s), median of {ROUNDS} "
          "interleaved rounds:")
    for name, median in medians.items():
        print(f"  {name:45} {median:.3f} s  {median / ours:5.2f}x ours")
    print(f"llm_notebook.embed: {ours / ideal:.2f}x ideal (target <= 1.3x: "
          f"{'met' if ours <= 1.3 * ideal else 'NOT met'})")
    theirs = medians.get("llm embed_multi")
    if theirs is not None:
        print(f"llm_notebook.embed / llm embed_multi = {ours / theirs:.2f} "
              f"(target < 1: {'met' if ours < theirs else 'NOT met'})")


def bench_offline() -> None:
    import numpy as np

    from llm_notebook.default_plugins.offline_embeddings import HashedNgrams, hashed_vector
    from llm_notebook.vectors import embed

    texts = [f"text {i} about {'soup' if i % 2 else 'trains'} and more" for i in range(OFFLINE_TEXTS)]
    model = HashedNgrams()
    runs = {"embed()": lambda: embed(texts, model, progress=False),
            "by hand (floor)": lambda: np.asarray([hashed_vector(text) for text in texts],
                                                  dtype=np.float32)}
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name in random.sample(list(runs), len(runs)):
            times[name].append(timed(runs[name]))
    ours, floor = (statistics.median(times[name]) for name in runs)
    print(f"hashed-ngrams, {OFFLINE_TEXTS} texts, median of {ROUNDS}: embed() {ours:.3f} s, "
          f"by hand {floor:.3f} s, {ours / floor:.2f}x (target <= 1.15x: "
          f"{'met' if ours <= 1.15 * floor else 'NOT met'})")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.server_process import start_module_server

    server, url = start_module_server("tests.support.fake_embeddings", "--delay", str(DELAY))
    try:
        bench_server(url)
        bench_offline()
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
