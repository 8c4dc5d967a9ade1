"""An answer as a notebook value: it displays as the answer, `str()` is its text.

Plain Python (IPython is imported only when an answer is displayed), so the Python API
(`compare`, background answers) returns the same values the magics do. The text, the parts and
the status are the response's: an answer keeps no copy.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from .markdown import safe_markdown
from .output_metadata import METADATA_KEY

_JSON_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n```", re.S)
_MARKERS = {
    "interrupted": "interrupted: the answer above is partial",
    "error": "stopped by an error: the answer above is partial",
}
#: The last line of a partial render: the answer is still arriving. The final render drops it.
STREAMING_MARKER = "▍ streaming"


def ending_marker(status: str) -> str | None:
    """The words that mark an answer which stopped early; None for a finished one."""
    return _MARKERS.get(status)


def partial_note(status: str) -> str:
    """The Markdown note under an answer that stopped early ("" for a finished one)."""
    marker = _MARKERS.get(status)
    return f"\n\n_[{marker}]_" if marker else ""


def reasoning_text(response: Any) -> str:
    """The reasoning ("thinking") the response holds so far; "" when hidden or absent."""
    if response.prompt.hide_reasoning:
        return ""
    from .parts import ReasoningPart

    return "".join(part.text for part in response.parts_so_far()
                   if isinstance(part, ReasoningPart))


def thinking_html(reasoning: str, *, streaming: bool = False) -> str:
    """The reasoning as a collapsed section: package-made HTML around escaped text.

    One HTML block with no blank line in it, so no Markdown parser ever reads the text: every
    line ends in <br>, and every character the model sent is an entity or plain text.
    """
    if not reasoning.strip():
        return ""
    summary = "Thinking…" if streaming else "Thinking"
    lines = html.escape(reasoning.strip("\n")).split("\n")
    return (f"<details><summary>{summary}</summary>\n"
            + "\n".join(f"{line}<br>" for line in lines) + "\n</details>\n\n")


def partial_markdown(response: Any) -> str:
    """The render of a response while it streams: thinking, the text so far, the live marker."""
    body = safe_markdown(response.text_so_far(), partial=True).rstrip()
    return (thinking_html(reasoning_text(response), streaming=True) + body
            + ("\n\n" if body else "") + f"_{STREAMING_MARKER}_")


def partial_plain(response: Any) -> str:
    text = response.text_so_far()
    return text + ("\n" if text else "") + STREAMING_MARKER


class ShownOnce:
    """A cell value whose display is skipped once, in the cell that has already shown it."""

    _skip_display_in: int | None = None

    def skip_display_in(self, execution_count: int) -> None:
        """Do not display again in this execution: the stream has shown it."""
        self._skip_display_in = execution_count

    def shown_in(self, execution_count: int) -> bool:
        """Whether the stream of this execution has already shown it."""
        return self._skip_display_in == execution_count

    def _repr_mimebundle_(self, include=None, exclude=None) -> tuple[dict[str, Any], dict[str, Any]]:
        raise NotImplementedError

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import publish_display_data

        shell = get_ipython()
        if shell is not None and self.shown_in(shell.execution_count):
            self._skip_display_in = None
            return
        publish_display_data(*self._repr_mimebundle_())


class Answer(ShownOnce):
    """A finished (or interrupted, or failed) answer: displays as the answer, `str()` is its text.

    It is a magic cell's value, so `Out[n]` and `{Out[n]}` reach it; in the cell that streamed
    it, its first display is skipped because the stream already shows it.
    """

    def __init__(self, response: Any, *, format: str = "markdown") -> None:
        self.response = response
        self.format = format
        self.parsed = parsed_json(self.text) if format == "json" else None

    @property
    def text(self) -> str:
        return self.response.text_so_far()

    @property
    def status(self) -> str:
        return self.response.status

    @property
    def said_anything(self) -> bool:
        """Whether there is anything to show: text, or reasoning."""
        return bool(self.text or reasoning_text(self.response))

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

    def markdown(self) -> str:
        """The final Markdown: thinking (collapsed), the exact answer, a note if it stopped early.
        An open fence of an answer that stopped early is closed, so the note stays outside it."""
        marker = _MARKERS.get(self.status)
        return (thinking_html(reasoning_text(self.response))
                + safe_markdown(self.text, partial=marker is not None) + partial_note(self.status))

    def plain(self) -> str:
        marker = _MARKERS.get(self.status)
        return self.text + (f"\n[{marker}]" if marker else "")

    def data(self) -> dict[str, Any]:
        """The mime bundle: text/plain always, then Markdown (or JSON for `-f json`)."""
        if self.format == "json" and self.parsed is not None:
            return {"text/plain": json.dumps(self.parsed, indent=2, default=str),
                    "application/json": self.parsed}
        if self.format == "text":
            return {"text/plain": self.plain()}
        return {"text/plain": self.plain(), "text/markdown": self.markdown()}

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.data(), self.metadata()


def parsed_json(text: str) -> Any:
    """The JSON value of an answer, also when the model wrapped it in a ``` fence; else None."""
    body = text.strip()
    fenced = _JSON_FENCE.fullmatch(body)
    try:
        return json.loads(fenced.group(1) if fenced else body)
    except ValueError:
        return None
