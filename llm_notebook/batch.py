"""`map`: one prompt template filled from each item of a list or a pandas object, run concurrently.

    answers = llm_notebook.map("Summarise in one line: {review}", df, model="gpt-4o-mini")
    df["summary"] = answers          # a Series with df's index
    answers.usage                    # summed Usage(input, output) of every request made
    answers.errors                   # {label: message} of the items that failed
    answers = answers.retry_failed() # runs only the failed ones again, keeps the rest

An interrupt cancels what is in flight and raises `MapInterrupted`; the finished answers are
kept: `llm_notebook.last_map()` returns them, and its `.retry_failed()` runs the rest.

With the answer cache on (the default in a notebook), every row's answer is stored as it
finishes, so running the same map again after an interrupt, an error or a kernel restart sends
only the rows still missing (`answers.replayed`, `answers.sent` count both). `max_cost=` stops
the map before a request would pass that many dollars (`MapBudgetReached`, finished rows kept);
`dry_run=True` sends nothing and returns a `MapPlan`: rows the cache answers, tokens and cost
projected from a sample of the others.

`schema=` asks every row for JSON matching it (`multi=True`: a list of such items); an answer
that does not fit is asked once more, as the next turn, with what was wrong, and the result is
a DataFrame of typed columns (see `typed_answers`), the rows that still do not fit in `.errors`.

`batch=True` sends the rows through the provider's batch engine instead (OpenAI's Batch API,
Anthropic's Message Batches: half the price, within 24 hours) and returns at once with a durable
`BatchJob` (see `jobs`). This module is also callable: `llm_notebook.batch(job_id)` reattaches
to such a job (`jobs.batch`). A package attribute cannot be both a submodule and a function,
since importing the submodule sets the attribute to it, so the module itself takes the call and
`from llm_notebook import batch` keeps meaning this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import inspect
import string
import sys
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import budget as budgets
from . import cache, runner
from .errors import LLMNotebookError, ModelError
from .keys import Secret
from .responses import Usage

__all__ = ["MapBudgetReached", "MapInterrupted", "MapPlan", "MapResult", "TemplateError",
           "last_map", "map"]

#: Seconds before the first retry of a failed item; each further retry waits twice as long.
RETRY_DELAY = 0.5

_last_result: Any = None


class TemplateError(LLMNotebookError, ValueError):
    """The template does not fit the items (a field they lack, or a malformed `{}`)."""


class MapInterrupted(KeyboardInterrupt):
    """`map` was interrupted; `.result` holds the answers that finished (the rest are None)."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


class MapBudgetReached(LLMNotebookError):
    """`map` stopped before a request would pass a budget; `.result` holds the finished answers."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


#: Rows a dry run counts tokens of (evenly spread over the rows it would send).
DRY_RUN_SAMPLE = 20


@dataclass
class _Batch:
    """Everything one `map` call needs to run, or to run its failed items again."""

    model: Any
    prompts: list[str]
    labels: list[Any]
    system: str | None
    attachments: list[Any]
    options: dict[str, Any]
    key: str | None
    concurrency: int
    retries: int
    progress: bool
    pandas_index: Any = None
    pandas_name: Any = None
    max_cost: float | None = None
    #: The JSON schema each answer must match (of each item of a list, with `multi`), if any.
    schema: dict[str, Any] | None = None
    multi: bool = False
    cache_mode: str = "off"
    #: Of the rows being run: how many the cache answers and how many go to the model (known
    #: before the first request, for the progress display).
    planned_replays: int = 0
    planned_sends: int = 0
    #: Why the run stopped early (a budget was reached), if it did.
    stopped: str | None = None
    budget: Any = None
    refused: set[str] = field(default_factory=set)  # ids of responses refused before sending
    texts: list[str | None] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)
    attempts: list[list[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        count = len(self.prompts)
        self.texts = self.texts or [None] * count
        self.errors = self.errors or [None] * count
        self.attempts = self.attempts or [[] for _ in range(count)]

    def replayed_rows(self) -> int:
        return sum(1 for tries in self.attempts if tries and tries[-1].replayed is not None)

    def sent_rows(self) -> int:
        return sum(1 for tries in self.attempts
                   if any(r.replayed is None and r.started_utc is not None
                          and r.id not in self.refused for r in tries))

    def outcome(self) -> str:
        """How the rows were answered and what every request (retries too) cost, for the end
        of the progress display: "1,200 replayed, 800 sent · $0.41"."""
        from . import prices
        from .notebook.progress import outcome_line
        from .usage import summed

        costs = [prices.cost(r) for tries in self.attempts for r in tries
                 if r.replayed is None and r.started_utc is not None]
        return outcome_line(self.replayed_rows(), self.sent_rows(),
                            summed(costs) if costs else None)

    def copy(self) -> _Batch:
        twin = copy.copy(self)
        twin.texts, twin.errors = list(self.texts), list(self.errors)
        twin.attempts = [list(tries) for tries in self.attempts]
        twin.refused = set(self.refused)
        return twin

    def prompt_schema(self) -> dict[str, Any] | None:
        """The schema each request carries: the map's, or a list of its items with `multi`."""
        if self.schema is None or not self.multi:
            return self.schema
        from .schemas import multi_schema

        return multi_schema(self.schema)

    def new_response(self, position: int):
        response = self.model.prompt(self.prompts[position], attachments=self.attachments,
                                     system=self.system, schema=self.prompt_schema(),
                                     key=self.key, **self.options)
        if self.budget is not None:
            budgets.bind(response, self.budget)
        return response

    def planned_responses(self, positions: list[int]) -> list[tuple[Any, Any]]:
        """(response, stored answer or None) for each row: its mode settled (and its answer
        looked up) in the caller's context, which the runner's threads do not share."""
        responses = [self.new_response(position) for position in positions]
        return list(zip(responses, cache.bind(responses, self.cache_mode)))

    def unfinished(self) -> list[int]:
        return [i for i, text in enumerate(self.texts) if text is None]


class _Outcome:
    """What `map` results add to their texts: usage, errors, responses, retry_failed()."""

    _batch: _Batch | None = None

    def _run_record(self) -> _Batch:
        if self._batch is None:
            raise ValueError("This is a copy of a map() result, which keeps only the texts: "
                             "use the result map() returned to read usage or retry failures")
        return self._batch

    @property
    def usage(self) -> Usage:
        """Summed token usage of every request made, retries included."""
        return _sum_usage(r for tries in self._run_record().attempts for r in tries)

    @property
    def errors(self) -> dict[Any, str]:
        """`{label: message}` of the items without an answer (list position or pandas label)."""
        batch = self._run_record()
        return {batch.labels[i]: batch.errors[i] or "not run"
                for i in batch.unfinished()}

    @property
    def replayed(self) -> int:
        """Rows answered from the answer cache (nothing sent for them)."""
        return self._run_record().replayed_rows()

    @property
    def sent(self) -> int:
        """Rows for which a request went to the model (retries not counted again)."""
        return self._run_record().sent_rows()

    @property
    def responses(self) -> list[Any]:
        """The last response of each item, in input order (None for items never started)."""
        return [tries[-1] if tries else None for tries in self._run_record().attempts]

    def retry_failed(self, *, max_cost: float | None = ...):
        """A new result: the finished answers kept, the failed or unfinished ones run again,
        with a fresh `max_cost` (by default the one the map was given)."""
        batch = self._run_record().copy()
        if max_cost is not ...:
            batch.max_cost = max_cost
        return _execute(batch, batch.unfinished())


class MapResult(_Outcome, list):
    """The answers of `map` over a list, in input order; failed items are None."""

    def __reduce__(self):
        return (list, (list(self),))


#: The pandas flavours of MapResult: the answers with the input's index, and with a schema
#: one typed column per field.
_PANDAS_RESULTS = {"MapSeries": "Series", "MapFrame": "DataFrame"}


@functools.cache
def _pandas_type(name: str) -> type:
    """`MapSeries` or `MapFrame`, built on first use so pandas loads only when needed; what is
    derived from one is plain pandas, since it no longer matches the run."""
    import pandas as pd

    base = getattr(pd, _PANDAS_RESULTS[name])
    return type(name, (_Outcome, base), {
        "__module__": __name__, "__qualname__": name,
        "__doc__": f"The answers of `map` over pandas data as a {base.__name__}, with the "
                   "input's index; failed items missing.",
        "_constructor": property(lambda self: base)})


def __getattr__(name: str) -> Any:
    if name in _PANDAS_RESULTS:  # lets pickle find the classes built by _pandas_type()
        return _pandas_type(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def last_map():
    """The result of the latest `map` call, finished or interrupted (None before any)."""
    return _last_result


def map(template: str, items: Iterable[Any], *, model: Any = None, system: str | None = None,
        attachments: Iterable[Any] | None = None, concurrency: int = 8, retries: int = 2,
        progress: bool = True, max_cost: float | None = None, dry_run: bool = False,
        batch: bool = False, schema: Any = None, multi: bool = False, key: str | None = None,
        **options: Any):
    """Fill `template` from each item, ask the model concurrently, return the answers in order.

    `items`: a list (or any iterable) whose items fill `{}` (also `{item}`), or whose dict items
    fill fields by key; a pandas Series (values fill `{}`); a DataFrame (columns by name, `{col}`).
    `model`: a model id, alias or model object; its async variant is used when there is one,
    else the sync model runs in worker threads. At most `concurrency` requests are in flight;
    a failing item is retried `retries` times, then recorded in `.errors` and left None.
    Returns a `MapResult` (a list) or, for pandas input, a Series with the input's index; both
    also have `.usage`, `.errors`, `.responses`, `.replayed`, `.sent` and `.retry_failed()`.
    `max_cost`: dollars the map may spend; it stops before a request would pass them
    (`MapBudgetReached`). `dry_run=True`: send nothing, return a `MapPlan`.
    `schema`: the JSON schema (pydantic class, dict or DSL string) every answer must match;
    the result is then a DataFrame of typed columns with the input's index and an `error`
    column, and an answer that does not fit is asked again once. `multi=True`: each answer is
    a list of such items, one frame row per item (the row's label repeated, `item` numbering
    them). `batch=True`: send the rows through the provider's batch engine as one durable job
    and return its `BatchJob` at once (`concurrency` and `retries` do not apply, nor the
    schema's second asking; `max_cost` and the session's budget are checked against the job's
    projected cost; `dry_run=True` returns a `BatchPlan`). `key`: the API key for every request.
    """
    key = Secret(key) if isinstance(key, str) else key  # masked in tracebacks from here on
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1 (got {concurrency})")
    if retries < 0:
        raise ValueError(f"retries must be 0 or more (got {retries})")
    if multi and schema is None:
        raise TypeError("multi=True asks each row for a list of items of a schema: give "
                        "schema= too")
    if batch and "tools" in options:
        raise TypeError("batch=True does not run tools: a batch answer cannot call back into the "
                        "notebook. Leave out tools=, or run the map without batch=True")
    chosen = _pick_model(model)
    chosen.validate_options(options)
    checked_attachments = chosen.validate_attachments(attachments)
    chosen.get_key(key)
    labels, rows, pandas_index, pandas_name = _rows(items)
    run = _Batch(model=chosen, prompts=_fill_all(template, labels, rows), labels=labels,
                 system=system, attachments=checked_attachments, options=options, key=key,
                 concurrency=concurrency, retries=retries, progress=progress,
                 pandas_index=pandas_index, pandas_name=pandas_name, max_cost=max_cost,
                 cache_mode=cache.current_mode(), schema=_json_schema(schema), multi=multi)
    if max_cost is not None:
        budgets.Budget(max_cost, "the map's max_cost")  # a bad value fails before any request
    if batch:
        return _batch_job(run, dry_run)
    if dry_run:
        return MapPlan(run)
    return _execute(run, list(range(len(labels))))


def _batch_job(run: _Batch, dry_run: bool):
    """`batch=True`: the rows go to the provider's batch engine as one durable job."""
    from . import job_submit, jobs

    if dry_run:
        return jobs.BatchPlan(MapPlan(run), run.model)
    labels = (None if run.pandas_index is None else
              job_submit.pickled_labels(run.pandas_index, run.pandas_name))
    if run.prompts:
        run.new_response(0)  # checks the schema against the model, as an ordinary map does
    spec = job_submit.JobSpec(model=run.model, key=run.key, system=run.system,
                              options=run.options, attachments=run.attachments,
                              schema=run.schema, multi=run.multi, max_cost=run.max_cost)
    stored = job_submit.submit(spec, enumerate(run.prompts), total=len(run.prompts),
                               labels=labels)
    return jobs.BatchJob(stored, key=run.key, model=run.model)


def _json_schema(schema: Any) -> dict[str, Any] | None:
    if schema is None:
        return None
    from .schemas import as_json_schema

    return as_json_schema(schema)


def _pick_model(model: Any):
    if model is not None and not isinstance(model, str):
        return model
    from .plugins import registry

    entry = registry.entry(model)
    return entry.async_model or entry.model


def _rows(items: Iterable[Any]) -> tuple[list[Any], list[Any], Any, Any]:
    """(labels, rows, pandas index, pandas name); a DataFrame's rows are dicts of its columns."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(items, pandas.DataFrame):
        columns = [str(c) for c in items.columns]
        rows = [dict(zip(columns, values)) for values in items.itertuples(index=False, name=None)]
        return list(items.index), rows, items.index, None
    if pandas is not None and isinstance(items, pandas.Series):
        return list(items.index), list(items), items.index, items.name
    if isinstance(items, (str, bytes)):
        raise TypeError("items must be a list, a pandas Series or a DataFrame, not a single "
                        "string: wrap it in a list")
    if isinstance(items, Mapping):  # iterating would fill the template with the keys alone
        raise TypeError("items is a dict: pass pandas.Series(items) to keep its keys as the "
                        "index, or a list such as list(items.values())")
    if not isinstance(items, Iterable):
        raise TypeError(f"items must be a list, a pandas Series or a DataFrame, not "
                        f"{type(items).__name__}")
    rows = list(items)
    return list(range(len(rows))), rows, None, None


def _fill_all(template: str, labels: list[Any], rows: list[Any]) -> list[str]:
    if not isinstance(template, str):
        raise TypeError(f"template must be a str with {{}} fields, not {type(template).__name__}")
    try:
        list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"The template is not a valid {{}}-template ({exc}); "
                            "write literal braces as {{ and }}") from None
    return [_fill(template, label, row) for label, row in zip(labels, rows)]


def _fill(template: str, label: Any, row: Any) -> str:
    if isinstance(row, Mapping):
        args, fields = (), {str(k): v for k, v in row.items()}
    else:
        args, fields = (row,), {"item": row}
    try:
        return template.format(*args, **fields)
    except KeyError as exc:
        have = ", ".join(fields) or "none"
        raise TemplateError(f"The template asks for {{{exc.args[0]}}}, which item {label!r} does "
                            f"not have (its fields: {have})") from None
    except IndexError:
        raise TemplateError(f"The template has a positional {{}} but item {label!r} has named "
                            f"fields: write {{name}} with one of {', '.join(fields)}") from None
    except (AttributeError, TypeError, ValueError) as exc:
        raise TemplateError(f"The template could not be filled from item {label!r}: {exc}") from None


def _execute(batch: _Batch, positions: list[int]):
    """Run the items at `positions`, show progress, return the result (or raise MapInterrupted)."""
    global _last_result
    for position in positions:
        batch.texts[position] = batch.errors[position] = None
    first_tries = _plan_first_tries(batch, positions)
    progress = _progress_bar(len(positions), batch) if batch.progress else None
    finished = failed = 0
    interrupted = False
    try:
        with contextlib.closing(runner.relay(
                lambda emit: _run(batch, positions, first_tries, emit))) as done:
            for position in done:
                finished += 1
                failed += batch.errors[position] is not None
                if progress is not None:
                    progress.update(finished, failed)
    except KeyboardInterrupt:
        interrupted = True
        for position in positions:
            if batch.texts[position] is None and batch.errors[position] is None:
                batch.errors[position] = "interrupted" if batch.attempts[position] else "not started"
        _last_result = _result(batch)
        answered = len(positions) - len(set(positions) & set(batch.unfinished()))
        raise MapInterrupted(
            f"map interrupted with {answered} of {len(positions)} answers finished, which are kept: "
            "llm_notebook.last_map() returns them, and its .retry_failed() runs the rest",
            _last_result) from None
    finally:
        if progress is not None:
            progress.close(interrupted=interrupted, outcome=batch.outcome())
    _last_result = _result(batch)
    if batch.stopped is not None:
        raise MapBudgetReached(_stop_message(batch, positions), _last_result)
    return _last_result


def _plan_first_tries(batch: _Batch, positions: list[int]) -> dict[int, Any]:
    """Each row's first response, made now: the rows the cache answers are counted before the
    first request (`planned_replays`, `planned_sends`) and looked up only once."""
    batch.stopped = None
    batch.budget = (budgets.Budget(batch.max_cost, "the map's max_cost")
                    if batch.max_cost is not None else None)
    first_tries, replays = {}, 0
    for position, (response, found) in zip(positions, batch.planned_responses(positions)):
        first_tries[position] = response
        replays += found is not None
    batch.planned_replays, batch.planned_sends = replays, len(positions) - replays
    return first_tries


def _stop_message(batch: _Batch, positions: list[int]) -> str:
    answered = len(positions) - len(set(positions) & set(batch.unfinished()))
    again = ("run the same map again with a larger max_cost= (the answered rows replay from the "
             "answer cache at no cost)" if batch.cache_mode in ("replay", "only") else
             "call llm_notebook.last_map().retry_failed(max_cost=...) with a larger max_cost")
    return (f"map stopped: {batch.stopped} {answered} of {len(positions)} rows have answers, "
            f"kept in llm_notebook.last_map(). To go on, {again}.")

def _progress_bar(total: int, batch: _Batch):
    """A bar updated in place in a notebook (not a widget, so saved notebooks show how the map
    ended), tqdm's in a terminal."""
    from .notebook.progress import progress_display

    return progress_display(total, batch.model.model_id)


async def _run(batch: _Batch, positions: list[int], first_tries: dict[int, Any], emit) -> None:
    """At most `concurrency` workers, each taking the next item when it is free, until a budget
    stops the run."""
    todo = iter(positions)

    async def worker() -> None:
        for position in todo:
            if batch.stopped is not None:
                batch.errors[position] = "not sent: the map stopped at its budget"
                continue
            await _answer(batch, position, first_tries.pop(position, None))
            emit(position)

    await asyncio.gather(*(worker() for _ in range(min(batch.concurrency, len(positions)))))


async def _answer(batch: _Batch, position: int, first_try: Any = None) -> None:
    error: BaseException | None = None
    for attempt in range(batch.retries + 1):
        if attempt:
            await asyncio.sleep(RETRY_DELAY * 2 ** (attempt - 1))
        try:
            response = first_try or batch.planned_responses([position])[0][0]
            first_try = None
            batch.attempts[position].append(response)
            await runner.consume(response)
        except budgets.BudgetExceeded as exc:  # refused before sending: the run stops here
            batch.stopped = batch.stopped or str(exc)
            batch.refused.add(response.id)
            error = exc
            break
        except cache.CacheMiss as exc:  # cache mode "only": asking again cannot help
            batch.refused.add(response.id)
            error = exc
            break
        except Exception as exc:
            error = exc
            if isinstance(exc, ModelError) and not exc.retryable:
                break  # asking again cannot help, or the HTTP layer has already retried
            continue
        if batch.schema is None:
            batch.texts[position] = response.text_or_raise()
        else:
            await _fit_schema(batch, position, response)
        return
    batch.errors[position] = str(error)


async def _fit_schema(batch: _Batch, position: int, response: Any) -> None:
    """Keep the row's answer if it fits the map's schema; else ask once more, as the next turn
    of the same conversation, saying what was wrong (`structured.feedback_prompt`)."""
    from .structured import StructuredOutputError, feedback_prompt
    from .typed_answers import parsed

    text = response.text_or_raise()
    misfit = parsed(text, batch.schema, multi=batch.multi)
    if not isinstance(misfit, StructuredOutputError):
        batch.texts[position] = text
        return
    follow_up = response.reply(feedback_prompt(misfit, batch.schema, multi=batch.multi),
                               schema=batch.prompt_schema(), key=batch.key, **batch.options)
    if inspect.isawaitable(follow_up):  # an async model's reply is made on its loop
        follow_up = await follow_up
    if batch.budget is not None:
        budgets.bind(follow_up, batch.budget)
    cache.bind([follow_up], batch.cache_mode)
    batch.attempts[position].append(follow_up)
    try:
        await runner.consume(follow_up)
    except budgets.BudgetExceeded as exc:
        batch.stopped = batch.stopped or str(exc)
        batch.refused.add(follow_up.id)
        batch.errors[position] = f"{misfit} Not asked again: {exc}"
        return
    except Exception as exc:
        batch.errors[position] = f"{misfit} Asking again failed: {exc}"
        return
    text = follow_up.text_or_raise()
    again = parsed(text, batch.schema, multi=batch.multi)
    if isinstance(again, StructuredOutputError):
        batch.errors[position] = f"Asked again, the answer still does not fit: {again}"
        return
    batch.texts[position] = text


class MapPlan:
    """What a map would do, sending nothing: the rows the cache answers, and for the others the
    input tokens (counted or estimated on a sample of up to DRY_RUN_SAMPLE rows) and the cost,
    projected to them all."""

    def __init__(self, batch: _Batch) -> None:
        from .prices import estimate
        from .tokens import count_input_tokens

        self.model = batch.model.model_id
        self.rows = len(batch.prompts)
        planned = batch.planned_responses(list(range(self.rows)))
        unanswered = [response for response, found in planned if found is None]
        self.replayed = self.rows - len(unanswered)
        self.to_send = len(unanswered)
        step = max(1, len(unanswered) // DRY_RUN_SAMPLE)
        sample = unanswered[::step][:DRY_RUN_SAMPLE]
        counts = [count_input_tokens(response.prompt) for response in sample]
        self.sampled = len(sample)
        self.exact = bool(counts) and all(count.exact for count in counts)
        per_row_input = sum(c.count for c in counts) / len(counts) if counts else 0
        per_row_output = budgets.planned_output_tokens(sample[0]) if sample else 0
        #: No cap and no earlier answer of the model: the output is a guess, said to be one.
        self.output_guessed = bool(sample) and not per_row_output
        per_row_output = per_row_output or (budgets.GUESSED_OUTPUT_TOKENS if sample else 0)
        self.input_tokens = round(per_row_input * self.to_send)
        self.output_tokens = per_row_output * self.to_send
        self.cost = estimate(batch.model, self.input_tokens, self.output_tokens)

    def summary(self) -> str:
        counted = "counted" if self.exact else "estimated"
        guess = (f" (guessed at {budgets.GUESSED_OUTPUT_TOKENS} a row: give max_tokens for a "
                 "bound)" if self.output_guessed else "")
        output = (f" + ~{self.output_tokens:,} output{guess}" if self.output_tokens else "")
        unknown = "" if self.cost.known else f" ({self.cost.source})"
        return (f"map over {self.rows:,} rows with {self.model}: {self.replayed:,} answered by the "
                f"cache, {self.to_send:,} to send · ~{self.input_tokens:,} input tokens ({counted} "
                f"on a sample of {self.sampled}){output} · about {self.cost}{unknown} · nothing sent")

    def __repr__(self) -> str:
        return f"<MapPlan {self.summary()}>"

    def _repr_markdown_(self) -> str:
        from .markdown import safe_markdown

        return safe_markdown(self.summary())


def _result(batch: _Batch):
    if batch.schema is not None:
        from .typed_answers import typed_answers

        frame = typed_answers(batch.texts, {i: batch.errors[i] or "not run"
                                            for i in batch.unfinished()},
                              batch.schema, multi=batch.multi, index=batch.pandas_index)
        result = _pandas_type("MapFrame")(frame)
    elif batch.pandas_index is None:
        result = MapResult(batch.texts)
    else:
        result = _pandas_type("MapSeries")(batch.texts, index=batch.pandas_index, name=batch.pandas_name,
                                dtype=object)
    object.__setattr__(result, "_batch", batch)
    return result


def _sum_usage(responses: Iterable[Any]) -> Usage:
    inputs, outputs, details = [], [], {}
    for response in responses:
        usage = response.recorded_usage()
        if usage.input is not None:
            inputs.append(usage.input)
        if usage.output is not None:
            outputs.append(usage.output)
        for name, value in (usage.details or {}).items():
            if isinstance(value, (int, float)):
                details[name] = details.get(name, 0) + value
    return Usage(input=sum(inputs) if inputs else None, output=sum(outputs) if outputs else None,
                 details=details or None)


class _ReattachingModule(types.ModuleType):
    """This module, callable as `batch(job_id, key=None)`: see the module docstring."""

    def __call__(self, job_id: str, *, key: str | None = None):
        from .jobs import batch as reattach

        return reattach(job_id, key=key)


sys.modules[__name__].__class__ = _ReattachingModule
