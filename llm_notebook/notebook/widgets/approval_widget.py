"""The approval widget: Allow / Deny / Allow all for each tool call of a `--approve` chain.

It is an asker for `approval.Approvals`: `ask(request)` adds the question and returns; a click
answers it. Clicks reach the kernel as comm messages, which a kernel reads only while no cell is
running, so the chain it serves runs in the background of its cell (see `chain_run`). Saved, it
shows each call and what was decided (and "not answered" for a question left open).
"""

from __future__ import annotations

import threading
from typing import Any

import traitlets

from ...markdown import escape_inline
from ..approval import DECISIONS, ApprovalRequest
from .saved import SavedWidget, module_source, style_source

_DECIDED = {"allow": "allowed", "deny": "denied", "allow all": "allowed, and the rest too"}


def approval_item(number: int, request: ApprovalRequest, *, closed: bool = False) -> dict[str, Any]:
    """A question as the front-end draws it (see approvals.js)."""
    return {"id": str(number), "question": request.question, "decision": request.decision,
            "closed": closed and request.decision is None}


def approval_lines(items: list[dict[str, Any]]) -> list[str]:
    """Each question and its answer, as plain lines."""
    return [f"{item['question']} "
            f"{_DECIDED.get(item['decision'], 'not answered' if item['closed'] else 'waiting')}"
            for item in items]


class ApprovalQuestions:
    """Questions shown in some widget's `trait` (a list of items), answered by `decide` events.

    Shared by the approval widget and the chat, which show the same items.
    """

    def __init__(self, widget: Any, trait: str) -> None:
        self._widget = widget
        self._trait = trait
        self._requests: list[ApprovalRequest] = []
        self._closed = False
        self._lock = threading.Lock()

    def ask(self, request: ApprovalRequest) -> None:
        with self._lock:
            self._requests.append(request)
        request.on_answer(lambda _: self._redraw())
        self._redraw()

    def on_decide(self, content: dict[str, Any]) -> None:
        """A click: {"event": "decide", "id", "decision"}."""
        decision, number = content.get("decision"), content.get("id")
        if decision not in DECISIONS or not isinstance(number, str) or not number.isdigit():
            return
        with self._lock:
            request = (self._requests[int(number)] if int(number) < len(self._requests)
                       else None)
        if request is not None:
            request.answer(decision)

    def close_open(self) -> None:
        """The chain has ended: a question still open stays unanswered."""
        with self._lock:
            self._closed = True
        self._redraw()

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return [approval_item(n, r, closed=self._closed) for n, r in enumerate(self._requests)]

    def _redraw(self) -> None:
        setattr(self._widget, self._trait, self.items())


class ApprovalView(SavedWidget):
    """The questions of one chain, with buttons while they are open."""

    _esm = module_source("approval.js")
    _css = style_source("approval.css")
    kind = "tool approvals"

    #: {"id", "question", "decision" (None while open), "closed"} per question.
    requests = traitlets.List(traitlets.Dict()).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.questions = ApprovalQuestions(self, "requests")
        self.on_msg(self._on_front_end_message)
        self.observe(self._refresh_copy, names="requests")
        self._refresh_copy()

    def ask(self, request: ApprovalRequest) -> None:
        """Show `request` with its buttons (from any thread); a click answers it."""
        self.questions.ask(request)

    def close_open(self) -> None:
        self.questions.close_open()

    def _on_front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "decide":
            self.questions.on_decide(content)

    def _refresh_copy(self, _change: Any = None) -> None:
        lines = approval_lines(self.requests) or ["No tool call has asked yet"]
        self.show_text_copy("**Tool approvals**\n\n" + "\n".join(
            f"- {escape_inline(line)}" for line in lines), "Tool approvals\n" + "\n".join(lines))
