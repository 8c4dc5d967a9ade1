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

from .markdown import escape_inline, safe_markdown
from .output_metadata import METADATA_KEY
from .tables import table_data

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


class _AnswerValue(ShownOnce):
    """What an answer and a chain's answer display as, from their `format`, `parsed`, `plain()`,
    `markdown()` and `metadata()`."""

    format: str
    parsed: Any

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


class Answer(_AnswerValue):
    """A finished (or interrupted, or failed) answer: displays as the answer, `str()` is its text.

    It is a magic cell's value, so `Out[n]` and `{Out[n]}` reach it; in the cell that streamed
    it, its first display is skipped because the stream already shows it.
    """

    def __init__(self, response: Any, *, format: str = "markdown") -> None:
        self.response = response
        self.format = format
        self.parsed = parsed_json(self.text) if format == "json" else None
        self.schema_error: Any = None
        self._table: str | None = None

    def read_structured(self, schema: Any, *, multi: bool = False) -> None:
        """Check a finished answer against `schema` (a DSL string, a JSON schema dict or a
        pydantic model class; with `multi`, each item of a list): `parsed` becomes the value
        and the answer displays as a table of it. When it does not fit, `parsed` is None and
        `schema_error` is the StructuredOutputError saying why; the text shows as it came. A
        partial answer is not read: it is no value."""
        from .structured import StructuredOutputError, parse_structured

        if self.status != "done":
            return
        try:
            self.parsed, self.schema_error = parse_structured(self.text, schema, multi=multi), None
        except StructuredOutputError as exc:
            self.parsed, self.schema_error, self._table = None, exc, None
            return
        self._table = value_table(self.parsed, multi=multi)

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

    def cost(self) -> Any:
        """What the answer cost (a `prices.Cost`: "—" when unknown, $0 when replayed)."""
        from .prices import cost

        return cost(self.response)

    def metadata(self) -> dict[str, Any]:
        """The answer's provenance, which a saved notebook keeps: what asked (model, resolved
        model, options), what it cost, and the cache key that finds it again (replayed or not)."""
        summary = self.response.to_dict()
        return {METADATA_KEY: {
            "model": summary["model"], "response_id": summary["id"], "status": summary["status"],
            "usage": summary["usage"], "duration_ms": summary["duration_ms"],
            "datetime": summary["datetime_utc"], **provenance(self.response, self.cost()),
        }}

    def markdown(self) -> str:
        """The final Markdown: thinking (collapsed), the exact answer, a note if it stopped early.
        An open fence of an answer that stopped early is closed, so the note stays outside it."""
        marker = _MARKERS.get(self.status)
        body = self._table if self._table is not None else safe_markdown(
            self.text, partial=marker is not None)
        return thinking_html(reasoning_text(self.response)) + body + partial_note(self.status)

    def plain(self) -> str:
        marker = _MARKERS.get(self.status)
        return self.text + (f"\n[{marker}]" if marker else "")



_NO_FIELD = object()


def value_table(value: Any, *, multi: bool = False) -> str:
    """A structured answer's value as a Markdown table, every cell escaped: one row for an
    object, one row per item of a `multi` list; a value that is no object is the column
    `value`. Text shows as it is, other values as JSON, a field an item lacks as nothing."""
    records = [item if isinstance(item, dict) else {"value": item}
               for item in (value if multi else [value])]
    headers = list(dict.fromkeys(name for record in records for name in record))
    if not headers:
        return "_(no items)_" if multi else "_(no fields)_"
    rows = [[_cell_text(record.get(name, _NO_FIELD)) for name in headers] for record in records]
    return table_data(headers, rows)["text/markdown"]


def _cell_text(value: Any) -> str:
    if value is _NO_FIELD:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def provenance(response: Any, cost: Any) -> dict[str, Any]:
    """What produced `response`, for an output's metadata: its cache key, the model that
    answered, the options as given, its cost in dollars (None when unknown) and, for an answer
    replayed from the answer cache, when it was recorded and what replaying it saved."""
    from .cache import key_of

    summary = response.to_dict()
    replayed = summary["replayed"]
    return {"cache_key": key_of(response), "resolved_model": summary["resolved_model"],
            "options": json.loads(json.dumps(summary["options"], default=str)),
            "cost": dollars_of(cost),
            "replayed": None if replayed is None else {
                "recorded": replayed.get("datetime_utc"),
                "saved_tokens": replayed.get("saved_tokens"),
                "saved_cost": replayed.get("saved_cost")}}


def dollars_of(cost: Any) -> float | None:
    """A cost as metadata keeps it: dollars as a number, None when unknown."""
    return None if cost.dollars is None else float(cost.dollars)


def parsed_json(text: str) -> Any:
    """The JSON value of an answer, also when the model wrapped it in a ``` fence; else None."""
    body = text.strip()
    fenced = _JSON_FENCE.fullmatch(body)
    try:
        return json.loads(fenced.group(1) if fenced else body)
    except ValueError:
        return None


#: The note under a chain stopped by its round limit.
_STOPPED_NOTE = "\n\n_[{}]_"


class ChainAnswer(_AnswerValue):
    """The answer of a chain (a prompt with tools): every round's text in order, each followed
    by the blocks of the tool calls it asked for, then how the chain ended.

    The text, the parts and the usage are the chain's responses'; `calls` (a `CallLog`) holds
    what happened to each call. `interrupted` is set when the chain was stopped from outside
    (an interrupt, a cancel), which may be between rounds, when no response is running.
    """

    def __init__(self, chain: Any, calls: Any, *, format: str = "markdown") -> None:
        self.chain = chain
        self.calls = calls
        self.format = format
        self.interrupted = False
        self.parsed = None

    def settle(self, *, interrupted: bool = False) -> ChainAnswer:
        """The chain has ended (stopped from outside, when `interrupted`): fix what it shows."""
        self.interrupted = interrupted
        self.calls.settle(self.chain.tool_results, interrupted=interrupted)
        if self.format == "json":
            self.parsed = parsed_json(self.final_text)
        return self

    @property
    def response(self) -> Any:
        """The latest round's response (None before the first started)."""
        made = self.chain.responses_so_far()
        return made[-1] if made else None

    @property
    def text(self) -> str:
        return self.chain.text_so_far()

    @property
    def final_text(self) -> str:
        """The text of the last round: the answer after the tools."""
        return self.response.text_so_far() if self.response is not None else ""

    @property
    def status(self) -> str:
        response = self.response
        if self.interrupted or response is None:
            return "interrupted" if self.interrupted else "pending"
        return response.status

    @property
    def said_anything(self) -> bool:
        return bool(self.text or self.calls.blocks()
                    or any(reasoning_text(r) for r in self.chain.responses_so_far()))

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return (f"<ChainAnswer model={self.chain.conversation.model_id!r} status={self.status!r} "
                f"rounds={len(self.chain.responses_so_far())} tool calls="
                f"{len(self.calls.blocks())} text={shown!r}>")

    def _rounds(self, *, streaming: bool) -> list[str]:
        from .tool_blocks import block_html

        pieces = []
        made = self.chain.responses_so_far()
        for number, response in enumerate(made):
            live = streaming and number == len(made) - 1 and not response.finished
            thinking = thinking_html(reasoning_text(response), streaming=live).rstrip()
            text = response.text_so_far()
            body = safe_markdown(text, partial=live or response.status != "done").strip() if text else ""
            blocks = [block_html(b) for b in self.calls.blocks(response.tool_calls_so_far())]
            pieces += [piece for piece in (thinking, body, *blocks) if piece]
        return pieces

    def partial_markdown(self) -> str:
        """The render while the chain runs: the rounds so far, then the live marker."""
        return "\n\n".join([*self._rounds(streaming=True), f"_{STREAMING_MARKER}_"])

    def partial_plain(self) -> str:
        return self.plain(streaming=True) + "\n" + STREAMING_MARKER

    def markdown(self) -> str:
        """The final Markdown: each round and its calls, then a note if it stopped early."""
        notes = ""
        if self.chain.stopped:
            notes += _STOPPED_NOTE.format(escape_inline(self.chain.stopped))
        return "\n\n".join(self._rounds(streaming=False)) + notes + partial_note(self.status)

    def plain(self, *, streaming: bool = False) -> str:
        from .tool_blocks import block_plain

        lines = []
        for response in self.chain.responses_so_far():
            if response.text_so_far().strip():
                lines.append(response.text_so_far().strip("\n"))
            lines += [block_plain(b) for b in self.calls.blocks(response.tool_calls_so_far())]
        if not streaming:
            if self.chain.stopped:
                lines.append(f"[{self.chain.stopped}]")
            marker = _MARKERS.get(self.status)
            if marker:
                lines.append(f"[{marker}]")
        return "\n\n".join(lines)

    def usage_summary(self) -> dict[str, Any]:
        """The chain as one response's `to_dict()` reads, for a usage row: usage summed over the
        rounds, the time of all of them; replayed when every round was (with what they saved)."""
        usage = self.chain.usage_so_far()
        return {"model": self.chain.conversation.model_id, "status": self.status,
                "usage": {"input": usage.input, "output": usage.output, "details": usage.details},
                "duration_ms": self.duration_ms(), "replayed": self._replayed()}

    def _replayed(self) -> dict[str, Any] | None:
        made = self.chain.responses_so_far()
        if not made or any(r.replayed is None for r in made):
            return None
        found = [r.replayed for r in made]

        def total(name: str) -> Any:
            values = [about.get(name) for about in found]
            return None if None in values else sum(values)

        return {"datetime_utc": found[0].get("datetime_utc"), "saved_tokens": total("saved_tokens"),
                "saved_cost": total("saved_cost")}

    def cost(self) -> Any:
        """What every round cost together (a `prices.Cost`; see `usage.summed`)."""
        from .prices import cost
        from .usage import summed

        return summed([cost(r) for r in self.chain.responses_so_far()])

    def duration_ms(self) -> int:
        """From the first round's start to the last one's end, the tool calls between included."""
        made = [r for r in self.chain.responses_so_far() if r.started_utc is not None]
        if not made:
            return 0
        first, last = made[0], made[-1]
        gap = last.started_utc - first.started_utc
        return int(gap.total_seconds() * 1000) + last.elapsed_ms()

    def metadata(self) -> dict[str, Any]:
        """The chain's provenance: its summed usage and cost, the calls, and each round's own
        provenance (cache key, resolved model, options, cost, whether it was replayed)."""
        from .prices import cost

        made = self.chain.responses_so_far()
        summary = self.usage_summary()
        return {METADATA_KEY: {
            "model": summary["model"], "response_id": made[-1].id if made else None,
            "response_ids": [r.id for r in made], "status": self.status,
            "usage": summary["usage"], "duration_ms": summary["duration_ms"],
            "datetime": made[0].to_dict()["datetime_utc"] if made else "",
            "tool_calls": [block.to_dict() for block in self.calls.blocks()],
            "cost": dollars_of(self.cost()),
            "rounds": [{"response_id": r.id, **provenance(r, cost(r))} for r in made],
        }}

