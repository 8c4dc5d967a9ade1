"""How long safe_markdown takes on a 4,000-word answer, against one markdown-it parse of it.

A partial render runs on every throttled display update of a streaming answer (about 10 a second),
so it has to stay cheap. Three timings, sampled side by side in one run (medians):

- floor: `markdown_it.MarkdownIt().parse(text)` of the half-streamed answer;
- cold: `safe_markdown(text, partial=True)` of the same text, seen for the first time;
- streaming: the same answer streamed in chunks, rendered every tenth chunk with partial=True; the
  renders of its last tenth are timed (the finished blocks are kept between renders).

Targets: cold within 3x the floor; streaming within 3x the floor and well under 10 ms.

Run: python tests/benchmarks/bench_markdown.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid

from markdown_it import MarkdownIt

from llm_notebook.markdown import safe_markdown

WORDS = 4000
CHUNK = 30  # characters per streamed chunk, about what an OpenAI-style stream sends
RENDER_EVERY = 10


def answer(words: int = WORDS, seed: int = 7) -> str:
    """A model-like Markdown answer of about `words` words, cut off inside a code block."""
    rng = random.Random(seed)
    vocabulary = ("the data frame shows that sales grew in each region while costs stayed "
                  "flat so the margin x < y improved over time for most rows").split()

    def sentence(n: int) -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(n)).capitalize() + "."

    parts: list[str] = []
    while sum(len(part.split()) for part in parts) < words:
        kind = rng.random()
        if kind < 0.45:
            text = " ".join(sentence(12) for _ in range(5))
            text = text.replace("sales", "**sales**", 1).replace("frame", "`df.groupby()`", 1)
            text = text.replace("region", "[region](https://example.org/r)", 1)
            text = text.replace("margin", "margin $m = p - c$", 1)
            parts.append(text)
        elif kind < 0.65:
            parts.append("\n".join(f"{i}. {sentence(9)}" for i in range(1, 6)))
        elif kind < 0.75:
            rows = "\n".join(f"| {rng.choice(vocabulary)} | {rng.randint(1, 99)} |"
                             for _ in range(6))
            parts.append(f"## Summary\n\n| name | value |\n| --- | ---: |\n{rows}")
        else:
            code = "\n".join(f"df = df[df.col{i} < {i}]  # keep <{i}>" for i in range(8))
            parts.append(f"```python\n{code}\n```")
    return "\n\n".join(parts) + "\n\n```python\nresult = df.merge(other, on='key')  # <still"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def streaming_render_times(text: str) -> list[float]:
    """Stream `text` in chunks, rendering every tenth one; the times of the last tenth's renders."""
    source = f"Answer {uuid.uuid4().hex}\n\n{text}"  # no render kept from an earlier sample
    times = []
    for number, end in enumerate(range(CHUNK, len(source) + CHUNK, CHUNK), start=1):
        if number % RENDER_EVERY:
            continue
        start = time.perf_counter()
        safe_markdown(source[:end], partial=True)
        if end >= 0.9 * len(source):
            times.append(time.perf_counter() - start)
    safe_markdown(source)  # the final render lets the kept blocks go
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    text = answer()
    markdown_it = MarkdownIt()
    floor, cold, streaming = [], [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        markdown_it.parse(text)
        floor.append(time.perf_counter() - start)
        fresh = f"Answer {uuid.uuid4().hex}\n\n{text}"
        start = time.perf_counter()
        safe_markdown(fresh, partial=True)
        cold.append(time.perf_counter() - start)
        safe_markdown(fresh)
        streaming.extend(streaming_render_times(text))

    floor_ms, cold_ms, stream_ms = median_ms(floor), median_ms(cold), median_ms(streaming)
    print(f"half-streamed answer: {len(text.split())} words, {len(text)} characters")
    print(f"floor  markdown_it.MarkdownIt().parse()      {floor_ms:7.2f} ms")
    for name, value in (("cold   safe_markdown(partial=True), new text", cold_ms),
                        ("stream safe_markdown(partial=True), growing", stream_ms)):
        ratio = value / floor_ms
        verdict = "met" if ratio <= 3 else "NOT met"
        print(f"{name} {value:7.2f} ms  {ratio:5.2f}x the floor  (target <= 3x: {verdict})")
    verdict = "met" if stream_ms < 10 else "NOT met"
    print(f"streaming render under 10 ms: {verdict} ({stream_ms:.2f} ms)")


if __name__ == "__main__":
    main()
