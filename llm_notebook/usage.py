"""Token usage and cost of a session, by model, with totals; observers hear of every new response.

Plain Python so the magics' tables and a live widget can share one account. An answer replayed
from the answer cache spent nothing: it is counted among the responses, but its tokens count as
saved, not as input and output, and its cost is $0.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .prices import Cost, SessionCosts, session_costs

ANSWER_HEADERS = ("model", "input", "output", "details", "duration", "output tok/s", "cost")
SESSION_HEADERS = ("model", "responses", "input", "output", "details", "duration", "output tok/s",
                   "cost", "replayed", "saved")
#: The duration cell of a replayed answer: it took no time of a model's.
REPLAYED = "replayed"


@dataclass
class ModelUsage:
    """Sums over the responses of one model (or of all, for the totals row)."""

    model: str
    responses: int = 0
    input: int = 0
    output: int = 0
    duration_ms: int = 0
    details: dict[str, float] = field(default_factory=dict)
    #: Of `responses`, how many were replayed from the answer cache, and the tokens they saved.
    replayed: int = 0
    saved_tokens: int = 0
    #: The output and time of the answers long enough to time (see MIN_RATE_MS): the rate is
    #: theirs, so answers too quick to time do not inflate it.
    rated_output: int = 0
    rated_ms: int = 0

    def add(self, input: int | None, output: int | None, details: dict[str, Any] | None,
            duration_ms: int, *, responses: int = 1) -> None:
        self.responses += responses
        self.input += input or 0
        self.output += output or 0
        self.duration_ms += duration_ms
        if duration_ms >= MIN_RATE_MS:
            self.rated_output += output or 0
            self.rated_ms += duration_ms
        self._add_details(details)

    def merge(self, other: ModelUsage) -> None:
        """Add another model's sums (the totals row)."""
        for name in ("responses", "input", "output", "duration_ms", "replayed", "saved_tokens",
                     "rated_output", "rated_ms"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self._add_details(other.details)

    def _add_details(self, details: dict[str, Any] | None) -> None:
        for name, value in (details or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.details[name] = self.details.get(name, 0) + value

    def add_replayed(self, saved_tokens: int | None, *, responses: int = 1) -> None:
        """Responses answered from the cache: counted, their tokens saved rather than spent."""
        self.responses += responses
        self.replayed += responses
        self.saved_tokens += saved_tokens or 0

    def row(self, cost: Cost | None = None, saved: Cost | None = None) -> tuple[str, ...]:
        """The row under SESSION_HEADERS; `cost` and `saved` are blank when not known here."""
        *counts, _ = _counts(self.input, self.output, self.details, self.duration_ms)
        return (self.model, str(self.responses), *counts,
                output_rate(self.rated_output, self.rated_ms),
                "" if cost is None else str(cost), str(self.replayed) if self.replayed else "",
                saved_text(self.saved_tokens if self.replayed else None, saved))


def saved_text(tokens: int | None, dollars: Cost | None = None) -> str:
    """"1,234 tokens, $0.004": what replayed answers saved ("" when none were replayed)."""
    if tokens is None:
        return ""
    pieces = [f"{tokens:,} tokens"]
    if dollars is not None and dollars.known:
        pieces.append(str(dollars))
    return ", ".join(pieces)


def _format_details(details: dict[str, Any] | None) -> str:
    return ", ".join(f"{name} {value:,}" if isinstance(value, (int, float)) else f"{name} {value}"
                     for name, value in (details or {}).items())


#: Below this duration an output rate says more about the clock than about the model.
MIN_RATE_MS = 50
#: Why an answer's counts are missing, by how it ended.
_NO_COUNTS = {"done": "the model sent no counts", "interrupted": "interrupted; the model sent no counts",
              "error": "failed; the model sent no counts"}


def output_rate(output: int | None, duration_ms: int) -> str:
    """Output tokens per second, or "" when there is no count or the time is too short to tell."""
    if not output or duration_ms < MIN_RATE_MS:
        return ""
    return f"{output / (duration_ms / 1000):,.1f}"


def _counts(input: int | None, output: int | None, details: dict[str, Any] | None,
            duration_ms: int) -> tuple[str, ...]:
    return ("" if input is None else f"{input:,}", "" if output is None else f"{output:,}",
            _format_details(details), f"{duration_ms / 1000:.2f} s", output_rate(output, duration_ms))


def answer_row(summary: dict[str, Any], *, cost: Cost | None = None) -> tuple[str, ...]:
    """The usage row of one response, from its `to_dict()`, under ANSWER_HEADERS.

    With the response's status known, a count the model did not report shows as "—", and when it
    reported none the output cell says why ("— (interrupted; the model sent no counts)"). A
    replayed answer's duration cell says "replayed". `cost` is blank when not given.
    """
    usage, status = summary["usage"], summary.get("status")
    model, input, output, details, duration, rate = (summary["model"], *_counts(
        usage["input"], usage["output"], usage["details"], summary["duration_ms"]))
    if summary.get("replayed") is not None:
        duration, rate = REPLAYED, ""
    priced = "" if cost is None else str(cost)
    if status is None:
        return (model, input, output, details, duration, rate, priced)
    if usage["input"] is None and usage["output"] is None:
        return (model, "—", f"— ({_NO_COUNTS.get(status, _NO_COUNTS['done'])})", details,
                duration, rate, priced)
    return (model, input or "—", output or "—", details, duration, rate, priced)


def answer_table(summary: dict[str, Any], cost: Cost | None) -> dict[str, str]:
    """The usage table under one answer; for a replayed one, a line under it saying where from
    and what it saved ("replayed from 2026-11-30 14:02 · saved 1,234 tokens, $0.004")."""
    from .cache import replayed_line
    from .markdown import escape_inline
    from .tables import table_data

    table = table_data(ANSWER_HEADERS, [answer_row(summary, cost=cost)])
    line = replayed_line(summary.get("replayed"))
    if not line:
        return table
    return {"text/plain": f"{table['text/plain']}\n{line}",
            "text/markdown": f"{table['text/markdown']}\n\n_{escape_inline(line)}_"}


def summed(costs: list[Cost]) -> Cost:
    """The sum of the known costs, marked incomplete when some are unknown; unknown when all
    are (never "$0" for a sum of unknowns)."""
    known = [cost for cost in costs if cost.known]
    if not known:
        return Cost(None, "no price is known for these models")
    total = known[0]
    for cost in known[1:]:
        total = total + cost
    return total if len(known) == len(costs) else dataclasses.replace(total, complete=False)


Observer = Callable[["SessionUsage"], None]


class SessionUsage:
    """Usage of every response recorded since the start (or the last reset).

    `costs` is where the dollars of the same responses are counted (whoever records a response
    here records it there too); without it the cost columns are blank.
    """

    def __init__(self, costs: SessionCosts | None = None) -> None:
        self.costs = costs
        self._by_model: dict[str, ModelUsage] = {}
        self._observers: list[Observer] = []
        self._lock = threading.Lock()

    def record(self, summary: dict[str, Any]) -> None:
        """Add one response, given as its `to_dict()` (works for sync and async responses)."""
        usage = summary["usage"]
        self._add(summary["model"], usage["input"], usage["output"], usage["details"],
                  summary["duration_ms"], summary.get("replayed"))

    def record_response(self, response: Any) -> None:
        """Add one finished response (what every response does as it finishes: kept cheap)."""
        usage = response.recorded_usage()
        self._add(response.model.model_id, usage.input, usage.output, usage.details,
                  response.elapsed_ms(), response.replayed)

    def _add(self, model: str, input: int | None, output: int | None,
             details: dict[str, Any] | None, duration_ms: int,
             replayed: dict[str, Any] | None) -> None:
        with self._lock:
            entry = self._by_model.get(model)
            if entry is None:
                entry = self._by_model[model] = ModelUsage(model)
            if replayed is not None:
                saved = replayed.get("saved_tokens")
                entry.add_replayed(saved if saved is not None else (input or 0) + (output or 0))
            else:
                entry.add(input, output, details, duration_ms)
        if self._observers:
            self._notify()

    def reset(self) -> None:
        """Forget every response, and their costs."""
        with self._lock:
            self._by_model.clear()
        if self.costs is not None:
            self.costs.reset()
        self._notify()

    def by_model(self) -> list[ModelUsage]:
        with self._lock:
            return [dataclasses.replace(u, details=dict(u.details))
                    for u in self._by_model.values()]

    def totals(self) -> ModelUsage:
        total = ModelUsage("total")
        for entry in self.by_model():
            total.merge(entry)
        return total

    def spent(self) -> Cost | None:
        """What the recorded responses cost ("—" when no price is known; None without `costs`)."""
        if self.costs is None:
            return None
        return summed([entry.cost for entry in self.costs.by_model()])

    def rows(self) -> list[tuple[str, ...]]:
        """One row per model, then the totals row (SESSION_HEADERS are the columns)."""
        entries = self.by_model()
        if not entries:
            return []
        priced = {entry.model: entry for entry in self.costs.by_model()} if self.costs else {}
        rows = []
        for entry in entries:
            found = priced.get(entry.model)
            rows.append(entry.row(found.cost if found else None, found.saved if found else None))
        replaying = [found.saved for found in priced.values() if found.replayed]
        saved = summed(replaying) if replaying else None  # models with no replays saved nothing
        return rows + [self.totals().row(self.spent(), saved)]

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call `observer(self)` after every change; returns a function that unsubscribes."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def _notify(self) -> None:
        for observer in list(self._observers):
            observer(self)


#: The account the magics record into; its costs are the session's (`prices.session_costs`).
session_usage = SessionUsage(costs=session_costs)
