"""One large batch job in this process, measured: `python -m tests.support.batch_job_memory
BASE_URL ROWS` submits ROWS tiny rows to the loopback batch server at BASE_URL, waits, collects
(into the answer cache and the log), checks the result, and prints one JSON line: the peak
memory over the baseline (the interpreter, pandas and the input already loaded) and the seconds
each phase took.

`--naive` measures the floor instead: the same requests built in memory as one JSONL string,
as a job that kept everything in memory would have to, before sending anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """This program's peak resident memory (VmHWM): getrusage's ru_maxrss is kept across fork
    and exec, so a child of a large process (a long test session) would report the parent's."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("rows", type=int)
    parser.add_argument("--naive", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("LLM_NOTEBOOK_USER_PATH", tempfile.mkdtemp(prefix="batch-job-memory-"))
    os.environ["OPENAI_BASE_URL"] = args.base_url + "/v1"
    os.environ["LLM_NOTEBOOK_CACHE"] = "replay"
    from tests.support.batch_servers import OPENAI_KEY

    os.environ["OPENAI_API_KEY"] = OPENAI_KEY
    import pandas as pd

    import llm_notebook
    from llm_notebook import jobs  # noqa: F401 (loaded before the baseline, as in a session)

    frame = pd.DataFrame({"n": range(args.rows)}, index=[f"k{n}" for n in range(args.rows)])
    model = llm_notebook.get_model("gpt-4o-mini")
    base = rss_mb()
    started = time.perf_counter()
    if args.naive:
        from llm_notebook.responses import Prompt

        lines = [json.dumps({"custom_id": f"r{n}", "method": "POST", "url": "/v1/chat/completions",
                             "body": model.build_body(Prompt(f"Say {n}", model), False)})
                 for n in frame["n"]]
        document = "\n".join(lines).encode()
        print(json.dumps({"peak_mb": peak_mb() - base, "submit_s": time.perf_counter() - started,
                          "bytes": len(document)}))
        return
    job = llm_notebook.map("Say {n}", frame, model="gpt-4o-mini", batch=True)
    submitted = time.perf_counter()
    submit_peak = peak_mb() - base
    job.wait(poll=0, progress=False)
    collected = time.perf_counter()
    answers = job.result()
    done = time.perf_counter()
    ok = (len(answers) == args.rows and answers.index.equals(frame.index)
          and answers.iloc[-1] == f"answer to: Say {args.rows - 1}" and not job.errors)
    print(json.dumps({"peak_mb": peak_mb() - base, "submit_peak_mb": submit_peak,
                      "submit_s": submitted - started,
                      "collect_s": collected - submitted, "result_s": done - collected,
                      "batches": len(job.batch_ids), "ok": ok}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
