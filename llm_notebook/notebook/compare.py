"""`%%llm -m A -m B`: one prompt to several models at once, the answers side by side.

The answers stream into one display as Markdown columns: a flex box of <div>s around each
answer's own Markdown, escaped like any answer so model output never renders as HTML; where a
frontend drops the layout they stand one under the other. A comparison table follows: tokens,
time to first token, total time and output speed, with the time all of them took together.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .. import runner
from ..markdown import safe_markdown
from ..usage import answer_row
from . import render

HEADERS = ("model", "status", "input", "output", "first token", "total", "output tok/s")
_ROW = '<div style="display: flex; gap: 1.5em; align-items: flex-start">'
_COLUMN = '<div style="flex: 1 1 0; min-width: 0; overflow-x: auto">'


def columns_markdown(titles: Sequence[str], bodies: Sequence[str]) -> str:
    """Markdown `bodies` in columns: each <div> line is an HTML block ended by a blank line, so
    what lies between is parsed as Markdown. The bodies must be safe Markdown with no open fence."""
    lines = [_ROW]
    for title, body in zip(titles, bodies):
        lines += [_COLUMN, "", f"**{safe_markdown(title)}**", "", body, "", "</div>"]
    lines.append("</div>")
    return "\n".join(lines)


def _plain(titles: Sequence[str], bodies: Sequence[str]) -> str:
    return "\n\n".join(f"── {title} ──\n{body}" for title, body in zip(titles, bodies))


class Columns(render.ThrottledView):
    """Several answers streaming side by side into one display, throttled like a single answer.

    With no kernel (a terminal) nothing is shown while streaming, and the answers one after
    another at the end.
    """

    def __init__(self, responses: Sequence[Any], throttle: render.Throttle, *,
                 in_kernel: bool = True, plain: bool = False) -> None:
        super().__init__(throttle, plain=plain)
        self.responses = list(responses)
        self.titles = [response.model.model_id for response in self.responses]
        self._display = render.LiveDisplay() if in_kernel else None

    def add(self, index: int, chunk: str) -> None:  # type: ignore[override]
        if self._display is None:
            return
        with self._lock:
            self._grew(len(chunk))

    def _partial(self) -> dict[str, str]:
        texts = [response.text_so_far() for response in self.responses]
        if self.plain:
            return {"text/plain": _plain(self.titles, texts)}
        bodies = [safe_markdown(text, partial=True) for text in texts]
        return {"text/markdown": columns_markdown(self.titles, bodies)}

    def finish(self, answers: Sequence[render.Answer]) -> None:  # type: ignore[override]
        data, metadata = answers_bundle(answers, plain=self.plain)
        if self._display is None:
            print(data["text/plain"])
        else:
            self._end(data, metadata)

    def _send(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self._display.send(data, metadata)


def answers_bundle(answers: Sequence[render.Answer], *,
                   plain: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The finished answers side by side, with each one's provenance in the metadata."""
    titles = [answer.response.model.model_id for answer in answers]
    data = {"text/plain": _plain(titles, [answer.data()["text/plain"] for answer in answers])}
    if not plain:
        # partial=True closes a fence the model left open, which would swallow the layout
        bodies = [safe_markdown(answer.text, partial=True) + render.partial_note(answer.status)
                  for answer in answers]
        data["text/markdown"] = columns_markdown(titles, bodies)
    return data, {render.METADATA_KEY: {"answers": [answer.metadata()[render.METADATA_KEY]
                                                    for answer in answers]}}


class Comparison(render.ShownOnce):
    """The value of a side-by-side cell: its `answers` (in the order of the models) and timings."""

    def __init__(self, answers: list[render.Answer], wall_s: float) -> None:
        self.answers = answers
        self.wall_s = wall_s

    def __getitem__(self, index: int) -> render.Answer:
        return self.answers[index]

    def __len__(self) -> int:
        return len(self.answers)

    def __str__(self) -> str:
        return _plain([a.response.model.model_id for a in self.answers], [a.text for a in self.answers])

    def __repr__(self) -> str:
        return f"<Comparison {', '.join(a.response.model.model_id for a in self.answers)}>"

    def _repr_mimebundle_(self, include=None, exclude=None):
        return answers_bundle(self.answers, plain=self.answers[0].format == "text")

    def table(self) -> tuple[dict[str, str], dict[str, Any]]:
        """The comparison table (HEADERS) with a line on the time taken together and apart."""
        rows, records = [], []
        for answer in self.answers:
            summary = answer.response.to_dict()
            model, input, output, _details, total, speed = answer_row(summary)
            first = summary["first_chunk_ms"]
            rows.append((model, summary["status"], input, output,
                         "" if first is None else f"{first / 1000:.2f} s", total, speed))
            records.append({"model": model, "status": summary["status"],
                            "input": summary["usage"]["input"], "output": summary["usage"]["output"],
                            "first_token_ms": first, "duration_ms": summary["duration_ms"],
                            "datetime": summary["datetime_utc"]})
        durations = [record["duration_ms"] / 1000 for record in records]
        wall_ms = round(self.wall_s * 1000)
        note = (f"{len(rows)} answers side by side in {wall_ms / 1000:.2f} s: the slowest took "
                f"{max(durations):.2f} s, one after another they would take {sum(durations):.2f} s.")
        data = render.table_data(HEADERS, rows)
        data = {mime: f"{text}\n\n{note}" for mime, text in data.items()}
        return data, {render.METADATA_KEY: {"comparison": records, "wall_ms": wall_ms}}


def side_by_side(responses: Sequence[Any], view: Columns, *,
                 format: str = "markdown") -> tuple[Comparison, KeyboardInterrupt | None]:
    """Stream all `responses` at once into `view` (none waits for another), then the answers.

    An interrupt stops them all; the partial answers are shown and the interrupt is returned.
    """
    stopped = None
    start = time.monotonic()
    chunks = runner.iterate_many(responses)
    try:
        for index, chunk in chunks:
            view.add(index, chunk)
    except KeyboardInterrupt as exc:
        stopped = exc
    finally:
        chunks.close()  # an interrupt inside display leaves it suspended: cancel the rest
    wall = time.monotonic() - start
    for response in responses:
        if not response.finished:
            response.interrupt()
    answers = [render.Answer(response, format=format) for response in responses]
    view.finish(answers)
    return Comparison(answers, wall), stopped
