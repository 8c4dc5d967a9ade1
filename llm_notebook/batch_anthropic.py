"""Anthropic's Message Batches: `POST /v1/messages/batches` with `{"requests": [{custom_id,
params}]}` (streamed here from the request file), polled at `GET /v1/messages/batches/{id}`
(`processing_status` in_progress, canceling, ended), cancelled with `POST .../cancel`; once
ended, `GET .../results` (its `results_url`) streams one JSONL result per request, in any
order, each succeeded, errored, canceled or expired.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .batch_engine import (
    NOT_RUN,
    Access,
    BatchEngine,
    InterruptHold,
    Outcome,
    counts_summary,
)
from .batch_http import send
from .batch_spool import MB, Limits, Part, jsonl_line
from .errors import ModelError
from .http_errors import server_message

NAME = "Anthropic Message Batches"
_PREFIX, _SEPARATOR, _SUFFIX = b'{"requests":[', b",", b"]}"
#: One batch: at most this many requests, and this many bytes of request body.
LIMITS = Limits(requests=100_000, bytes=256 * MB, framing=len(_PREFIX) + len(_SUFFIX))
#: Bytes of the request file read at a time while it is sent.
_READ = 1024 * 1024


class AnthropicBatches(BatchEngine):
    """The Message Batches endpoints of one Anthropic base URL."""

    def __init__(self, access: Access) -> None:
        super().__init__(access)
        self.url = f"{access.base_url}/v1/messages/batches"

    def line(self, custom_id: str, body: dict[str, Any]) -> bytes:
        return jsonl_line({"custom_id": custom_id, "params": body})

    def submit(self, part: Part, *, label: str, hold: InterruptHold) -> dict[str, Any]:
        """Create a batch of `part`'s requests, the body streamed from its file. Interrupts
        are held (`hold`) from the body's last bytes on, for the caller to save the batch
        first."""

        @contextlib.contextmanager
        def body():
            with open(part.path, "rb") as handle:
                yield {"content": _framed(handle, before_end=hold.start)}

        request = self.access.request(self.url)
        request.headers.update({"content-type": "application/json",
                                "content-length": str(part.bytes - 1)})
        return self._state(send(request, body), self.url)

    def refresh(self, state: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.url}/{state['batch_id']}"
        return {**state, **self._state(send(self.access.request(url, method="GET")), url,
                                       cancelled=state.get("cancel_asked", False))}

    def cancel(self, state: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.url}/{state['batch_id']}/cancel"
        return {**state, **self._state(send(self.access.request(url)), url, cancelled=True),
                "cancel_asked": True}

    def download(self, state: dict[str, Any], folder: Path, stem: str) -> list[Path]:
        """The results, once the batch says it has them: from the documented results endpoint
        at this base URL (not wherever `results_url` points, so the key goes nowhere else)."""
        if not state.get("results_url"):
            return []
        path = folder / f"{stem}-results.jsonl"
        if not path.exists():
            url = f"{self.url}/{state['batch_id']}/results"
            send(self.access.request(url, method="GET"), save_to=path)
        return [path]

    def outcome(self, line: Any) -> Outcome:
        return _outcome(line)

    def _state(self, batch: Any, url: str, *, cancelled: bool = False) -> dict[str, Any]:
        if not isinstance(batch, dict) or not isinstance(batch.get("id"), str):
            raise ModelError(f"{url} answered without a batch id: "
                             f"{server_message(batch, str(batch)[:200])}")
        counts = {name: int((batch.get("request_counts") or {}).get(name) or 0)
                  for name in ("processing", "succeeded", "errored", "canceled", "expired")}
        return {"batch_id": batch["id"],
                "status": _status(batch.get("processing_status"), counts,
                                  cancelled or bool(batch.get("cancel_initiated_at"))),
                "counts": counts_summary(sum(counts.values()), counts["succeeded"],
                                         counts["errored"] + counts["canceled"] + counts["expired"]),
                "results_url": batch.get("results_url"), "created_at": batch.get("created_at"),
                "expires_at": batch.get("expires_at"), "detail": None}


def _framed(handle, *, before_end: Callable[[], None]) -> Iterator[bytes]:
    """`{"requests":[line,line,...]}` from a file of lines, a piece at a time; `before_end()`
    is called before the closing bytes are given."""
    yield _PREFIX
    first = True
    for raw in handle:
        line = raw.rstrip(b"\n")
        if not line:
            continue
        yield line if first else _SEPARATOR + line
        first = False
    before_end()
    yield _SUFFIX


def _status(processing: Any, counts: dict[str, int], cancelled: bool) -> str:
    """Anthropic's processing status in the shared words: an ended batch is cancelled when its
    cancel was asked for, expired when requests expired, else completed."""
    if processing == "canceling":
        return "cancelling"
    if processing != "ended":
        return "in_progress"
    if cancelled:
        return "cancelled"
    return "expired" if counts["expired"] else "completed"


def _outcome(line: Any) -> Outcome:
    custom_id = str(line.get("custom_id")) if isinstance(line, dict) else ""
    result = line.get("result") if isinstance(line, dict) else None
    kind = result.get("type") if isinstance(result, dict) else None
    if kind == "succeeded":
        return Outcome(custom_id, body=result.get("message"))
    if kind == "errored":
        return Outcome(custom_id, error=_error_text(result.get("error")))
    if kind == "canceled":
        return Outcome(custom_id, error=NOT_RUN["cancelled"])
    if kind == "expired":
        return Outcome(custom_id, error=NOT_RUN["expired"])
    return Outcome(custom_id, error=f"the batch gave no result for this request: {str(line)[:200]}")


def _error_text(error: Any) -> str:
    """The message of an errored result: `{"type": "error", "error": {"type", "message"}}`, or
    the inner object alone."""
    inner = error.get("error") if isinstance(error, dict) and isinstance(error.get("error"), dict) \
        else error
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        kind = f"{inner['type']}: " if isinstance(inner.get("type"), str) else ""
        return kind + inner["message"]
    return server_message(error, str(error)[:200])


#: The engine class, as `job_submit.engine_for` makes it.
Engine = AnthropicBatches
