"""What a schema adds to a map: `map(..., schema=...)` over 1,000 rows next to the same map
without one, in one run.

    python tests/benchmarks/bench_structured.py        (the test extra installs pandas)

An OpenAI-compatible loopback server (a separate process, no delay) answers each prompt with a
little prose and the prompt's JSON object. With the schema, every answer is found in the text,
validated and assembled into Int64 / boolean / string columns on the input's index; without it,
the answers come back as a Series of text. Concurrency 20; rounds are interleaved (the order
alternates) and medians compared. Target: a map with a schema within 1.1x of one without.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROWS = 1000
ROUNDS = 5
CONCURRENCY = 20
SCHEMA = "n int, ok bool"


def main() -> None:
    os.environ["LLM_NOTEBOOK_USER_PATH"] = tempfile.mkdtemp()  # the log goes there, not home
    os.environ["LLM_NOTEBOOK_CACHE"] = "off"  # every round asks the server
    sys.path.insert(0, str(ROOT))
    import pandas as pd

    import llm_notebook

    from tests.support.server_process import start_module_server

    # the slow server with no delay: it answers "w0 w1 w2 w3 " and the prompt's last 20
    # characters, which here end in a JSON object
    server, url = start_module_server("tests.support.slow_server", "--delay", "0")
    try:
        [model_id] = llm_notebook.add_openai_endpoint(url, name="bench", models=["slow"])
        rows = pd.DataFrame({"answer": [f'{{"n":{i},"ok":{"true" if i % 2 else "false"}}}'
                                        for i in range(ROWS)]},
                            index=pd.Index([f"row{i}" for i in range(ROWS)], name="id"))

        def mapped(schema: str | None) -> tuple[float, object]:
            started = time.perf_counter()
            answers = llm_notebook.map("Answer with {answer}", rows, model=model_id,
                                       concurrency=CONCURRENCY, progress=False, schema=schema)
            took = time.perf_counter() - started
            assert not answers.errors, answers.errors
            return took, answers

        mapped(None)  # warm up: imports, connections, the schema's validator
        _, frame = mapped(SCHEMA)
        assert frame["error"].isna().all() and str(frame["n"].dtype) == "Int64", frame.head()
        assert frame["n"].tolist() == list(range(ROWS)) and frame.index.equals(rows.index)
        plain, typed = [], []
        for round_ in range(ROUNDS):
            for schema in ((None, SCHEMA) if round_ % 2 else (SCHEMA, None)):
                (typed if schema else plain).append(mapped(schema)[0])
    finally:
        server.terminate()
        server.wait(timeout=10)
    plain_time, typed_time = statistics.median(plain), statistics.median(typed)
    ratio = typed_time / plain_time
    print(f"{ROWS} rows at concurrency {CONCURRENCY}, median of {ROUNDS} interleaved rounds:")
    print(f"  map to a Series of text (loopback)          {plain_time * 1000:8.1f} ms")
    print(f"  map with a schema to typed columns          {typed_time * 1000:8.1f} ms")
    print(f"a map with a schema / without = {ratio:.3f} "
          f"(target <= 1.1: {'met' if ratio <= 1.1 else 'NOT met'})")


if __name__ == "__main__":
    main()
