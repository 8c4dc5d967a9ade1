"""A chain (a prompt with tools) running on the package's runner, shown as it goes.

The chain runs off the kernel's main thread: a sync model's chain in a thread of its own, an
async model's on the runner loop. Its views update by display id in messages of the cell that
started it (`background.CellDisplay`), so they land in that cell from any thread. The main
thread is left free for what only it can do:

- in the foreground it waits for the end and answers approval questions at an `input()` prompt
  (only the main thread may read stdin); an interrupt stops the chain, keeping what was done;
- in the background (the approval widget, `--background`) the cell returns at once, and the
  kernel, idle, reads the widget's clicks: a kernel handles comm messages only between cells.

Stopping is cooperative: the running response is interrupted (keeping its text), open
approval questions are denied, and no further round starts. A tool already running finishes
on its own; its result is not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import runner
from ..answers import ChainAnswer, ShownOnce
from ..chains import AsyncChainResponse
from ..errors import LLMNotebookError
from ..tools import CancelToolCall
from .approval import Approvals, PromptAsker

_END = object()


class ChainHooks:
    """A chain's `before_call` / `after_call`: each call's block follows it, and with
    `approvals` the user is asked first (a denial is a cancelled call, shown as denied)."""

    def __init__(self, calls: Any, approvals: Approvals | None = None) -> None:
        self.calls = calls
        self.approvals = approvals

    def before_call(self, tool: Any, call: Any) -> None:
        if self.approvals is not None:
            self.calls.waiting(call)
            try:
                self.approvals.decide(call)
            except CancelToolCall:
                self.calls.denied(call)
                raise
        self.calls.running(call)

    async def before_call_async(self, tool: Any, call: Any) -> None:
        if self.approvals is not None:
            self.calls.waiting(call)
            try:
                await self.approvals.decide_async(call)
            except CancelToolCall:
                self.calls.denied(call)
                raise
        self.calls.running(call)

    def after_call(self, tool: Any, call: Any, result: Any) -> None:
        self.calls.finished(call, result)

    def hooks_for(self, model: Any) -> dict[str, Any]:
        """The hook arguments of `model.chain()` (async hooks for an async model)."""
        from ..models import AsyncModel

        before = self.before_call_async if isinstance(model, AsyncModel) else self.before_call
        return {"before_call": before, "after_call": self.after_call}


async def _in_own_thread(work: Callable[[], Any]) -> Any:
    """`work()` in a new thread (with this task's context), awaited on the running loop."""
    loop = asyncio.get_running_loop()
    finished: asyncio.Future = loop.create_future()

    def settle(error: BaseException | None, value: Any) -> None:
        if not finished.done():
            finished.set_exception(error) if error is not None else finished.set_result(value)

    def run() -> None:
        try:
            value = work()
        except BaseException as exc:  # handed to the awaiting task, never lost in the thread
            loop.call_soon_threadsafe(settle, exc, None)
        else:
            loop.call_soon_threadsafe(settle, None, value)

    threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True,
                     name="llm_notebook-chain").start()
    return await finished


class ChainRun(ShownOnce):
    """One chain on the runner: `.done()`, `.stop()`, `.result()` (the `ChainAnswer`), `await`.

    `view` gets each chunk (`add`), each block change (`changed`, wired by the caller) and the
    end (`finish`). `questions` is where approval questions wait for the main thread (see
    `answer_questions`); `on_round(response)` runs before each round streams, `on_stop` when the
    chain is stopped, `on_end(answer, error)` on the runner once it has ended. `displays` are
    sent again when the result is collected, for clients that stopped listening to the cell.
    """

    def __init__(self, chain: Any, answer: ChainAnswer, view: Any, *,
                 questions: queue.SimpleQueue | None = None,
                 on_round: Callable[[Any], Any] | None = None,
                 on_stop: Callable[[], Any] | None = None,
                 on_end: Callable[[ChainAnswer, BaseException | None], Any] | None = None) -> None:
        self.chain = chain
        self.answer = answer
        self.view = view
        self.error: BaseException | None = None
        self.displays: list[Any] = []
        self._questions = questions
        self._on_round = on_round
        self._on_stop = on_stop
        self._on_end = on_end
        self._stopping = threading.Event()
        self._current: Any = None
        #: Its result was asked for: `%llm wait` need not report it.
        self.collected = False
        self.handle = runner.submit(self._run())

    @property
    def model_id(self) -> str:
        return self.chain.conversation.model_id

    @property
    def status(self) -> str:
        return self.answer.status

    # -- on the runner ------------------------------------------------------------------------
    async def _run(self) -> ChainAnswer:
        try:
            if isinstance(self.chain, AsyncChainResponse):
                await self._drive_async()
            else:
                # shielded: a cancel stops the chain and ends it now, while the thread winds
                # down by itself (a tool that is running finishes; its result is not sent)
                await asyncio.shield(_in_own_thread(self._drive_sync))
        except asyncio.CancelledError:
            self.stop()
        except LLMNotebookError as exc:  # a round's model failed; its response recorded it
            self.error = exc
        finally:
            self._end()
        return self.answer

    def _drive_sync(self) -> None:
        responses = self.chain.responses()
        try:
            for response in responses:
                self._current = response
                if self._stopping.is_set():
                    response.interrupt()
                    return
                self._starting(response)
                for chunk in response:
                    self.view.add(chunk)
                self.answer.calls.asked(response.tool_calls_so_far())
        finally:
            responses.close()

    async def _drive_async(self) -> None:
        async with contextlib.aclosing(self.chain.responses()) as responses:
            async for response in responses:
                self._current = response
                self._starting(response)
                async for chunk in response:
                    self.view.add(chunk)
                self.answer.calls.asked(response.tool_calls_so_far())

    def _starting(self, response: Any) -> None:
        progressed = getattr(self.view, "progressed", None)
        if progressed is not None:  # reasoning and calls show as they stream, not only text
            response.on_progress(progressed)
        if self._on_round is not None:
            self._on_round(response)

    def _end(self) -> None:
        current = self._current
        if current is not None and not current.finished:
            current.interrupt()
        answer = self.answer.settle(interrupted=self._stopping.is_set())
        if answer.said_anything or answer.status == "done":
            self.view.finish(answer)
        if self._on_end is not None:
            self._on_end(answer, self.error)
        if self._questions is not None:
            self._questions.put(_END)

    # -- from any thread -------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the chain where it is; what was done (blocks, text) stays."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._on_stop is not None:
            self._on_stop()
        current = self._current
        if current is not None and not current.finished:
            current.interrupt()
        if isinstance(self.chain, AsyncChainResponse):
            self.handle.cancel()

    def done(self) -> bool:
        return self.handle.done()

    def cancel(self) -> bool:
        """Stop the chain (as `stop`); False if it had already ended."""
        if self.done():
            return False
        self.stop()
        return True

    # -- on the main thread ------------------------------------------------------------------------
    def answer_questions(self, asker: PromptAsker, timeout: float | None = None) -> ChainAnswer:
        """Wait for the end, answering each open approval question at `asker`'s prompt as it
        comes (only the main thread can read stdin, and while it waits no widget click is
        heard). An interrupt stops the chain (waiting a moment for it to wind down), then goes
        on up; after `timeout` seconds, TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while self._questions is not None and not self.done():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"the chain was still running after {timeout} seconds")
                try:
                    item = self._questions.get(timeout=left)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                asker.answer_at_prompt(item)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            return self.handle.result(left)
        except KeyboardInterrupt:
            self.stop()
            self.handle.stop()
            raise

    def result(self, timeout: float | None = None) -> ChainAnswer:
        """Wait for the answer (asking any open approval question at a prompt, see
        `answer_questions`), then show the final displays again from the running cell."""
        answer = self.answer_questions(PromptAsker(), timeout)
        self.refresh()
        return answer

    def refresh(self) -> None:
        """Once ended, send the final displays again from the cell running now (for clients
        that stopped listening to the starting cell, see `background.CellDisplay`)."""
        if self.done():
            self.collected = True
            for display in self.displays:
                display.refresh()

    def __await__(self):
        return self.handle.__await__()

    def __str__(self) -> str:
        return self.answer.text

    def __repr__(self) -> str:
        state = self.answer.status if self.done() else "running"
        return (f"<ChainRun model={self.chain.conversation.model_id!r} {state}, "
                f"{len(self.answer.calls.blocks())} tool calls>")

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self.done():
            return self.answer._repr_mimebundle_()
        return {"text/plain": repr(self)}, {}
