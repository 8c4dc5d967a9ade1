"""Showing answers: one display per answer, updated as the text streams, then a usage table.

In a kernel the answer streams into a single display by display id. Updates are throttled by
time and by a byte budget, so the bytes sent to the frontend stay a small multiple of the answer's
size (re-sending the whole text on every chunk would cost its square). The first text goes out
at once, partial Markdown has its open code fence closed, and the last update is the exact
answer with its provenance in the metadata. A terminal IPython gets the plain text as it comes.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import LLMNotebookError
from ..markdown import safe_markdown

METADATA_KEY = "llm_notebook"
_JSON_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n```", re.S)
_MARKERS = {
    "interrupted": "interrupted: the answer above is partial",
    "error": "stopped by an error: the answer above is partial",
}


def partial_note(status: str) -> str:
    """The Markdown note under an answer that stopped early ("" for a finished one)."""
    marker = _MARKERS.get(status)
    return f"\n\n_[{marker}]_" if marker else ""


class Throttle:
    """Decides which partial renders to send: at most one per `interval` seconds, and only while
    the bytes sent so far stay within `budget` times the current size plus `allowance`."""

    def __init__(self, interval: float = 0.1, budget: float = 4.0, allowance: int = 4096) -> None:
        self.interval, self.budget, self.allowance = interval, budget, allowance
        self.sent_bytes = 0
        self._last_size = 0
        self._last_time: float | None = None

    def ready(self, size: int, now: float) -> bool:
        if self._last_time is None:
            return size > 0
        if size <= self._last_size or now - self._last_time < self.interval:
            return False
        return self.sent_bytes + size <= self.budget * size + self.allowance

    def wait(self, size: int, now: float) -> float | None:
        """Seconds until a render of `size` becomes ready by time alone; None if it needs more
        text first (nothing shown yet, nothing new since the last render, or over budget)."""
        if self._last_time is None or size <= self._last_size:
            return None
        if self.sent_bytes + size > self.budget * size + self.allowance:
            return None
        return max(0.0, self.interval - (now - self._last_time))

    def record(self, size: int, sent: int, now: float) -> None:
        """A render of a text `size` long went out, costing `sent` bytes."""
        self.sent_bytes += sent
        self._last_size = size
        self._last_time = now


class ShownOnce:
    """A cell value whose display is skipped once, in the cell that has already shown it."""

    _skip_display_in: int | None = None

    def skip_display_in(self, execution_count: int) -> None:
        """Do not display again in this execution: the stream has shown it."""
        self._skip_display_in = execution_count

    def _repr_mimebundle_(self, include=None, exclude=None) -> tuple[dict[str, Any], dict[str, Any]]:
        raise NotImplementedError

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import publish_display_data

        shell = get_ipython()
        if shell is not None and self._skip_display_in == shell.execution_count:
            self._skip_display_in = None
            return
        publish_display_data(*self._repr_mimebundle_())


class Answer(ShownOnce):
    """A finished (or interrupted) answer: displays as the answer, `str()` is its text.

    It is the cell's value, so `Out[n]` and `{Out[n]}` reach it; in the cell that streamed it,
    its first display is skipped because the stream already shows it. Its text is the
    response's: the answer keeps no copy.
    """

    def __init__(self, response: Any, *, format: str = "markdown") -> None:
        self.response = response
        self.format = format
        self.parsed = _parsed_json(self.text) if format == "json" else None

    @property
    def text(self) -> str:
        return self.response.text_so_far()

    @property
    def status(self) -> str:
        return self.response.status

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"<Answer model={self.response.model.model_id!r} status={self.status!r} text={shown!r}>"

    def metadata(self) -> dict[str, Any]:
        summary = self.response.to_dict()
        return {METADATA_KEY: {
            "model": summary["model"], "response_id": summary["id"], "status": summary["status"],
            "usage": summary["usage"], "duration_ms": summary["duration_ms"],
            "datetime": summary["datetime_utc"],
        }}

    def data(self) -> dict[str, Any]:
        """The mime bundle: text/plain always, then Markdown (or JSON for `-f json`)."""
        marker = _MARKERS.get(self.status)
        plain = self.text + (f"\n[{marker}]" if marker else "")
        if self.format == "json" and self.parsed is not None:
            return {"text/plain": json.dumps(self.parsed, indent=2, default=str),
                    "application/json": self.parsed}
        if self.format == "text":
            return {"text/plain": plain}
        markdown = safe_markdown(self.text, partial=marker is not None)
        return {"text/plain": plain, "text/markdown": markdown + partial_note(self.status)}

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.data(), self.metadata()


class ThrottledView:
    """Streams answers as throttled partial renders, then the exact answer; `_send` says where.

    The text comes from the responses themselves (`text_so_far()`); the view only counts how
    much has arrived, to decide when to render. A chunk that arrives too soon after the last
    render is not lost when the model then pauses: a timer renders it once the interval has
    passed, so the display is never left a chunk behind. `_send` may therefore run on the
    timer's thread; one lock keeps the renders in order.
    """

    def __init__(self, throttle: Throttle, *, plain: bool = False) -> None:
        self.throttle = throttle
        self.plain = plain
        self._length = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._finished = False

    def add(self, chunk: str) -> None:
        """`chunk` arrived in the response this view shows."""
        with self._lock:
            self._grew(len(chunk))

    def finish(self, answer: Answer) -> None:
        self._end(answer.data(), answer.metadata())

    def _partial(self) -> dict[str, str]:
        """The partial render of the text so far."""
        raise NotImplementedError

    def _grew(self, size: int) -> None:
        """`size` more characters arrived (the caller holds the lock)."""
        self._length += size
        self._render_if_ready()

    def _render_if_ready(self) -> None:
        now = time.monotonic()
        if self.throttle.ready(self._length, now):  # judged on the raw length: rendering is not free
            data = self._partial()
            self._send(data, {})
            self.throttle.record(self._length, sum(map(len, data.values())), now)
        elif self._timer is None:
            wait = self.throttle.wait(self._length, now)
            if wait is not None:
                self._timer = threading.Timer(wait, self._trailing_render)
                self._timer.daemon = True
                self._timer.start()

    def _trailing_render(self) -> None:
        with self._lock:
            self._timer = None
            if not self._finished:
                self._render_if_ready()

    def _end(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """The exact final render; no partial render goes out after it."""
        with self._lock:
            self._finished = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._send(data, metadata)

    def _send(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        raise NotImplementedError


class LiveDisplay:
    """One display: shown on the first send, then updated in place by display id."""

    def __init__(self) -> None:
        from IPython.display import DisplayHandle

        self._handle = DisplayHandle()
        self._shown = False

    def send(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        if self._shown:
            self._handle.update(data, raw=True, metadata=metadata)
        else:
            self._handle.display(data, raw=True, metadata=metadata)
            self._shown = True


def partial_data(response: Any, *, plain: bool = False) -> dict[str, str]:
    """The render of a response while it streams."""
    text = response.text_so_far()
    if plain:
        return {"text/plain": text}
    return {"text/markdown": safe_markdown(text, partial=True)}


class ResponseView(ThrottledView):
    """A throttled view of one response; `_send` says where its renders go."""

    def __init__(self, response: Any, throttle: Throttle, *, plain: bool = False) -> None:
        super().__init__(throttle, plain=plain)
        self.response = response

    def _partial(self) -> dict[str, str]:
        return partial_data(self.response, plain=self.plain)


class KernelView(ResponseView):
    """Streams one answer into one display, updated by display id."""

    def __init__(self, response: Any, throttle: Throttle, *, plain: bool = False) -> None:
        super().__init__(response, throttle, plain=plain)
        self._display = LiveDisplay()

    def _send(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self._display.send(data, metadata)


class TerminalView:
    """Plain text written as it arrives, for terminal IPython (read from the response, so what
    is printed is what the response keeps)."""

    def __init__(self, response: Any, stream=None) -> None:
        self.response = response
        self._stream = stream or sys.stdout
        self._written = 0

    def add(self, chunk: str) -> None:
        text = self.response.text_so_far()
        if len(text) > self._written:
            self._stream.write(text[self._written:])
            self._stream.flush()
            self._written = len(text)

    def finish(self, answer: Answer) -> None:
        text = answer.text
        marker = _MARKERS.get(answer.status)
        ending = "\n" if text and not text.endswith("\n") else ""
        self._stream.write(text[self._written:] + ending + (f"[{marker}]\n" if marker else ""))
        self._stream.flush()


def stream(response: Any, chunks: Iterable[str], view: KernelView | TerminalView, *,
           format: str = "markdown") -> tuple[Answer, BaseException | None]:
    """Show `response` in `view` as its `chunks` come; then the final answer.

    An interrupt or a model error stops the stream: the partial answer is shown, marked, and
    the exception is returned for the caller to report, with the answer.
    """
    stopped: BaseException | None = None
    try:
        for chunk in chunks:
            view.add(chunk)
    except (KeyboardInterrupt, LLMNotebookError) as exc:
        stopped = exc
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # a stream left early (an interrupt inside display) is marked interrupted
    if not response.finished:  # left early without the model noticing: it ends here
        response.interrupt()
    return conclude(response, view, format=format), stopped


def conclude(response: Any, view: Any, *, format: str = "markdown") -> Answer:
    """The finished response as an answer, shown exactly in `view` with its provenance."""
    answer = Answer(response, format=format)
    view.finish(answer)
    return answer


def _parsed_json(text: str) -> Any:
    """The JSON value of an answer, also when the model wrapped it in a ``` fence; else None."""
    body = text.strip()
    fenced = _JSON_FENCE.fullmatch(body)
    try:
        return json.loads(fenced.group(1) if fenced else body)
    except ValueError:
        return None


def in_kernel(shell: Any) -> bool:
    """Whether `shell` talks to a Jupyter frontend (rich display) rather than a terminal."""
    return getattr(shell, "kernel", None) is not None


def new_view(shell: Any, response: Any, throttle: Throttle, *, plain: bool = False):
    return KernelView(response, throttle, plain=plain) if in_kernel(shell) else TerminalView(response)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table_data(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, str]:
    """A table as Markdown, with an aligned plain-text twin for terminals and saved text."""
    cells = [[str(h) for h in headers]] + [[str(v).replace("\n", " ") for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    plain = "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells)
    markdown = "\n".join(["| " + " | ".join(_cell(h) for h in headers) + " |",
                          "| " + " | ".join("---" for _ in headers) + " |"]
                         + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows])
    return {"text/plain": plain, "text/markdown": markdown}


def show_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
               metadata: dict[str, Any] | None = None) -> None:
    from IPython.display import publish_display_data

    publish_display_data(table_data(headers, rows), metadata or {})
