"""Showing answers: one display per answer, updated as the text streams, then a usage table.

In a kernel the answer streams into a single display by display id. Updates are throttled by
time and by a byte budget, so the bytes sent to the frontend stay a small multiple of the answer's
size (re-sending the whole text on every chunk would cost its square). The first text goes out
at once, partial Markdown has its open code fence closed and ends in a live "streaming" marker,
and the last update is the exact answer (reasoning in a collapsed section above it) with its
provenance in the metadata. A terminal IPython gets the plain text as it comes. An answer that
ended before it said anything is not shown at all: its error or interrupt line is the cell's.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..answers import Answer, ending_marker, partial_markdown, partial_plain, reasoning_text
from ..errors import LLMNotebookError


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
            if self._live():
                self._grew(len(chunk))

    def progressed(self, _response: Any = None) -> None:
        """Something other than text grew (reasoning, a tool call): render it as text would be.

        Measuring what is shown costs its length, so it is measured only when no render is
        already waiting on the timer (which measures again when it fires)."""
        with self._lock:
            if self._finished or self._timer is not None or not self._live():
                return
            self._length = max(self._length, self._size())
            self._render_if_ready()

    def finish(self, answer: Answer) -> None:
        self._end(answer.data(), answer.metadata())

    def _partial(self) -> dict[str, str]:
        """The partial render of the text so far."""
        raise NotImplementedError

    def _size(self) -> int:
        """How much the partial render shows (text and reasoning), for the throttle."""
        return self._length

    def _live(self) -> bool:
        """Whether partial renders go out: an answer replayed from the answer cache arrives
        whole, so it is shown once, finished, with no streaming in between."""
        return True

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
                self._length = max(self._length, self._size())
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
    """The render of a response while it streams, ending in the live marker."""
    if plain:
        return {"text/plain": partial_plain(response)}
    return {"text/markdown": partial_markdown(response)}


def shown_size(response: Any) -> int:
    """The characters a partial render of `response` shows: its text and its reasoning."""
    return len(response.text_so_far()) + len(reasoning_text(response))


class ResponseView(ThrottledView):
    """A throttled view of one response, rendered as its text and its reasoning grow; `_send`
    says where its renders go."""

    def __init__(self, response: Any, throttle: Throttle, *, plain: bool = False) -> None:
        super().__init__(throttle, plain=plain)
        self.response = response
        response.on_progress(self.progressed)

    def _partial(self) -> dict[str, str]:
        return partial_data(self.response, plain=self.plain)

    def _size(self) -> int:
        return shown_size(self.response)

    def _live(self) -> bool:
        return self.response.replayed is None


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
        marker = ending_marker(answer.status)
        ending = "\n" if text and not text.endswith("\n") else ""
        self._stream.write(text[self._written:] + ending + (f"[{marker}]\n" if marker else ""))
        self._stream.flush()


class ChainView(ThrottledView):
    """Streams a chain into one display: each round's text, then the blocks of its calls.

    Text is throttled as for one answer; a block that changes (asked, waiting, running, done)
    is shown at once, so each call is seen while it runs. `send(data, metadata)` says where the
    renders go; it may be called from any thread.
    """

    def __init__(self, answer: Any, throttle: Throttle, send: Callable[[dict, dict], Any], *,
                 plain: bool = False) -> None:
        super().__init__(throttle, plain=plain)
        self.answer = answer
        self._target = send

    def _partial(self) -> dict[str, str]:
        if self.plain:
            return {"text/plain": self.answer.partial_plain()}
        return {"text/markdown": self.answer.partial_markdown()}

    def _size(self) -> int:
        return sum(shown_size(response) for response in self.answer.chain.responses_so_far())

    def _live(self) -> bool:
        response = self.answer.response
        return response is None or response.replayed is None

    def changed(self) -> None:
        """A call's block changed: render now, whatever the throttle says."""
        with self._lock:
            if self._finished:
                return
            data = self._partial()
            self._send(data, {})
            self.throttle.record(self._length, sum(map(len, data.values())), time.monotonic())

    def _send(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self._target(data, metadata)


class TerminalChainView:
    """A chain in a terminal: the text as it arrives, and a line for each call once it ends."""

    def __init__(self, answer: Any, stream=None) -> None:
        self.answer = answer
        self._stream = stream or sys.stdout
        self._written: dict[str, int] = {}
        self._told: set[str] = set()
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()

    def add(self, chunk: str) -> None:
        response = self.answer.response
        with self._lock:
            text = response.text_so_far()
            done = self._written.get(response.id, 0)
            if len(text) > done:
                self._write(text[done:])
                self._written[response.id] = len(text)

    def changed(self) -> None:
        from ..tool_blocks import block_plain

        with self._lock:
            for block in self.answer.calls.blocks():
                if block.state in ("asked", "waiting", "running"):
                    continue
                if block.call.tool_call_id not in self._told:
                    self._told.add(block.call.tool_call_id)
                    self._write("\n" + block_plain(block) + "\n")

    def finish(self, answer: Any) -> None:
        self.changed()
        marker = ending_marker(answer.status)
        with self._lock:
            self._write("\n" + (f"[{marker}]\n" if marker else ""))


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
    """The finished response as an answer, shown exactly in `view` with its provenance.

    An answer that stopped before saying anything is not shown: the error or the interrupt
    note is all there is to see.
    """
    answer = Answer(response, format=format)
    if answer.said_anything or response.status == "done":
        view.finish(answer)
    return answer


def failure_line(error: BaseException, cell: int | None = None) -> str:
    """The one line shown for an answer that ended in `error`. A cache miss says which cell
    asked and how to let it ask the model."""
    from ..cache import CacheMiss

    if isinstance(error, CacheMiss):
        where = f"cell [{cell}]" if cell is not None else "this answer"
        return (f"{where} has no stored answer and the cache mode is \"only\", which never asks "
                "a model: run %config LLMMagics.cache = \"replay\" to ask it, or run the cell "
                "again with --refresh")
    return str(error)


def in_kernel(shell: Any) -> bool:
    """Whether `shell` talks to a Jupyter frontend (rich display) rather than a terminal."""
    return getattr(shell, "kernel", None) is not None


def new_view(shell: Any, response: Any, throttle: Throttle, *, plain: bool = False):
    return KernelView(response, throttle, plain=plain) if in_kernel(shell) else TerminalView(response)


def show_table_data(data: dict[str, str], metadata: dict[str, Any] | None = None) -> None:
    from IPython.display import publish_display_data

    publish_display_data(data, metadata or {})
