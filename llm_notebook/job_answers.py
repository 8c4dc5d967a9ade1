"""A batch's answers, recorded as every answer is.

Each row the batch engine answered becomes a finished response of the job's model (the
`AnsweredModel` standing in for it), read by that model's own `read_answer`, so its text,
reasoning, tool calls and usage come out exactly as from a whole answer over HTTP; finishing it
puts it in the answer cache (a later `map`, or running the cell again, replays it), the log and
the session's usage. What each row came to is appended to the job's `answers.jsonl` a chunk of
rows at a time, once the store has written that chunk to the log and the cache: so a crash while
recording loses nothing (a row marked recorded is in both), and what it interrupted is recorded
again when the job is collected next, so the log may hold those rows (at most one chunk) twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import cache, store
from .batch_engine import Outcome
from .batch_spool import CHUNK, LineLog
from .http import Request
from .models import Model
from .responses import Prompt, Response


class AnsweredModel(Model):
    """The job's model as the cache, the log and the prices see it (same id, options and
    account), answering each response from the body the batch returned for it."""

    can_stream = False
    #: Its answers were billed by the provider's batch engine: priced at batch rates
    #: (`prices.Bill`), and already paid, so no budget refuses recording them.
    batch_billed = True

    def __init__(self, model: Any, base_url: str) -> None:
        self.model = model
        self.model_id = model.model_id
        self.model_name = model.model_name
        self.needs_key = model.needs_key
        self.Options = model.Options
        self.supports_schema = model.supports_schema
        self.base_url = base_url
        self._bodies: dict[str, Any] = {}
        self._source = Request(base_url, model_name=model.model_name or model.model_id)

    def answer(self, prompt: Prompt, body: Any = None) -> Response:
        """A response to `prompt` that, once read, is `body` (or replays the cache)."""
        response = Response(prompt, self, stream=False)
        if body is not None:
            self._bodies[response.id] = body
        return response

    def execute(self, prompt, stream, response, conversation):
        yield from self.model.read_answer(self._bodies.pop(response.id), response, self._source)


class RowPrompts:
    """The prompt of each row, made as `map` makes it (system prompt, options, attachments and
    schema shared by every row, the schema of a list of items with `multi`), so that its cache
    key is the one an ordinary `map` would use."""

    def __init__(self, model: AnsweredModel, *, system: str | None, options: Any,
                 attachments: list[Any], schema: Any, multi: bool = False) -> None:
        from .schemas import multi_schema

        self.model = model
        self.system, self.attachments = system, attachments
        self.schema = multi_schema(schema) if multi and schema is not None else schema
        self.options = model.model.validate_options(options)

    def prompt(self, text: str) -> Prompt:
        return Prompt(text, self.model, attachments=self.attachments, system=self.system,
                      options=self.options, schema=self.schema)


def record(outcomes: Iterable[Outcome], prompts: dict[str, str], rows: RowPrompts,
           answers: LineLog) -> None:
    """Record each outcome not recorded yet, marking them recorded in `answers` a chunk at a
    time (see the module's note; waiting for the store each chunk also keeps its writer's
    queue short)."""
    done = {entry["id"] for entry in answers.entries()}
    mode = "off" if cache.current_mode() == "off" else "refresh"
    chunk: list[dict[str, Any]] = []
    try:
        for outcome in outcomes:
            if outcome.custom_id in done or outcome.custom_id not in prompts:
                continue
            chunk.append(_entry(outcome, prompts[outcome.custom_id], rows, mode))
            done.add(outcome.custom_id)
            if len(chunk) == CHUNK:
                _mark_recorded(chunk, answers)
    finally:
        _mark_recorded(chunk, answers)
        answers.close()


def _mark_recorded(chunk: list[dict[str, Any]], answers: LineLog) -> None:
    """Once the store has written what `chunk`'s rows queued, mark them recorded."""
    if not chunk:
        return
    store.flush()
    for entry in chunk:
        answers.append(entry)
    answers.flush()
    chunk.clear()


def _entry(outcome: Outcome, text: str, rows: RowPrompts, mode: str) -> dict[str, Any]:
    if outcome.body is None:
        return {"id": outcome.custom_id, "error": outcome.error or "no answer"}
    response = rows.model.answer(rows.prompt(text), outcome.body)
    cache.bind([response], mode)
    try:
        answer = response.text()
    except Exception as exc:  # the answer cannot be read: malformed, as a request would be
        return {"id": outcome.custom_id, "error": str(exc)}
    usage = response.recorded_usage()
    return {"id": outcome.custom_id, "text": answer, "usage": [usage.input, usage.output]}
