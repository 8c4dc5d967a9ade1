"""Submitting a batch job.

Each row's request is built by the model's own request builder; rows the answer cache answers
are not sent; the others are written to request files on disk as they are made, split where the
provider's per-batch limits require, and their projected cost (at batch prices) is checked
before anything is sent against `max_cost`, the `budget.limit()` blocks in force and the
session's budget, with what jobs not collected yet were projected to cost counted as spent.
Each row's output tokens are projected from its `max_tokens`, else from the model's earlier
answers this session, else as `GUESSED_OUTPUT_TOKENS` (a guess the job's cost says it is).
Then each file is uploaded and started as one provider batch, and the job's record saved with
the batch's id before an interrupt can stop it, so that what the provider holds (and bills) is
always reachable again.
"""

from __future__ import annotations

import datetime as _dt
import pickle
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from pathlib import Path
from types import ModuleType
from typing import Any

from . import cache, job_store
from .batch_engine import InterruptHold, access_for, request_body
from .batch_spool import CHUNK, LineLog, Spool
from .budget import (
    GUESSED_OUTPUT_TOKENS,
    BudgetExceeded,
    BudgetWarning,
    active_limits,
    dollars,
    planned_output_tokens,
)
from .errors import LLMNotebookError, ModelError
from .job_answers import AnsweredModel, RowPrompts
from .job_process import this_process
from .prices import Cost, batch_cost, format_dollars, session_costs
from .request_key import request_key
from .responses import Usage, new_id
from .settings import settings
from .tokens import estimate_input_tokens

ROWS_FILE, ANSWERS_FILE, LABELS_FILE = "rows.jsonl", "answers.jsonl", "labels.pkl"
ATTACHMENTS_FOLDER = "attachments"

__all__ = ["BatchUnsupported", "JobSpec", "engine_for", "engine_module", "kind_of",
           "pickled_labels", "read_labels", "submit"]


class BatchUnsupported(LLMNotebookError, ValueError):
    """The model, or what was asked of it, cannot go through a provider's batch engine."""


@dataclass
class JobSpec:
    """What every row of a job shares: the model, its key (never stored), system prompt,
    options, attachments and schema (a JSON schema; of each item of a list with `multi`),
    and the most the job may cost."""

    model: Any
    key: str | None = field(repr=False)
    system: str | None
    options: dict[str, Any]
    attachments: list[Any]
    schema: dict[str, Any] | None
    multi: bool = False
    max_cost: float | None = None


def kind_of(model: Any) -> str:
    """"openai" or "anthropic": the batch engine that runs `model`'s requests."""
    from .default_plugins.anthropic import AsyncClaude, Claude
    from .default_plugins.openai_models import AsyncChat, Chat

    if isinstance(model, (Chat, AsyncChat)):
        return "openai"
    if isinstance(model, (Claude, AsyncClaude)):
        return "anthropic"
    raise BatchUnsupported(
        f"Model {model.model_id!r} has no provider batch engine: batch=True works with OpenAI "
        "and OpenAI-compatible models (whose server offers the Batch API) and Anthropic's "
        "models. Leave out batch=True to run the map here")


def engine_module(kind: str) -> ModuleType:
    """The module of the batch engine `kind`: its `NAME`, `LIMITS` and `Engine` class."""
    from . import batch_anthropic, batch_openai

    return batch_anthropic if kind == "anthropic" else batch_openai


def engine_for(kind: str, access: Any) -> Any:
    return engine_module(kind).Engine(access)


def submit(spec: JobSpec, rows: Iterable[tuple[int, str]], *, total: int, labels: bytes | None,
           parent: str | None = None) -> dict[str, Any]:
    """Start a job for `rows` ((position, prompt) pairs of an input of `total` rows, labelled
    by the pickled `(index, name)` in `labels`, or by position); the job's stored record."""
    kind = kind_of(spec.model)
    base_url = spec.model.base_url
    engine = engine_for(kind, access_for(spec.model, spec.model.get_key(spec.key), base_url))
    job_id = f"job_{new_id()}"
    where = job_store.folder(job_id, create=True)
    spool = Spool(where, engine_module(kind).LIMITS)
    try:
        if labels is not None:
            (where / LABELS_FILE).write_bytes(labels)
        kept = _keep_attachments(spec.attachments, where / ATTACHMENTS_FOLDER)
        rows_prompts = RowPrompts(AnsweredModel(spec.model, base_url), system=spec.system,
                                  options=spec.options, attachments=spec.attachments,
                                  schema=spec.schema, multi=spec.multi)
        counted = _spool(rows, rows_prompts, spec, engine, spool, where)
        parts = spool.close()
        estimate = batch_cost(spec.model, Usage(counted.input_tokens, counted.output_tokens),
                              estimated=True)
        if counted.output_guessed and estimate.known:
            estimate = Cost(estimate.dollars, f"{estimate.source}; output guessed at "
                            f"{GUESSED_OUTPUT_TOKENS} tokens a row, as no max_tokens was given "
                            "and the model has not answered yet this session", True)
        if parts:
            _check_budgets(estimate, spec.max_cost, "Not submitted: this batch job")
    except BaseException:
        spool.discard()
        job_store.forget(job_id)
        raise
    record = {"id": job_id, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
              "submitter": this_process(),
              "model": spec.model.model_id, "engine": kind, "base_url": base_url,
              "rows": total, "labels": "pandas" if labels is not None else "list",
              "system": spec.system,
              "options": rows_prompts.options.model_dump(mode="json", exclude_unset=True),
              "schema": spec.schema, "multi": spec.multi, "attachments": kept, "parent": parent,
              "sent": counted.sent, "replayed": counted.replayed,
              "estimate": {"dollars": None if estimate.dollars is None else str(estimate.dollars),
                           "source": estimate.source},
              "parts": [{"number": n, "requests": p.requests, "bytes": p.bytes, "status": "unsent",
                         "counts": {"total": p.requests, "completed": 0, "failed": 0}}
                        for n, p in enumerate(parts, 1)]}
    job_store.save(record)
    return _send_parts(record, parts, engine)


@dataclass
class _Counted:
    sent: int = 0
    replayed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    output_guessed: bool = False


def _spool(rows: Iterable[tuple[int, str]], prompts: RowPrompts, spec: JobSpec, engine: Any,
           spool: Spool, where: Path) -> _Counted:
    """Write each row's request (or, for a row the cache answers, its answer) to the job's
    folder, a chunk of rows at a time; what was sent and replayed, and the tokens planned."""
    mode = cache.current_mode()
    counted = _Counted()
    per_answer: int | None = None
    rows_file = LineLog(where / ROWS_FILE, flush_every=CHUNK)
    answers = LineLog(where / ANSWERS_FILE, flush_every=CHUNK)
    try:
        for chunk in _chunks(rows):
            made = [prompts.prompt(text) for _, text in chunk]
            found = (cache.lookup_many([request_key(prompt) for prompt in made])
                     if mode in ("replay", "only") else [None] * len(made))
            replays = iter(_replays(made, found, prompts.model, mode))
            for (position, text), prompt, stored in zip(chunk, made, found):
                custom_id = f"r{position}"
                if stored is not None:
                    answers.append({"id": custom_id, "text": next(replays).text(),
                                    "replayed": True})
                    counted.replayed += 1
                    continue
                entry = {"id": custom_id, "prompt": text, "part": None}
                if mode == "only":
                    answers.append({"id": custom_id, "error": _only_mode_miss(spec.model)})
                else:
                    entry["part"] = spool.add(engine.line(custom_id, request_body(spec.model,
                                                                                  prompt)),
                                              what=f"the request of row {position}")
                    counted.sent += 1
                    counted.input_tokens += estimate_input_tokens(prompt)
                    if per_answer is None:
                        per_answer = planned_output_tokens(prompts.model.answer(prompt))
                        counted.output_guessed = per_answer == 0
                        per_answer = per_answer or GUESSED_OUTPUT_TOKENS
                    counted.output_tokens += per_answer
                rows_file.append(entry)
    finally:
        rows_file.close()
        answers.close()
    return counted


def _replays(made: list[Any], found: list[Any], model: AnsweredModel, mode: str) -> list[Any]:
    """Responses replaying the stored answers found for some of `made` (bound to the cache
    many to a query, as `map` binds its rows)."""
    responses = [model.answer(prompt) for prompt, stored in zip(made, found) if stored is not None]
    cache.bind(responses, mode)
    return responses


def _chunks(rows: Iterable[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


def _only_mode_miss(model: Any) -> str:
    return (f'not sent: no stored answer for this request to {model.model_id!r}, and the cache '
            f'mode is "only", which never asks a model')


def _keep_attachments(attachments: list[Any], folder: Path) -> list[dict[str, Any]]:
    """Each attachment kept in the job's folder (or, for a URL, its address), so that any
    kernel can make the rows' prompts again."""
    kept = []
    for number, attachment in enumerate(attachments):
        if attachment.is_url_only():
            kept.append({"url": attachment.url, "type": attachment.type})
            continue
        folder.mkdir(exist_ok=True)
        (folder / str(number)).write_bytes(attachment.content_bytes())
        kept.append({"file": str(number), "type": attachment.type})
    return kept


def _check_budgets(cost: Cost, max_cost: float | None, refused: str) -> None:
    """Refuse (`BudgetExceeded`, starting with `refused`) a job whose projected cost would
    pass `max_cost`, a `budget.limit()` block in force or what is left of the session's budget
    (the blocks and the session count the jobs not collected yet as spent); a cost that cannot
    be known is let through with a warning, as a request's is."""
    limits = []
    if max_cost is not None:
        limits.append((dollars(max_cost, "max_cost"), Decimal(0), False, "its max_cost",
                       "Give a larger max_cost=."))
    in_flight, jobs = job_store.uncollected_projection()
    pending = (f", {format_dollars(in_flight)} projected for {jobs:,} batch job"
               f"{'s' if jobs != 1 else ''} not collected yet (their .result() collects them)"
               if jobs else "")
    for block in active_limits():
        limits.append((block.limit, block.spent(), True, block.what, block.remedy))
    if settings.budget is not None:
        limits.append((dollars(settings.budget, "llm_notebook.settings.budget"),
                       session_costs.spent(), True,
                       "the session's budget (llm_notebook.settings.budget)",
                       "Raise llm_notebook.settings.budget, or set it to None for no limit."))
    if not limits:
        return
    if not cost.known:
        warnings.warn(f"llm_notebook: the budget cannot count this batch job: {cost.source}",
                      BudgetWarning, stacklevel=4)
        return
    for limit, spent, counts_jobs, what, remedy in limits:
        if spent + (in_flight if counts_jobs else 0) + cost.dollars > limit:
            raise BudgetExceeded(f"{refused} (about {cost} at batch prices: {cost.source}) would "
                                 f"pass {what} of {format_dollars(limit)} ({format_dollars(spent)}"
                                 f" spent{pending if counts_jobs else ''}). {remedy}")


def _send_parts(record: dict[str, Any], parts: list[Any], engine: Any) -> dict[str, Any]:
    """Upload and start each part, saving the record after each. When the first is refused,
    nothing was started and the job is forgotten; when a later one is, the parts already
    started run on, and the rest are kept as failed (their rows' errors say why, and
    `retry_failed()` sends them again)."""
    try:
        for number, part in enumerate(parts, 1):
            try:
                record = _send_part(record["id"], number, part, engine)
            except BaseException as exc:
                record = job_store.find(record["id"])
                if not any(stored.get("batch_id") for stored in record["parts"]):
                    job_store.forget(record["id"])
                    raise
                record = _not_submitted(record, exc)
                if not isinstance(exc, ModelError):
                    raise
                warnings.warn(f"llm_notebook: job {record['id']}: {exc}; the batches before it "
                              "run on", RuntimeWarning, stacklevel=4)
                break
    finally:
        for part in parts:
            part.path.unlink(missing_ok=True)
    return record


def _send_part(job_id: str, number: int, part: Any, engine: Any) -> dict[str, Any]:
    """Start part `number` and save its batch's state in one step no interrupt can split: the
    engine holds interrupts from just before the provider creates the batch until it is saved
    here, so a batch that bills is never lost."""
    hold = InterruptHold()
    try:
        state = engine.submit(part, label=f"{job_id}-{number}", hold=hold)
        return job_store.change(job_id, lambda stored: stored["parts"][number - 1].update(state))
    finally:
        hold.release()


def _not_submitted(record: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """Every part not started is kept as failed, saying why."""
    reason = f"not submitted: {str(exc) or type(exc).__name__}"

    def mark(stored: dict[str, Any]) -> None:
        for part in stored["parts"]:
            if not part.get("batch_id"):
                part.update(status="failed", detail=reason)

    return job_store.change(record["id"], mark)


def pickled_labels(index: Any, name: Any) -> bytes:
    return pickle.dumps((index, name), protocol=pickle.HIGHEST_PROTOCOL)


def read_labels(where: Path) -> tuple[Any, Any]:
    """The (index, name) a job's rows were labelled with (its own file: written by this
    package in the user's directory)."""
    return pickle.loads((where / LABELS_FILE).read_bytes())


