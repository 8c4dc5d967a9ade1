"""Provider batch jobs: `map(..., batch=True)` through OpenAI's Batch API or Anthropic's Message
Batches, which run the requests on the provider's fleet within 24 hours at half the price.

    job = llm_notebook.map("Summarise: {review}", df, model="gpt-4o-mini", batch=True)
    llm_notebook.batches()               # every job, newest first
    job = llm_notebook.batch(job.id)     # reattach by its id, from any kernel
    job.wait()                           # a progress bar driven by the provider's counts
    df["summary"] = job.result()         # aligned with df's index
    job.errors                           # {label: message} of the rows without an answer
    job = job.retry_failed()             # a new job of only those rows
    job.cancel()

A job is kept in the user directory (see `job_store`), so a kernel restart, a closed laptop or
another notebook reattaches to it. Rows the answer cache answers are not sent; the rows the
batch answered go into the cache (and the log) when the job is collected, so a later ordinary
`map`, or running the cell again, replays them.
"""

from __future__ import annotations

import datetime as _dt
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import job_store
from .batch_engine import ENDINGS, NOT_RUN, access_for
from .batch_spool import CHUNK, LineLog, read_jsonl
from .errors import LLMNotebookError, UnknownModelError
from .job_answers import AnsweredModel, RowPrompts, record
from .job_process import is_gone
from .job_submit import (
    ANSWERS_FILE,
    ATTACHMENTS_FOLDER,
    LABELS_FILE,
    ROWS_FILE,
    JobSpec,
    engine_for,
    engine_module,
    kind_of,
    read_labels,
    submit,
)
from .prices import Cost, batch_cost
from .responses import Usage

__all__ = ["BatchJob", "BatchPlan", "JobStillRunning", "batch", "batches"]

#: Seconds between two looks at a running job's status, while waiting.
POLL_SECONDS = 30.0
#: Why a part the submitting kernel never started has no results.
SUBMITTER_STOPPED = "not submitted: the kernel submitting it stopped"
#: Statuses of a job still running, least advanced first.
_RUNNING = ("unsent", "validating", "in_progress", "finalizing", "cancelling")


class JobStillRunning(KeyboardInterrupt):
    """Waiting was interrupted; the job runs on at the provider."""


class _Summarised:
    """Shown by its one-line `summary()`: as `<Class summary>`, and as Markdown in a notebook."""

    def summary(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.summary()}>"

    def _repr_markdown_(self) -> str:
        from .markdown import escape_inline

        return escape_inline(self.summary())  # it holds the provider's words: shown literally


class BatchJob(_Summarised):
    """One job: its rows sent as one or more provider batches, followed from any kernel.

    `.id`, `.model_id`, `.status`, `.counts` (`total`, `completed`, `failed` requests),
    `.created`, `.batch_ids`; `.refresh()`, `.wait()`, `.result()`, `.cancel()`, `.errors`,
    `.retry_failed()`, `.usage`, `.cost`, `.summary()`.
    """

    def __init__(self, stored: dict[str, Any], *, key: str | None = None,
                 model: Any = None) -> None:
        self._record = stored
        self._key = key
        self._model = model
        self._engine: Any = None

    # -- what the record says ---------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._record["id"]

    @property
    def model_id(self) -> str:
        return self._record["model"]

    @property
    def created(self) -> _dt.datetime:
        return _dt.datetime.fromisoformat(self._record["created"])

    @property
    def batch_ids(self) -> list[str]:
        """The provider's ids of the job's batches (one per part the limits required)."""
        return [part["batch_id"] for part in self._record["parts"] if part.get("batch_id")]

    @property
    def parent(self) -> str | None:
        """The job whose failed rows this one sends again, if any."""
        return self._record.get("parent")

    @property
    def status(self) -> str:
        """validating, in_progress, finalizing or cancelling while it runs; then completed,
        failed, expired or cancelled (as of the last look: `.refresh()` looks again)."""
        statuses = [part["status"] for part in self._record["parts"]]
        running = [s for s in statuses if s not in ENDINGS]
        if running:
            if "cancelling" in running:
                return "cancelling"
            least = min(running, key=lambda s: _RUNNING.index(s) if s in _RUNNING else 2)
            return "validating" if least == "unsent" else least
        return next((s for s in ("failed", "expired", "cancelled") if s in statuses), "completed")

    @property
    def finished(self) -> bool:
        return self.status in ENDINGS

    @property
    def counts(self) -> dict[str, int]:
        """Requests sent (`total`), answered (`completed`) and not (`failed`); once a batch
        has ended, every request of it is one or the other."""
        total = completed = failed = 0
        for part in self._record["parts"]:
            counts = part.get("counts") or {}
            total += part["requests"]
            completed += counts.get("completed", 0)
            failed += (part["requests"] - counts.get("completed", 0) if part["status"] in ENDINGS
                       else counts.get("failed", 0))
        return {"total": total, "completed": completed, "failed": failed}

    @property
    def replayed(self) -> int:
        """Rows the answer cache answered, so they were not sent."""
        return self._record["replayed"]

    @property
    def sent(self) -> int:
        return self._record["sent"]

    @property
    def folder(self) -> Path:
        return job_store.folder(self.id)

    def _kept(self, name: str) -> Path:
        """A file of the job's folder; a folder that is gone is one clear error."""
        if not self.folder.is_dir():
            raise LLMNotebookError(f"Batch job {self.id} has lost its folder {self.folder}, which "
                                   "held its rows: its results cannot be matched to them")
        return self.folder / name

    # -- the provider -----------------------------------------------------------------------------
    def _model_object(self) -> Any:
        if self._model is None:
            from .plugins import registry

            try:
                entry = registry.entry(self.model_id)
            except UnknownModelError as exc:
                raise UnknownModelError(f"Job {self.id} was made with {self.model_id!r}, which is "
                                        f"not registered in this session ({exc}); register it "
                                        "(add its endpoint) first") from None
            self._model = entry.model or entry.async_model
        return self._model

    def _engine_object(self) -> Any:
        if self._engine is None:
            model = self._model_object()
            access = access_for(model, model.get_key(self._key), self._record["base_url"])
            self._engine = engine_for(self._record["engine"], access)
        return self._engine

    def _update_parts(self, step) -> None:
        """`step(part)` on each submitted batch still running; the new states are stored."""
        states = {part["number"]: step(part) for part in self._record["parts"]
                  if part.get("batch_id") and part["status"] not in ENDINGS}
        if states:
            self._record = job_store.change(self.id, lambda stored: [
                part.update(states[part["number"]]) for part in stored["parts"]
                if part["number"] in states])

    def refresh(self) -> BatchJob:
        """Ask the provider how the job's batches stand (nothing is asked once they ended); a
        part the kernel submitting it stopped before starting is failed from then on."""
        self._fail_parts_never_started()
        self._update_parts(self._engine_object().refresh)
        return self

    def _fail_parts_never_started(self) -> None:
        def never_started(part: dict[str, Any]) -> bool:
            return part["status"] == "unsent" and not part.get("batch_id")

        if not any(never_started(part) for part in self._record["parts"]):
            return
        if not is_gone(self._record.get("submitter")):
            return  # still being submitted

        def mark(stored: dict[str, Any]) -> None:
            for part in stored["parts"]:
                if never_started(part):
                    part.update(status="failed", detail=SUBMITTER_STOPPED)

        self._record = job_store.change(self.id, mark)

    def cancel(self) -> BatchJob:
        """Ask the provider to stop the job; rows that finished before it stops are kept."""
        self._update_parts(self._engine_object().cancel)
        return self

    def wait(self, *, poll: float | None = None, progress: bool = True) -> BatchJob:
        """Wait for the job to end, with a progress bar driven by the provider's counts; then
        collect its results (into the answer cache and the log). An interrupt stops waiting,
        never the job (`JobStillRunning`)."""
        interval = POLL_SECONDS if poll is None else poll
        bar = None
        if progress:
            from .notebook.progress import progress_display

            bar = progress_display(self.counts["total"], f"batch job {self.id} ({self.model_id})",
                                   unit="requests")
        interrupted = False
        try:
            while True:
                self.refresh()
                if bar is not None:
                    bar.update(self.counts["completed"] + self.counts["failed"],
                               self.counts["failed"])
                if self.finished:
                    break
                time.sleep(interval)
        except KeyboardInterrupt:
            interrupted = True
            raise JobStillRunning(f"Stopped waiting; batch job {self.id} runs on at the provider: "
                                  "its .wait() waits again (from another kernel, find it in "
                                  "llm_notebook.batches())") from None
        finally:
            if bar is not None:
                bar.close(interrupted=interrupted)
        self._collect()
        return self

    # -- results ------------------------------------------------------------------------------
    def _rows_prompts(self) -> RowPrompts:
        model = self._model_object()
        return RowPrompts(AnsweredModel(model, self._record["base_url"]),
                          system=self._record["system"], options=self._record["options"],
                          attachments=self._attachments(), schema=self._record["schema"],
                          multi=self._record.get("multi", False))

    def _attachments(self) -> list[Any]:
        from .attachments import Attachment

        where = self.folder / ATTACHMENTS_FOLDER
        return [Attachment(type=kept["type"], url=kept["url"]) if "url" in kept else
                Attachment(type=kept["type"], content=(where / kept["file"]).read_bytes())
                for kept in self._record["attachments"]]

    def _collect(self) -> None:
        """Download and record the results of each batch that ended (once: a job collected
        in another kernel is not collected again)."""
        import filelock

        waiting = [part for part in self._record["parts"]
                   if part["status"] in ENDINGS and not part.get("collected")]
        if not waiting:
            return
        with filelock.FileLock(self._kept("collect.lock")):
            self._record = job_store.find(self.id)
            for part in self._record["parts"]:
                if part["status"] in ENDINGS and not part.get("collected"):
                    self._collect_part(part)

    def _collect_part(self, part: dict[str, Any]) -> None:
        number = part["number"]
        outcomes: Any = ()
        if part.get("batch_id"):
            engine = self._engine_object()
            outcomes = engine.outcomes(engine.download(part, self.folder, f"part-{number}"))
        prompts = {row["id"]: row["prompt"] for row in read_jsonl(self._kept(ROWS_FILE))
                   if row["part"] == number}
        record(outcomes, prompts, self._rows_prompts(),
               LineLog(self._kept(ANSWERS_FILE), flush_every=CHUNK))
        self._record = job_store.change(self.id, lambda stored: stored["parts"][number - 1]
                                        .update(collected=True))

    def _answers(self) -> tuple[list[str | None], dict[int, str]]:
        """Each row's answer (None without one) and why the others have none, by position:
        a job that sends another's failed rows again starts from that job's answers."""
        if self.parent:
            texts, errors = self._parent_job()._answers()
        else:
            texts, errors = [None] * self._record["rows"], {}
        answered = set()
        for entry in LineLog(self._kept(ANSWERS_FILE)).entries():
            position = int(entry["id"][1:])
            answered.add(position)
            texts[position] = entry.get("text")
            if "text" in entry:
                errors.pop(position, None)
            else:
                errors[position] = entry["error"]
        parts = {part["number"]: part for part in self._record["parts"]}
        for row in read_jsonl(self._kept(ROWS_FILE)):
            position = int(row["id"][1:])
            if position not in answered:
                texts[position] = None
                errors[position] = _why_no_result(parts[row["part"]])
        return texts, errors

    def _parent_job(self) -> BatchJob:
        return BatchJob(job_store.find(self.parent), key=self._key, model=self._model)

    def _labels(self) -> tuple[Any, Any]:
        if self._record["labels"] != "pandas":
            return None, None
        return read_labels(self.folder)

    def result(self, *, poll: float | None = None, progress: bool = True) -> Any:
        """The answers in input order: a Series with the input's index (a list for a list
        input); with a schema, a DataFrame of typed columns. Rows without an answer are None
        (their reasons are in `.errors`). Waits for the job first if it is still running."""
        if not self.finished:
            self.wait(poll=poll, progress=progress)
        self._collect()
        texts, errors = self._answers()
        index, name = self._labels()
        schema = self._record["schema"]
        if schema is not None:
            from .typed_answers import typed_answers

            return typed_answers(texts, errors, schema, multi=self._record.get("multi", False),
                                 index=index)
        if index is None:
            return texts
        import pandas as pd

        return pd.Series(texts, index=index, name=name, dtype=object)

    @property
    def errors(self) -> dict[Any, str]:
        """`{label: message}` of the rows without an answer (pandas label, or list position)."""
        self._collect()
        _, errors = self._answers()
        index, _ = self._labels()
        return {(index[position] if index is not None else position): message
                for position, message in sorted(errors.items())}

    def retry_failed(self, *, max_cost: float | None = None) -> BatchJob:
        """A new job sending only the rows without an answer (budgets apply, as at first);
        its `.result()` holds this job's answers and its own. This job, when none failed."""
        if not self.finished:
            raise LLMNotebookError(f"Batch job {self.id} is {self.status}: wait() for it to end "
                                   "before retrying its failed rows")
        self._collect()
        _, errors = self._answers()
        if not errors:
            return self
        prompts = self._prompts(set(errors))
        labels = self.folder / LABELS_FILE
        spec = JobSpec(model=self._model_object(), key=self._key, system=self._record["system"],
                       options=self._record["options"], attachments=self._attachments(),
                       schema=self._record["schema"], multi=self._record.get("multi", False),
                       max_cost=max_cost)
        stored = submit(spec, sorted(prompts.items()), total=self._record["rows"],
                        labels=labels.read_bytes() if labels.exists() else None, parent=self.id)
        return BatchJob(stored, key=self._key, model=self._model)

    def _prompts(self, positions: set[int]) -> dict[int, str]:
        """The prompts of the rows at `positions`, from this job or the jobs it retried."""
        found: dict[int, str] = {}
        job: BatchJob | None = self
        while job is not None and len(found) < len(positions):
            for row in read_jsonl(job._kept(ROWS_FILE)):
                position = int(row["id"][1:])
                if position in positions:
                    found.setdefault(position, row["prompt"])
            job = job._parent_job() if job.parent else None
        return found

    # -- usage and cost -----------------------------------------------------------------------
    @property
    def usage(self) -> Usage:
        """Tokens of the rows this job's batches answered (replayed rows cost nothing)."""
        inputs = outputs = 0
        for entry in LineLog(self._kept(ANSWERS_FILE)).entries():
            counted = entry.get("usage") or (None, None)
            inputs += counted[0] or 0
            outputs += counted[1] or 0
        return Usage(input=inputs, output=outputs)

    @property
    def cost(self) -> Cost:
        """What the job cost at batch prices once collected; before, what it was projected to."""
        if all(part.get("collected") for part in self._record["parts"]):
            try:
                return batch_cost(self._model_object(), self.usage, when=self.created)
            except LLMNotebookError:  # its model is not registered here, or its folder is gone
                pass
        projected = self._record["estimate"]
        dollars = projected["dollars"]
        return Cost(None if dollars is None else Decimal(dollars), projected["source"], True)

    def summary(self) -> str:
        counts = self.counts
        failed = f", {counts['failed']:,} failed" if counts["failed"] else ""
        replayed = f" · {self.replayed:,} answered by the cache" if self.replayed else ""
        cost = self.cost
        priced = (f"about {cost} at batch prices, projected" if cost.estimated else
                  f"{cost} at batch prices")
        when = self.created.astimezone().strftime("%Y-%m-%d %H:%M")
        return (f"batch job {self.id} · {self.model_id} through "
                f"{engine_module(self._record['engine']).NAME} · {self.status} · "
                f"{counts['completed'] + counts['failed']:,} of {counts['total']:,} requests "
                f"done{failed}{replayed} · created {when} · "
                f"{priced}{f' ({cost.source})' if cost.source else ''}")



def _why_no_result(part: dict[str, Any]) -> str:
    """Why a row sent in `part` has no answer (a row not sent has its reason recorded)."""
    status = part["status"]
    if status not in ENDINGS:
        return f"no result yet: the batch is {status}"
    if status == "completed":
        return "the batch ended without a result for this request"
    detail = f" ({part['detail']})" if part.get("detail") else ""
    return NOT_RUN[status] + detail


class BatchPlan(_Summarised):
    """What `map(..., batch=True, dry_run=True)` projects, sending nothing: a map's plan
    (rows the cache answers, tokens) priced at batch prices. `batches` is the fewest the
    provider's request limit allows: the plan does not build the requests, so their bytes
    (attachments above all) may need more, and the summary says "at least"."""

    def __init__(self, plan: Any, model: Any) -> None:
        self.plan = plan
        engine = engine_module(kind_of(model))
        self.engine = engine.NAME
        self.batches = -(-plan.to_send // engine.LIMITS.requests)
        self.cost = batch_cost(model, Usage(plan.input_tokens, plan.output_tokens), estimated=True)
        self.standard_cost = plan.cost

    def summary(self) -> str:
        plan = self.plan
        counted = "counted" if plan.exact else "estimated"
        output = f" + ~{plan.output_tokens:,} output" if plan.output_tokens else ""
        batches = f"at least {self.batches} batch{'es' if self.batches != 1 else ''}"
        return (f"batch job over {plan.rows:,} rows with {plan.model} through {self.engine}: "
                f"{plan.replayed:,} answered by the cache, {plan.to_send:,} to send in {batches} "
                f"· ~{plan.input_tokens:,} input tokens ({counted} on a sample of {plan.sampled})"
                f"{output} · about {self.cost} at batch prices ({self.cost.source}; "
                f"{self.standard_cost} at standard prices) · nothing sent")



class JobList(list):
    """`batches()`: the jobs, newest first; shown as a table in a notebook."""

    def _repr_markdown_(self) -> str:
        from .tables import table_data

        rows = [(job.id, job.model_id, job.status,
                 f"{job.counts['completed']:,} of {job.counts['total']:,}",
                 f"{job.created.astimezone():%Y-%m-%d %H:%M}") for job in self]
        return table_data(("job", "model", "status", "done", "created"), rows)["text/markdown"]


def batches() -> JobList:
    """Every batch job kept in the user directory, newest first (as last seen: nothing is
    asked of the providers)."""
    return JobList(BatchJob(stored) for stored in job_store.records())


def batch(job_id: str, *, key: str | None = None) -> BatchJob:
    """Reattach to a job by its id (or one of its provider batch ids), from any kernel; a job
    still running is asked how it stands. `key`: the API key, when it is not stored or in
    the environment."""
    job = BatchJob(job_store.find(job_id), key=key)
    if not job.finished:
        job.refresh()
    return job
