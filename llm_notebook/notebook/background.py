"""`%%llm --background`: an answer that streams into its own cell while later cells run.

Its displays are created on the main thread, in the starting cell. The runner thread then
updates them by display id, in messages whose parent header is the starting cell's request, so
they belong to that cell and never to the cell running at the time (ipykernel 6 keeps one
process-wide parent header, ipykernel 7 one per context, which the runner thread does not share).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .. import runner
from ..errors import LLMNotebookError
from ..markdown import safe_markdown
from . import render


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


Finish = Callable[[render.Answer], "dict[str, str] | None"]


class BackgroundAnswer(render.ShownOnce):
    """The value of a `%%llm --background` cell: `.done()`, `.cancel()`, `.result()`, `await`.

    The result is the `Answer`, as a foreground cell's value would be; a cancelled or failed one
    keeps its partial text, and its `.status` says what happened. `finish(answer)` runs on the
    runner thread once the stream ends and returns the usage table to show in `status` (None:
    no table). Without a status display, a note on an error or a cancel goes under the answer.
    """

    def __init__(self, response: Any, view: CellView, status: CellDisplay | None, *,
                 format: str, finish: Finish) -> None:
        self.response = response
        self._view = view
        self._status = status
        self._format = format
        self._finish = finish
        self.collected = False  # its result was asked for: `%llm wait` need not report it
        self.handle = runner.submit(self._stream())

    async def _stream(self) -> render.Answer:
        error = None
        try:
            await runner.consume(self.response, self._view.add)
        except asyncio.CancelledError:
            pass  # the response kept its partial text and is marked interrupted
        except LLMNotebookError as exc:
            error = exc
        if not self.response.finished:
            self.response.interrupt()
        answer = render.conclude(self.response, self._view, format=self._format)
        notes = ([f"{type(error).__name__}: {error}"] if error is not None else
                 ["Cancelled: the partial answer above is kept"] if answer.status == "interrupted"
                 else [])
        table = self._finish(answer)
        if self._status is not None:
            self._status.update(_stacked(_notes_data(notes), table or {}))
        elif notes:
            data, metadata = answer._repr_mimebundle_()
            self._view.display.update(_stacked(data, _notes_data(notes)), metadata)
        return answer

    def done(self) -> bool:
        return self.handle.done()

    def cancel(self) -> bool:
        """Stop the answer where it is; False if it had already finished. The partial text stays."""
        return self.handle.cancel()

    def result(self, timeout: float | None = None) -> render.Answer:
        """Wait for the answer; an interrupt while waiting cancels it (keeping the partial text)."""
        answer = self.handle.result(timeout)
        self.refresh()
        return answer

    def __await__(self):
        return self._wait().__await__()

    async def _wait(self) -> render.Answer:
        answer = await self.handle
        self.refresh()
        return answer

    def refresh(self) -> None:
        """Show the finished answer again from the cell running now (see CellDisplay.refresh)."""
        if self.done():
            self.collected = True
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


def _notes_data(notes: list[str]) -> dict[str, str]:
    return {"text/plain": "\n".join(notes), "text/markdown": "\n\n".join(map(safe_markdown, notes))}


def _stacked(top: dict[str, Any], bottom: dict[str, Any]) -> dict[str, Any]:
    """`top` with the text of `bottom` under it, in each text type that `top` has."""
    return {**top, **{mime: separator.join(part for part in (top[mime], bottom.get(mime, "")) if part)
                      for mime, separator in _SEPARATORS.items() if mime in top}}
