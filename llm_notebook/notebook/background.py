"""Answers that stream while later cells run: `llm_notebook.in_background()` and `--background`.

In a notebook the answer's displays are created on the main thread, in the starting cell. The
runner thread then updates them by display id, in messages whose parent header is the starting
cell's request, so they belong to that cell and never to the cell running at the time
(ipykernel 6 keeps one process-wide parent header, ipykernel 7 one per context, which the
runner thread does not share). Without a kernel (a script, a terminal) nothing is displayed:
the handle is all there is.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from .. import runner
from ..answers import Answer, ShownOnce
from ..errors import LLMNotebookError
from ..markdown import escape_inline
from ..usage import answer_table
from . import render

#: What runs in the background of its cell: answers, and chains (`chain_run.ChainRun`). Each has
#: `.handle`, `.collected`, `.refresh()`, `.model_id` and `.status`.
_started: list[Any] = []
_started_lock = threading.Lock()


def track(job: Any) -> None:
    """Have `%llm wait` (`wait_for_background`) wait for `job` too."""
    with _started_lock:
        _started.append(job)


class CellDisplay:
    """A display shown now, in the running cell, that any thread can update as that cell's."""

    def __init__(self, shell: Any, data: dict[str, Any]) -> None:
        from IPython.display import DisplayHandle

        self._publisher = shell.display_pub
        self._parent = dict(self._publisher.parent_header)
        self._handle = DisplayHandle()
        self._handle.display(data, raw=True)
        self._latest: tuple[dict[str, Any], dict[str, Any]] = (data, {})

    def update(self, data: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        """Replace what the display shows, in a message of the cell that created it."""
        self._latest = (data, metadata or {})
        publisher = self._publisher
        content = {"data": data, "metadata": metadata or {},
                   "transient": {"display_id": self._handle.display_id}}
        publisher.session.send(publisher.pub_socket, "update_display_data", content,
                               parent=self._parent, ident=publisher.topic)

    def refresh(self) -> None:
        """Send the latest content again from the cell running now (on the main thread).

        For clients that, like nbclient, stop listening to a cell once it has finished: they
        still apply an update by display id that arrives with a later cell.
        """
        data, metadata = self._latest
        self._handle.update(data, raw=True, metadata=metadata)


class CellView(render.ResponseView):
    """Throttled partial renders of one answer into a `CellDisplay`."""

    def __init__(self, response: Any, throttle: render.Throttle, display: CellDisplay, *,
                 plain: bool = False) -> None:
        super().__init__(response, throttle, plain=plain)
        self.display = display

    def _send(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.display.update(data, metadata)


Finish = Callable[[Answer], Any]
_EMPTY = {"text/plain": ""}


def _text_data(text: str) -> dict[str, str]:
    """A one-line note (which may hold a model id or a server's words), shown as it is."""
    return {"text/plain": text, "text/markdown": escape_inline(text)}


def _note(answer: Answer, error: BaseException | None, cell: int | None = None) -> str:
    """The line under an answer that did not finish ("" for one that did)."""
    if error is not None:
        return f"{type(error).__name__}: {render.failure_line(error, cell)}"
    if answer.status == "interrupted":
        return ("Cancelled: the partial answer above is kept" if answer.said_anything else
                "Cancelled before the model sent any text")
    return ""


class BackgroundAnswer(ShownOnce):
    """An answer streaming in the background: `.done()`, `.cancel()`, `.result()`, `await`.

    The result is the `Answer`, as a foreground cell's value would be; a cancelled or failed one
    keeps its partial text, and its `.status` says what happened. In a notebook the answer
    streams into the cell that started it, with its usage table (`show_usage`) under it.
    `on_finish(answer)` runs on the runner thread once the stream has ended.
    """

    def __init__(self, response: Any, *, shell: Any = None, format: str = "markdown",
                 show_usage: bool = True, throttle: render.Throttle | None = None,
                 on_finish: Finish | None = None) -> None:
        self.response = response
        self._format = format
        self._on_finish = on_finish
        self._view: CellView | None = None
        self._status: CellDisplay | None = None
        self._cell: int | None = None
        if shell is not None and render.in_kernel(shell):
            self._show_in(shell, show_usage, throttle or render.Throttle())
        self.collected = False  # its result was asked for: waiting for all need not report it
        self.handle = runner.submit(self._stream())
        track(self)

    @property
    def model_id(self) -> str:
        return self.response.model.model_id

    @property
    def status(self) -> str:
        return self.response.status

    def _show_in(self, shell: Any, show_usage: bool, throttle: render.Throttle) -> None:
        out = self._cell = getattr(shell.displayhook, "prompt_count", shell.execution_count)
        waiting = _text_data(f"{self.response.model.model_id} is answering in the background: "
                             f"Out[{out}] is its handle; %llm wait waits for it")
        # the note waits in the status display when a usage table will replace it, else in the
        # answer's own display (the first text replaces it): no output is left showing it
        answer_display = CellDisplay(shell, _EMPTY if show_usage else waiting)
        self._status = CellDisplay(shell, waiting) if show_usage else None
        self._view = CellView(self.response, throttle, answer_display,
                              plain=self._format == "text")

    async def _stream(self) -> Answer:
        error = None
        try:
            await runner.consume(self.response, self._view.add if self._view else None)
        except asyncio.CancelledError:
            pass  # the response kept its partial text and is marked interrupted
        except LLMNotebookError as exc:
            error = exc
        if not self.response.finished:
            self.response.interrupt()
        answer = Answer(self.response, format=self._format)
        if self._view is not None:
            self._show_end(answer, _note(answer, error, self._cell))
        if self._on_finish is not None:
            self._on_finish(answer)
        return answer

    def _show_end(self, answer: Answer, note: str) -> None:
        """The final answer, then one line if it did not finish, then the usage table; an
        answer that said nothing is only its line."""
        if not answer.said_anything and answer.status != "done":
            self._view.display.update(_text_data(note))
            if self._status is not None:
                self._status.update(_EMPTY)
            return
        render.conclude(self.response, self._view, format=self._format)
        note_data = _text_data(note) if note else {}
        if self._status is not None:
            table = answer_table(self.response.to_dict(), answer.cost())
            self._status.update(_stacked(note_data, table) if note_data else table)
        elif note_data:
            data, metadata = answer._repr_mimebundle_()
            self._view.display.update(_stacked(data, note_data), metadata)

    def done(self) -> bool:
        return self.handle.done()

    def cancel(self) -> bool:
        """Stop the answer where it is; False if it had already finished. The partial text stays."""
        return self.handle.cancel()

    def result(self, timeout: float | None = None) -> Answer:
        """Wait for the answer; an interrupt while waiting cancels it (keeping the partial text)."""
        answer = self.handle.result(timeout)
        self.refresh()
        return answer

    def __await__(self):
        return self._wait().__await__()

    async def _wait(self) -> Answer:
        answer = await self.handle
        self.refresh()
        return answer

    def refresh(self) -> None:
        """Show the finished answer again from the cell running now (see CellDisplay.refresh)."""
        if self.done():
            self.collected = True
            if self._view is not None:
                self._view.display.refresh()
            if self._status is not None:
                self._status.refresh()

    def __str__(self) -> str:
        return self.response.text_so_far()

    def __repr__(self) -> str:
        state = self.response.status if self.done() else "running"
        return (f"<BackgroundAnswer model={self.response.model.model_id!r} {state}, "
                f"{len(str(self))} characters>")

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self.done() and not self.handle.cancelled():
            return self.handle.result()._repr_mimebundle_()
        return {"text/plain": repr(self)}, {}


_SEPARATORS = {"text/plain": "\n", "text/markdown": "\n\n"}


def _stacked(top: dict[str, Any], bottom: dict[str, Any]) -> dict[str, Any]:
    """`top` with the text of `bottom` under it, in each text type that `top` has."""
    return {**top, **{mime: separator.join(part for part in (top[mime], bottom.get(mime, "")) if part)
                      for mime, separator in _SEPARATORS.items() if mime in top}}


def in_background(prompt: str | None = None, model: Any = None, *, system: str | None = None,
                  attachments: Any = None, format: str = "markdown", show_usage: bool = True,
                  **options: Any) -> BackgroundAnswer:
    """Start an answer and return at once with its handle.

    In a notebook cell the answer (then its usage table) streams into that cell while later
    cells run, and stays there in the saved notebook. `model` is an id, alias or model (default:
    the default model); `options` are the model's options.
    """
    from IPython import get_ipython

    from ..model_choice import pick_model

    response = pick_model(model).prompt(prompt, system=system, attachments=attachments, **options)
    return BackgroundAnswer(response, shell=get_ipython(), format=format, show_usage=show_usage)


def pending() -> list[Any]:
    """The background answers (and chains) started and not yet waited for (or collected)."""
    with _started_lock:
        return [job for job in _started if not job.collected]


def wait_for_background(timeout: float | None = None) -> list[Any]:
    """Wait for every background answer (and chain with tools) not yet waited for; returns them,
    in the order started.

    An interrupt while waiting cancels them (each keeps its partial answer; a chain stops where
    it is). In a notebook their final displays are sent again from the running cell, for clients
    that stopped listening.
    """
    with _started_lock:
        jobs = [job for job in _started if not job.collected]
        _started.clear()
    try:
        runner.wait([job.handle for job in jobs], timeout)
    finally:
        for job in jobs:
            job.refresh()
    return jobs


def waited_line(jobs: list[Any], seconds: float) -> str:
    """One line on a wait: how long, and how each answer ended."""
    if not jobs:
        return "No background answers to wait for"
    states = ", ".join(f"{job.model_id} {job.status}" for job in jobs)
    return (f"Waited {seconds:.2f} s for {len(jobs)} background "
            f"answer{'s' if len(jobs) != 1 else ''}: {states}")

