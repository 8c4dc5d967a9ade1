"""The log of finished responses, in the shared SQLite store; a broken log never fails a prompt."""

from __future__ import annotations

import dataclasses
import json
import numbers
from pathlib import Path
from typing import Any

from . import store


class LogWarning(store.StoreWarning):
    """The log could not be written or read; the prompt itself went on."""


_LOG = store.Feature(name="the log", item="response", warning=LogWarning,
                     remedy="Turn logging off with llm_notebook.settings.log = False")
_COLUMNS = ("id", "model", "status", "error", "prompt", "system", "options", "text",
            "input_tokens", "output_tokens", "usage_details", "duration_ms", "datetime_utc",
            "conversation_id", "attachments", "first_chunk_ms", "resolved_model", "parts",
            "tool_calls", "tool_results", "replayed")
_JSON_COLUMNS = ("options", "usage_details", "attachments", "parts", "tool_calls",
                 "tool_results", "replayed")
_INSERT = store.Insert("responses", _COLUMNS)


def log_path() -> Path:
    return store.database_path()


def record(response: Any) -> None:
    """Queue one finished (or failed, or interrupted) response for writing; never raises.

    Its plain values are taken now (holding on to the response itself would keep every answer
    of a burst alive for the garbage collector to walk); the store's thread makes the row from
    them, so finishing an answer never waits on SQLite or on JSON encoding.
    """
    try:
        usage = response.recorded_usage()
        prompt = response.prompt
        taken = (response.id, response.model.model_id, str(response.status), response.error,
                 prompt.prompt, prompt.system,
                 prompt.options if prompt.options.model_fields_set else None,
                 response.text_so_far(),
                 usage.input, usage.output, usage.details, response.elapsed_ms(),
                 response.started_utc, response.conversation.id if response.conversation else None,
                 tuple(response.attachments), response.first_chunk_ms(),
                 response.resolved_model, _structured_parts(response),
                 tuple(response.tool_calls_so_far()), tuple(prompt.tool_results),
                 response.replayed)
    except Exception as exc:  # a response that cannot be described is not logged
        store.warn_once(_LOG, f"could not log a response ({type(exc).__name__}: {exc}); the "
                              f"answer is unaffected. {_LOG.remedy}")
        return
    store.write(_LOG, _INSERT, taken, key=taken[0], make=_row)


def flush(timeout: float | None = None) -> bool:
    """Wait until every queued response has been written (reads call it first)."""
    return store.flush(timeout)


def _json(value: Any, empty: str | None) -> str | None:
    return json.dumps(value, default=str) if value else empty


def _structured_parts(response: Any) -> tuple[Any, ...] | None:
    """The answer's parts when they hold more than its text (reasoning, tool calls): the text
    alone is in the text column already."""
    parts = response.parts_so_far()
    if len(parts) <= 1 and all(type(part).__name__ == "TextPart" for part in parts):
        return None
    return tuple(parts)


def _tool_result(result: Any) -> dict[str, Any]:
    return {"name": result.name, "output": result.output, "tool_call_id": result.tool_call_id,
            "exception": None if result.exception is None else
            f"{type(result.exception).__name__}: {result.exception}",
            "duration_ms": getattr(result, "duration_ms", None)}


def _row(taken: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row in _COLUMNS order, from what `record` took."""
    (id, model, status, error, prompt, system, options, text, input, output, details,
     duration_ms, started, conversation_id, attachments, first_chunk_ms, resolved_model, parts,
     tool_calls, tool_results, replayed) = taken
    described = [{"id": a.id(), "type": a.metadata()["type"], "size": a.size()}
                 for a in attachments]
    return (id, model, status, error, prompt, system,
            _json(options.model_dump(exclude_unset=True) if options is not None else None, "{}"),
            text, input, output,
            _json(details, None), duration_ms, started.isoformat() if started else "",
            conversation_id, _json(described, "[]"), first_chunk_ms, resolved_model,
            _json([part.to_dict() for part in parts] if parts else None, None),
            _json([dataclasses.asdict(call) for call in tool_calls], None),
            _json([_tool_result(result) for result in tool_results], None),
            _json(replayed, None))


#: SQLite's largest LIMIT; a larger `n` asks for every row, as this one does.
_MOST_ROWS = 2 ** 63 - 1


def logs(n: int | None = 20, *, model: str | None = None, conversation_id: str | None = None,
         status: str | None = None) -> list[dict[str, Any]]:
    """The newest `n` logged responses (all with n=None), newest first, as dicts."""
    n = _count(n)
    where, params = [], []
    for column, value in (("model", model), ("conversation_id", conversation_id), ("status", status)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"logs({column}=...) takes text (as the log keeps it), not "
                            f"{type(value).__name__}: for example logs({column}={str(value)!r})")
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    query = "SELECT * FROM responses" + (f" WHERE {' AND '.join(where)}" if where else "")
    query += " ORDER BY datetime_utc DESC, id DESC"
    if n is not None:
        query += " LIMIT ?"
        params.append(n)
    rows = store.read(_LOG, query, params)
    for row in rows:
        for column in _JSON_COLUMNS:
            if row[column]:
                row[column] = _decoded(row[column])
    return rows


def _count(n: Any) -> int | None:
    """`n` as a LIMIT: a whole number of 1 or more (numpy's too), or None for every row."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"logs(n) takes a number of responses of 1 or more, or None for all of "
                         f"them, not {n!r}")
    return min(int(n), _MOST_ROWS)


def _decoded(text: str) -> Any:
    """A JSON column as data; text another program wrote there that is not JSON stays text."""
    try:
        return json.loads(text)
    except ValueError:
        return text
