"""Token usage of a session, by model, with totals; observers hear of every new response.

Plain Python so the magics' tables and a live widget can share one account.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ANSWER_HEADERS = ("model", "input", "output", "details", "duration", "output tok/s")
SESSION_HEADERS = ("model", "responses", "input", "output", "details", "duration", "output tok/s")


@dataclass
class ModelUsage:
    """Sums over the responses of one model (or of all, for the totals row)."""

    model: str
    responses: int = 0
    input: int = 0
    output: int = 0
    duration_ms: int = 0
    details: dict[str, float] = field(default_factory=dict)

    def add(self, input: int | None, output: int | None, details: dict[str, Any] | None,
            duration_ms: int, *, responses: int = 1) -> None:
        self.responses += responses
        self.input += input or 0
        self.output += output or 0
        self.duration_ms += duration_ms
        for name, value in (details or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.details[name] = self.details.get(name, 0) + value

    def row(self) -> tuple[str, ...]:
        return (self.model, str(self.responses),
                *_counts(self.input, self.output, self.details, self.duration_ms))


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


def answer_row(summary: dict[str, Any]) -> tuple[str, ...]:
    """The usage row of one response, from its `to_dict()`.

    With the response's status known, a count the model did not report shows as "—", and when it
    reported none the output cell says why ("— (interrupted; the model sent no counts)").
    """
    usage, status = summary["usage"], summary.get("status")
    model, input, output, *rest = (summary["model"], *_counts(
        usage["input"], usage["output"], usage["details"], summary["duration_ms"]))
    if status is None:
        return (model, input, output, *rest)
    if usage["input"] is None and usage["output"] is None:
        return (model, "—", f"— ({_NO_COUNTS.get(status, _NO_COUNTS['done'])})", *rest)
    return (model, input or "—", output or "—", *rest)


Observer = Callable[["SessionUsage"], None]


class SessionUsage:
    """Usage of every response recorded since the start (or the last reset)."""

    def __init__(self) -> None:
        self._by_model: dict[str, ModelUsage] = {}
        self._observers: list[Observer] = []
        self._lock = threading.Lock()

    def record(self, summary: dict[str, Any]) -> None:
        """Add one response, given as its `to_dict()` (works for sync and async responses)."""
        usage = summary["usage"]
        self._add(summary["model"], usage["input"], usage["output"], usage["details"],
                  summary["duration_ms"])

    def record_response(self, response: Any) -> None:
        """Add one finished response (what every response does as it finishes: kept cheap)."""
        usage = response.recorded_usage()
        self._add(response.model.model_id, usage.input, usage.output, usage.details,
                  response.elapsed_ms())

    def _add(self, model: str, input: int | None, output: int | None,
             details: dict[str, Any] | None, duration_ms: int) -> None:
        with self._lock:
            entry = self._by_model.get(model)
            if entry is None:
                entry = self._by_model[model] = ModelUsage(model)
            entry.add(input, output, details, duration_ms)
        if self._observers:
            self._notify()

    def reset(self) -> None:
        with self._lock:
            self._by_model.clear()
        self._notify()

    def by_model(self) -> list[ModelUsage]:
        with self._lock:
            return [ModelUsage(u.model, u.responses, u.input, u.output, u.duration_ms, dict(u.details))
                    for u in self._by_model.values()]

    def totals(self) -> ModelUsage:
        total = ModelUsage("total")
        for entry in self.by_model():
            total.add(entry.input, entry.output, entry.details, entry.duration_ms,
                      responses=entry.responses)
        return total

    def rows(self) -> list[tuple[str, ...]]:
        """One row per model, then the totals row (SESSION_HEADERS are the columns)."""
        entries = self.by_model()
        return [entry.row() for entry in entries] + ([self.totals().row()] if entries else [])

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call `observer(self)` after every change; returns a function that unsubscribes."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def _notify(self) -> None:
        for observer in list(self._observers):
            observer(self)


#: The account the magics record into.
session_usage = SessionUsage()
