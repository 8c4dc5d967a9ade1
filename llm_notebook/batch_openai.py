"""OpenAI's Batch API (and OpenAI-compatible servers that offer it): a JSONL file of
chat-completion requests is uploaded (`POST /files`, purpose `batch`), a batch is created from it
(`POST /batches`), polled (`GET /batches/{id}`) and cancelled (`POST /batches/{id}/cancel`); its
output and error files (`GET /files/{id}/content`) hold one result per line, in any order,
matched to the requests by `custom_id`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from .batch_engine import BatchEngine, InterruptHold, Outcome, counts_summary
from .batch_http import send
from .batch_spool import MB, Limits, Part, jsonl_line
from .http_errors import server_message

NAME = "OpenAI Batch API"
#: One batch's input file: at most this many requests, and this many bytes.
LIMITS = Limits(requests=50_000, bytes=200 * MB)
ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"


class OpenAIBatches(BatchEngine):
    """The Files and Batches endpoints of one OpenAI-compatible base URL."""

    def line(self, custom_id: str, body: dict[str, Any]) -> bytes:
        return jsonl_line({"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body})

    def submit(self, part: Part, *, label: str, hold: InterruptHold) -> dict[str, Any]:
        """Upload `part` and start a batch of it; the batch's state. Interrupts are held
        (`hold`) from once the upload is done, for the caller to save the batch first."""
        base = self.access.base_url

        @contextlib.contextmanager
        def upload():
            with open(part.path, "rb") as handle:
                yield {"data": {"purpose": "batch"},
                       "files": {"file": (f"{label}.jsonl", handle, "application/jsonl")}}

        uploaded = send(self.access.request(f"{base}/files"), upload,
                        missing=f"{base} offers no Batch API (it has no /files endpoint): leave "
                                "out batch=True to run the map here")
        file_id = _field(uploaded, "id", f"{base}/files")
        hold.start()
        created = send(self.access.request(f"{base}/batches", {
            "input_file_id": file_id, "endpoint": ENDPOINT,
            "completion_window": COMPLETION_WINDOW, "metadata": {"llm_notebook_job": label}}))
        return {**self._state(created, f"{base}/batches"), "file_id": file_id}

    def refresh(self, state: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.access.base_url}/batches/{state['batch_id']}"
        return {**state, **self._state(send(self.access.request(url, method="GET")), url)}

    def cancel(self, state: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.access.base_url}/batches/{state['batch_id']}/cancel"
        return {**state, **self._state(send(self.access.request(url)), url)}

    def download(self, state: dict[str, Any], folder: Path, stem: str) -> list[Path]:
        """The batch's output and error files, saved in `folder` (once: kept on disk)."""
        paths = []
        for field in ("output_file_id", "error_file_id"):
            file_id = state.get(field)
            if not file_id:
                continue
            path = folder / f"{stem}-{field.split('_')[0]}.jsonl"
            if not path.exists():
                url = f"{self.access.base_url}/files/{file_id}/content"
                send(self.access.request(url, method="GET"), save_to=path)
            paths.append(path)
        return paths

    def outcome(self, line: Any) -> Outcome:
        return _outcome(line)

    def _state(self, batch: Any, url: str) -> dict[str, Any]:
        batch_id, status = _field(batch, "id", url), _field(batch, "status", url)
        counts = batch.get("request_counts") or {}
        errors = (batch.get("errors") or {}).get("data") or []
        detail = "; ".join(_error_text(e) for e in errors[:3] if isinstance(e, dict)) or None
        return {"batch_id": batch_id, "status": status,
                "counts": counts_summary(counts.get("total") or 0, counts.get("completed") or 0,
                                         counts.get("failed") or 0),
                "output_file_id": batch.get("output_file_id"),
                "error_file_id": batch.get("error_file_id"),
                "created_at": batch.get("created_at"), "expires_at": batch.get("expires_at"),
                "detail": detail}


def _field(body: Any, name: str, url: str) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get(name), str):
        from .errors import ModelError

        raise ModelError(f"{url} answered without a {name!r}: {server_message(body, str(body))}"
                         " (is this an OpenAI-compatible server that offers the Batch API?)")
    return body[name]


def _error_text(error: dict[str, Any]) -> str:
    where = f" (line {error['line']})" if error.get("line") else ""
    code = f"{error['code']}: " if error.get("code") else ""
    return f"{code}{error.get('message') or 'no message'}{where}"


def _outcome(line: Any) -> Outcome:
    """One line of an output or error file."""
    custom_id = str(line.get("custom_id")) if isinstance(line, dict) else ""
    response = line.get("response") if isinstance(line, dict) else None
    error = line.get("error") if isinstance(line, dict) else None
    if isinstance(response, dict) and isinstance(response.get("status_code"), int):
        status, body = response["status_code"], response.get("body")
        if 200 <= status < 300 and not error:
            return Outcome(custom_id, body=body)
        return Outcome(custom_id, error=f"HTTP {status}: {server_message(body, str(body)[:200])}")
    if isinstance(error, dict):
        return Outcome(custom_id, error=_error_text(error))
    return Outcome(custom_id, error=f"the batch gave no result for this request: {str(line)[:200]}")


#: The engine class, as `job_submit.engine_for` makes it.
Engine = OpenAIBatches
