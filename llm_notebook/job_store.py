"""Where batch jobs are kept, so that a kernel restart, a closed laptop or another notebook can
reattach to them.

`batch_jobs.json` in the user directory (written atomically under a lock, as every user file)
holds one record per job: its model and base URL, the provider's batch ids, statuses and counts,
when it was created, and what it was asked (system prompt, options, schema). The rows, the
request files and the results live in the job's folder, `batch_jobs/<job id>/`. No key is kept.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import LLMNotebookError
from .paths import user_dir
from .userfiles import JsonFile

JOBS_FILE = "batch_jobs.json"
JOBS_FOLDER = "batch_jobs"

jobs_file = JsonFile(JOBS_FILE)


class UnknownJobError(LLMNotebookError, KeyError):
    """No job has this id (ours, or one of its provider batches')."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def folder(job_id: str, *, create: bool = False) -> Path:
    """The job's folder in the user directory."""
    path = user_dir(create=create) / JOBS_FOLDER / job_id
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def save(record: dict[str, Any]) -> None:
    jobs_file.update(lambda records: records.__setitem__(record["id"], record))


def change(job_id: str, edit: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """Apply `edit` to the stored record under the lock; the record as stored."""

    def apply(records: dict[str, Any]) -> dict[str, Any]:
        record = records.get(job_id)
        if record is None:
            raise UnknownJobError(f"No batch job {job_id!r} in {jobs_file.path}")
        edit(record)
        return record

    return jobs_file.update(apply)


def forget(job_id: str) -> None:
    """Remove a job that was never submitted: its record and its folder."""
    jobs_file.update(lambda records: records.pop(job_id, None))
    shutil.rmtree(folder(job_id), ignore_errors=True)


def records() -> list[dict[str, Any]]:
    """Every job's record, newest first."""
    found = [r for r in jobs_file.read().values() if isinstance(r, dict) and "id" in r]
    return sorted(found, key=lambda r: r.get("created", ""), reverse=True)


def find(job_id: str) -> dict[str, Any]:
    """The record of the job with this id, or of the job one of whose batches has it."""
    stored = jobs_file.read()
    if isinstance(stored.get(job_id), dict):
        return stored[job_id]
    for record in stored.values():
        if isinstance(record, dict) and any(part.get("batch_id") == job_id
                                            for part in record.get("parts") or ()):
            return record
    known = ", ".join(r["id"] for r in records()[:5]) or "none yet"
    raise UnknownJobError(f"No batch job {job_id!r} in {jobs_file.path} (newest: {known}); "
                          "llm_notebook.batches() lists them")


def uncollected_projection() -> tuple[Decimal, int]:
    """What the jobs not collected yet were projected to cost (the share of each job's requests
    not collected), and how many jobs that is: their answers are billed, or will be, but are
    not in the session's costs until collected, so a budget counts this as spent."""
    total, jobs = Decimal(0), 0
    for record in records():
        parts = [part for part in record.get("parts") or () if isinstance(part, dict)]
        requests = sum(part.get("requests") or 0 for part in parts)
        waiting = sum(part.get("requests") or 0 for part in parts if not part.get("collected"))
        try:
            projected = Decimal((record.get("estimate") or {}).get("dollars"))
        except (InvalidOperation, TypeError, ValueError):  # unknown: nothing a budget can count
            continue
        if waiting and projected.is_finite():
            total += projected * waiting / requests
            jobs += 1
    return total, jobs
