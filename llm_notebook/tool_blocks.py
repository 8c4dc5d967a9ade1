"""The tool calls of a chain as they happen, and how they read: compact collapsible blocks.

A `CallLog` hears of each call from the chain's hooks (asked, waiting for approval, running,
finished, denied) and tells its views. A block is HTML the package makes around escaped text:
one HTML block with no blank line in it (line breaks inside are entities), so no Markdown parser
reads what a tool or a model sent, and every character of it shows as text. Arguments and
results are capped, saying how much was left out.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Characters of a result (and of the arguments) a block shows; the rest is counted, not shown.
SHOWN_CHARACTERS = 2000
#: Characters of the one-line call in a block's summary (and in an approval question).
SIGNATURE_CHARACTERS = 120

#: What a block says of its call, by state.
STATES = {
    "asked": "asked for",
    "waiting": "waiting for approval",
    "running": "running…",
    "done": "done",
    "error": "failed",
    "denied": "denied",
    "not run": "not run",
    "interrupted": "interrupted",
}


def capped(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """`text`, or its first `limit` characters and how many there were in all."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters in all)"


def signature(call: Any, limit: int = SIGNATURE_CHARACTERS) -> str:
    """A call as Python reads it: `lookup(q='x', n=2)`, shortened to `limit` characters."""
    arguments = call.arguments if isinstance(call.arguments, dict) else {}
    written = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
    text = f"{call.name}({written})"
    return text if len(text) <= limit else text[:limit - 2] + "…)"


@dataclass
class ToolBlock:
    """One call: what was asked, where it is, and (once run, refused or denied) its result."""

    call: Any
    state: str = "asked"
    result: Any = None

    @property
    def output(self) -> str:
        return self.result.output if self.result is not None else ""

    @property
    def duration_ms(self) -> int | None:
        return self.result.duration_ms if self.result is not None else None

    def status_words(self) -> str:
        """Where the call is, and how long it took once it ran: "done in 12 ms"."""
        time = f" in {self.duration_ms:,} ms" if self.duration_ms is not None else ""
        return STATES.get(self.state, self.state) + time

    def summary(self) -> str:
        """One line: the call, its state and its time."""
        return f"{signature(self.call)}: {self.status_words()}"

    def to_dict(self) -> dict[str, Any]:
        """The call for an output's metadata (the result capped, as shown)."""
        return {"name": self.call.name, "arguments": self.call.arguments,
                "tool_call_id": self.call.tool_call_id, "state": self.state,
                "output": capped(self.output) if self.result is not None else None,
                "duration_ms": self.duration_ms}


def _pre(text: str) -> str:
    """Escaped text kept on one source line: a line break is an entity, not a blank line."""
    return "<pre>" + html.escape(text).replace("\n", "&#10;") + "</pre>"


def block_html(block: ToolBlock) -> str:
    """A block as package-made HTML: the summary line, then arguments and result when opened."""
    arguments = json.dumps(block.call.arguments, indent=2, ensure_ascii=False, default=repr)
    inside = [f"<summary>Tool call <code>{html.escape(signature(block.call))}</code> · "
              f"{html.escape(block.status_words())}</summary>",
              "<b>Arguments</b>" + _pre(capped(arguments))]
    if block.result is not None:
        inside.append("<b>Result</b>" + _pre(capped(block.output) or "(empty)"))
    return "<details>" + "".join(inside) + "</details>"


def block_plain(block: ToolBlock) -> str:
    line = f"[tool] {block.summary()}"
    if block.result is not None:
        shown = capped(block.output, 200).replace("\n", " ")
        line += f"\n       -> {shown}"
    return line


class CallLog:
    """The calls of one chain in the order they were asked for; thread-safe.

    `on_change()` is called (outside the lock) whenever a block changes.
    """

    def __init__(self, on_change: Callable[[], Any] | None = None) -> None:
        self._blocks: dict[str, ToolBlock] = {}
        self._lock = threading.Lock()
        self.on_change = on_change

    def _set(self, call: Any, state: str, result: Any = None) -> None:
        with self._lock:
            block = self._blocks.get(call.tool_call_id)
            if block is None:
                block = self._blocks[call.tool_call_id] = ToolBlock(call)
            block.state = state
            if result is not None:
                block.result = result
        if self.on_change is not None:
            self.on_change()

    def asked(self, calls: list[Any]) -> None:
        """A response asked for `calls` (shown before any of them runs)."""
        with self._lock:
            for call in calls:
                self._blocks.setdefault(call.tool_call_id, ToolBlock(call))
        if calls and self.on_change is not None:
            self.on_change()

    def waiting(self, call: Any) -> None:
        self._set(call, "waiting")

    def running(self, call: Any) -> None:
        self._set(call, "running")

    def denied(self, call: Any) -> None:
        self._set(call, "denied")

    def finished(self, call: Any, result: Any) -> None:
        self._set(call, "error" if result.exception is not None else "done", result)

    def settle(self, results: list[Any], *, interrupted: bool) -> None:
        """At the end: results the hooks never saw (refused calls) filled in; calls that never
        ran are marked interrupted (the chain was stopped) or not run (the round limit)."""
        by_id = {result.tool_call_id: result for result in results}
        with self._lock:
            for call_id, block in self._blocks.items():
                result = by_id.get(call_id)
                if result is not None and block.result is None:
                    block.result = result
                    if block.state != "denied":
                        block.state = "error" if result.exception is not None else "done"
                elif block.result is None and block.state in ("asked", "waiting", "running"):
                    block.state = "interrupted" if interrupted else "not run"

    def blocks(self, calls: list[Any] | None = None) -> list[ToolBlock]:
        """Copies of the blocks (of `calls` only, when given), so readers never see one change."""
        with self._lock:
            if calls is None:
                chosen = list(self._blocks.values())
            else:
                chosen = [self._blocks[c.tool_call_id] for c in calls
                          if c.tool_call_id in self._blocks]
            return [ToolBlock(b.call, b.state, b.result) for b in chosen]
