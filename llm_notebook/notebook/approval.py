"""Asking before each tool call: Allow, Deny, or Allow all (the rest of this chain).

An `ApprovalRequest` is one question; whoever answers first decides it (a click in a widget, a
line typed at a prompt, a stop that denies what is still open). `Approvals` is a chain's
`before_call` step: it asks, waits, and turns a denial into `CancelToolCall`, which the model
reads as a cancelled call. Where the question is shown is the asker's business:

- `ask_at_prompt`: a plain `input()` line, "Allow lookup(q='x')? [y/N/a]", for terminals and
  frontends that draw no widgets; where there is no stdin at all (a notebook run headless),
  every call is denied, and one line says why;
- the approval widget (`widgets.approval_widget`), and the chat, show the question with buttons.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from ..tool_blocks import signature
from ..tools import CancelToolCall

ALLOW, DENY, ALLOW_ALL = "allow", "deny", "allow all"
DECISIONS = (ALLOW, DENY, ALLOW_ALL)
#: What the model reads for a call the user denied.
DENIED = "the user denied this call"
#: The line a chain prints when nobody can be asked, and what the model reads then.
NO_ONE_TO_ASK = ("--approve: this frontend cannot ask (it draws no widgets and has no input box, "
                 "as when a notebook runs headless), so every tool call is denied; leave out "
                 "--approve to let the tools run unasked")
NOT_ASKED = "no one could be asked to approve this call"
_ANSWERS = {"y": ALLOW, "yes": ALLOW, "a": ALLOW_ALL, "all": ALLOW_ALL}


class ApprovalRequest:
    """One question, "Allow lookup(q='x')?"; the first answer decides it, from any thread."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.question = f"Allow {signature(call)}?"
        self.reason: str | None = None
        self._future: concurrent.futures.Future = concurrent.futures.Future()

    @property
    def decision(self) -> str | None:
        """ALLOW, DENY or ALLOW_ALL once answered; None while the question is open."""
        return self._future.result() if self._future.done() else None

    def answer(self, decision: str, reason: str | None = None) -> bool:
        """Decide; False when it was already decided (the earlier answer stands)."""
        if decision not in DECISIONS:
            raise ValueError(f"an approval is one of {', '.join(DECISIONS)}, not {decision!r}")
        try:
            self.reason = reason if decision == DENY else None
            self._future.set_result(decision)
        except concurrent.futures.InvalidStateError:
            return False
        return True

    def wait(self) -> str:
        return self._future.result()

    async def wait_async(self) -> str:
        return await asyncio.wrap_future(self._future)

    def on_answer(self, callback: Callable[[ApprovalRequest], Any]) -> None:
        """Call `callback(request)` once decided (at once if it is)."""
        self._future.add_done_callback(lambda _: callback(self))


Ask = Callable[[ApprovalRequest], Any]


class Approvals:
    """The `before_call` step of one chain that asks before each call.

    `ask(request)` shows the question somewhere and returns at once; the chain's thread (or
    task) waits for the answer. "Allow all" lets the rest of this chain's calls run unasked.
    `deny_open()` (a stop) denies every question still open.
    """

    def __init__(self, ask: Ask) -> None:
        self._ask = ask
        self.allow_all = False
        self._open: list[ApprovalRequest] = []
        self._lock = threading.Lock()
        self._stopped = False

    def _request(self, call: Any) -> ApprovalRequest | None:
        """A new open question about `call`, or None when it needs none (Allow all)."""
        if self.allow_all:
            return None
        request = ApprovalRequest(call)
        with self._lock:
            if self._stopped:
                request.answer(DENY, "the chain was stopped")
            self._open.append(request)
        if request.decision is None:
            self._ask(request)
        return request

    def _decided(self, request: ApprovalRequest, decision: str) -> None:
        with self._lock:
            if request in self._open:
                self._open.remove(request)
        if decision == ALLOW_ALL:
            self.allow_all = True
        elif decision == DENY:
            raise CancelToolCall(request.reason or DENIED)

    def decide(self, call: Any) -> None:
        """Ask about `call` and wait; a denial raises CancelToolCall."""
        request = self._request(call)
        if request is not None:
            self._decided(request, request.wait())

    async def decide_async(self, call: Any) -> None:
        request = self._request(call)
        if request is not None:
            self._decided(request, await request.wait_async())

    def deny_open(self, reason: str = "the chain was stopped") -> None:
        """Deny every open question, and any asked from now on (the chain is stopping)."""
        with self._lock:
            self._stopped = True
            still_open = list(self._open)
        for request in still_open:
            request.answer(DENY, reason)


def read_answer(typed: str) -> str:
    """A typed answer: y / yes allows, a / all allows the rest, anything else denies."""
    return _ANSWERS.get(typed.strip().lower(), DENY)


class PromptAsker:
    """Asks at a plain `input()` prompt, on the thread that calls `answer_at_prompt` (the main
    thread of a kernel: only it may read stdin). Where there is no stdin, denies, saying so once."""

    def __init__(self, write: Callable[[str], Any] = print) -> None:
        self._write = write
        self.refused = False

    def answer_at_prompt(self, request: ApprovalRequest) -> None:
        if request.decision is not None:  # answered elsewhere (a click) meanwhile
            return
        if self.refused:
            request.answer(DENY, NOT_ASKED)
            return
        try:
            typed = input(f"{request.question} [y/N/a] ")
        except (EOFError, _stdin_missing()):
            self.refused = True
            self._write(NO_ONE_TO_ASK)
            request.answer(DENY, NOT_ASKED)
            return
        request.answer(read_answer(typed))


def _stdin_missing() -> type[BaseException]:
    """The error IPython raises when the frontend takes no input."""
    try:
        from IPython.core.error import StdinNotImplementedError
    except ImportError:  # plain Python: EOFError is all there is
        return EOFError
    return StdinNotImplementedError
