"""What structured output adds to a map: validating 1,000 answers and assembling typed columns,
next to the map that fetched them as plain text, in one run.

    python tests/benchmarks/bench_structured.py        (the test extra installs pandas)

An OpenAI-compatible loopback server (a separate process, no delay) answers each of 1,000
prompts with a little prose and a JSON object; `llm_notebook.map` collects them into a Series
of text. Then `parse_structured` checks each against the schema and `typed_frame` builds the
Int64 / boolean / string columns with the input's index. Target: validating and assembling
cost at most 10% of the map that produced the text, so a map with a schema stays within 1.1x
of one without. Rounds are interleaved; medians are compared.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROWS = 1000
ROUNDS = 5
CONCURRENCY = 8
SCHEMA = "n int, ok bool"


def start_server() -> tuple[subprocess.Popen, str]:
    """The slow server with no delay: it answers "w0 w1 w2 w3 " and the prompt's last 20
    characters, which here end in a JSON object."""
    server = subprocess.Popen([sys.executable, "-m", "tests.support.slow_server", "--delay", "0"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return server, server.stdout.readline().strip()


def main() -> None:
    os.environ["LLM_NOTEBOOK_USER_PATH"] = tempfile.mkdtemp()  # the log goes there, not home
    sys.path.insert(0, str(ROOT))
    import pandas as pd

    import llm_notebook
    from llm_notebook.structured import StructuredOutputError, parse_structured, typed_frame

    server, url = start_server()
    try:
        [model_id] = llm_notebook.add_openai_endpoint(url, name="bench", models=["slow"])
        rows = pd.DataFrame({"answer": [f'{{"n":{i},"ok":{"true" if i % 2 else "false"}}}'
                                        for i in range(ROWS)]},
                            index=pd.Index([f"row{i}" for i in range(ROWS)], name="id"))

        def mapped() -> tuple[float, pd.Series]:
            started = time.perf_counter()
            texts = llm_notebook.map("Answer with {answer}", rows, model=model_id,
                                     concurrency=CONCURRENCY, progress=False)
            took = time.perf_counter() - started
            assert not texts.errors, texts.errors
            return took, texts

        def assembled(texts: pd.Series) -> tuple[float, pd.DataFrame]:
            started = time.perf_counter()
            outcomes = []
            for label, text in texts.items():
                try:
                    outcomes.append((label, parse_structured(text, SCHEMA)))
                except StructuredOutputError as exc:
                    outcomes.append((label, exc))
            frame = typed_frame(outcomes, SCHEMA, index=texts.index)
            return time.perf_counter() - started, frame

        _, texts = mapped()  # warm up: imports, connections, the schema's validator
        _, frame = assembled(texts)
        assert frame["error"].isna().all() and str(frame["n"].dtype) == "Int64", frame.head()
        assert frame["n"].tolist() == list(range(ROWS)) and frame.index.equals(rows.index)
        maps, validations = [], []
        for _ in range(ROUNDS):
            took, texts = mapped()
            maps.append(took)
            validations.append(assembled(texts)[0])
    finally:
        server.terminate()
        server.wait(timeout=10)
    map_time, check_time = statistics.median(maps), statistics.median(validations)
    share = check_time / map_time
    print(f"{ROWS} rows, median of {ROUNDS} interleaved rounds:")
    print(f"  map to a Series of text (loopback)    {map_time * 1000:8.1f} ms")
    print(f"  parse, validate, typed columns        {check_time * 1000:8.1f} ms "
          f"({check_time / ROWS * 1e6:.1f} us a row)")
    print(f"validating and assembling / the map = {share:.3f} "
          f"(target <= 0.10: {'met' if share <= 0.10 else 'NOT met'})")
    print(f"a map with a schema / without = {1 + share:.3f} "
          f"(target <= 1.1: {'met' if 1 + share <= 1.1 else 'NOT met'})")


if __name__ == "__main__":
    main()
