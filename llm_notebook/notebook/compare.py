"""`%%llm -m A -m B`: several answers streaming side by side into one display.

The columns are a flex box of <div>s around each answer's own Markdown, with a rule between
them, escaped like any answer so model output never renders as HTML; where a frontend drops the
layout they stand one under the other. The comparison itself (`llm_notebook.compare`) needs no
notebook; this is only its live view.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..answers import STREAMING_MARKER, Answer
from ..comparison import answers_bundle, columns_markdown, plain_columns
from ..markdown import safe_markdown
from . import render


def _partial_body(response: Any) -> str:
    body = safe_markdown(response.text_so_far(), partial=True).rstrip()
    if response.finished:
        return body
    return body + ("\n\n" if body else "") + f"_{STREAMING_MARKER}_"


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
            if self.responses[index].replayed is None:  # a replayed answer comes whole
                self._grew(len(chunk))

    def _live(self) -> bool:
        return any(response.replayed is None for response in self.responses)

    def _partial(self) -> dict[str, str]:
        if self.plain:
            return {"text/plain": plain_columns(self.titles, [
                r.text_so_far() + ("" if r.finished else f"\n{STREAMING_MARKER}")
                for r in self.responses])}
        return {"text/markdown": columns_markdown(self.titles,
                                                  [_partial_body(r) for r in self.responses])}

    def finish(self, answers: Sequence[Answer]) -> None:  # type: ignore[override]
        data, metadata = answers_bundle(answers, plain=self.plain)
        if self._display is None:
            print(data["text/plain"])
        else:
            self._end(data, metadata)

    def _send(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self._display.send(data, metadata)
