"""What a streamed answer costs the notebook in display messages, and how soon its first words show.

A real kernel (nbclient) runs `%%llm` on a model that streams a 4,000-word answer word by word,
with an image attached (its thumbnail is shown) and the live "streaming" marker on, as a user
would have them. Measured side by side in the same kernel with the floor: one display message
holding the final answer, sent once.

- bytes: every display message of the cell (thumbnail, partial renders, final bundle, usage
  table), as JSON, over the answer's size. Target: at most 5x.
- first words: from the cell starting (the kernel's execute_input) to the answer's first display
  message, both stamped by the kernel. Target: within 50 ms. The floor: a cell that displays a
  line at once.

Run: python tests/benchmarks/bench_display.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.magics_kernel import KernelNotebook  # noqa: E402

WORDS = 4000
BYTES_TARGET = 5.0
FIRST_WORDS_TARGET_MS = 50.0

SETUP = f'''
%load_ext llm_notebook
import time
import llm_notebook
from PIL import Image

picture = Image.new("RGB", (800, 600), "teal")


class Long(llm_notebook.Model):
    """A {WORDS:,}-word answer, one word at a time, about 2,000 words a second."""
    model_id = "long"
    attachment_types = {{"image/png"}}

    def execute(self, prompt, stream, response, conversation):
        for i in range({WORDS}):
            if i % 20 == 0:
                time.sleep(0.01)
            yield f"word{{i}} " if i % 12 else f"\\n\\nword{{i}} "
        response.set_usage(input=1, output={WORDS})


llm_notebook.register(Long())
answer = "".join(f"word{{i}} " if i % 12 else f"\\n\\nword{{i}} " for i in range({WORDS}))
'''
ANSWER_CELL = "%%llm -m long -a picture\nWrite at length."
FLOOR_CELL = ("from IPython.display import display\n"
              "display({'text/plain': answer, 'text/markdown': answer}, raw=True)")
FIRST_FLOOR_CELL = "display({'text/markdown': 'word0'}, raw=True)"


def _at(message: dict) -> datetime:
    return datetime.fromisoformat(str(message["header"]["date"]).replace("Z", "+00:00"))


def _display_bytes(run) -> int:
    return sum(len(json.dumps(m["content"]["data"])) for m in run.display_messages())


def _first_display_ms(run, *, answer_only: bool) -> float:
    started = next(m for m in run.messages if m["msg_type"] == "execute_input")
    displays = run.display_messages()
    if answer_only:  # the answer's display, not the thumbnail before it
        displays = [m for m in displays
                    if not m["content"].get("metadata", {}).get("llm_notebook", {}).get("thumbnail")]
    return (_at(displays[0]) - _at(started)).total_seconds() * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        kernel = KernelNotebook(Path(scratch), env={"LLM_NOTEBOOK_USER_PATH": scratch,
                                                   "LLM_NOTEBOOK_LOAD_PLUGINS": ""}, timeout=120)
        try:
            kernel.run(SETUP)
            kernel.run("%llm -m long --no-usage warm up")  # plugins and imports, once
            size = len(kernel.run("print(answer, end='')").stream().encode())
            ours, floor, first, first_floor = [], [], [], []
            for _ in range(args.runs):
                run = kernel.run(ANSWER_CELL)
                ours.append(_display_bytes(run))
                first.append(_first_display_ms(run, answer_only=True))
                floor.append(_display_bytes(kernel.run(FLOOR_CELL)))
                first_floor.append(_first_display_ms(kernel.run(FIRST_FLOOR_CELL), answer_only=False))
                messages = len(run.display_messages())
        finally:
            kernel.close()
    ours_b, floor_b = statistics.median(ours), statistics.median(floor)
    first_ms, first_floor_ms = statistics.median(first), statistics.median(first_floor)
    ratio = ours_b / size
    print(f"a {WORDS:,}-word answer ({size:,} bytes), thumbnail and streaming marker on; "
          f"median of {args.runs} runs")
    print(f"{'':<34}{'llm_notebook':>14}{'floor':>12}{'ratio':>10}")
    print(f"{'display bytes':<34}{ours_b:>14,.0f}{floor_b:>12,.0f}{ours_b / floor_b:>9.2f}x")
    print(f"{'display bytes / answer size':<34}{ratio:>13.2f}x{floor_b / size:>11.2f}x")
    print(f"{'display messages':<34}{messages:>14}{1:>12}")
    print(f"{'first words after cell start (ms)':<34}{first_ms:>14.1f}{first_floor_ms:>12.1f}"
          f"{first_ms / max(first_floor_ms, 0.1):>9.2f}x")
    print(f"target: display bytes at most {BYTES_TARGET:g}x the answer: "
          f"{'met' if ratio <= BYTES_TARGET else 'NOT met'} ({ratio:.2f}x)")
    print(f"target: first words within {FIRST_WORDS_TARGET_MS:g} ms: "
          f"{'met' if first_ms <= FIRST_WORDS_TARGET_MS else 'NOT met'} ({first_ms:.1f} ms)")


if __name__ == "__main__":
    main()
