"""Loopback servers for the providers' batch engines, in their documented wire formats.

OpenAI (under `/v1`): `POST /files` (multipart, purpose `batch`), `POST /batches`
`{input_file_id, endpoint, completion_window}`, `GET /batches/{id}`, `POST /batches/{id}/cancel`,
`GET /files/{id}/content`. A batch goes validating → in_progress → finalizing → completed (or
failed when its file is invalid or passes the limits, expired when its window ends first,
cancelling → cancelled); `request_counts` {total, completed, failed}; output and error files of
`{"id", "custom_id", "response": {"status_code", "body"}, "error"}` lines.

Anthropic: `POST /v1/messages/batches` `{requests: [{custom_id, params}]}`,
`GET /v1/messages/batches/{id}`, `POST .../cancel`, `GET .../results`; `processing_status`
in_progress → canceling → ended, `request_counts` {processing, succeeded, errored, canceled,
expired}, results of `{"custom_id", "result": {"type": "succeeded", "message"} | {"type":
"errored", "error"} | {"type": "canceled"} | {"type": "expired"}}`.

`POST /v1/chat/completions` answers an ordinary request at once, as the batch would (streamed
when asked), so that an ordinary `map` can run against the same server.

Time is a `FastClock` the test moves (`advance`), or that moves by `per_poll` seconds each time a
batch's status is asked for, so a 24-hour window passes in a few polls and nothing sleeps.
Results come back in a shuffled order. Each request's answer is made by `answer(body)`: by
default "answer to: <the user's text>", and an error for a text holding "FAIL".

Run on its own (for the benchmark and the memory test) with
`python -m tests.support.batch_servers --per-poll 600`: it prints its base URL.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import email.parser
import email.policy
import itertools
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

OPENAI_KEY = "sk-batch-test-key"
ANTHROPIC_KEY = "sk-ant-batch-test-key"
START = 1_800_000_000.0
DAY = 24 * 3600


class FastClock:
    """The servers' time in seconds; moves only when told, or by `per_poll` at each status poll."""

    def __init__(self, per_poll: float = 0.0) -> None:
        self.per_poll = per_poll
        self._now = START
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def polled(self) -> None:
        self.advance(self.per_poll)


def user_text(params: dict[str, Any]) -> str:
    """The last user message's text of a chat-completions or messages body."""
    for message in reversed(params.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def default_answer(params: dict[str, Any]) -> str | None:
    """The answer's text, or None for a request that fails."""
    text = user_text(params)
    return None if "FAIL" in text else f"answer to: {text}"


@dataclass
class Batch:
    """One batch: its requests, when it was made and (if asked) cancelled, and its results once
    it has ended."""

    id: str
    kind: str  # "openai" or "anthropic"
    requests: list[tuple[str, dict[str, Any]]]
    created: float
    input_file_id: str | None = None
    invalid: list[dict[str, Any]] = field(default_factory=list)
    cancel_at: float | None = None
    order_seed: int = 0
    results: dict[str, bytes] | None = None
    polls: int = 0


class BatchServer:
    """Both providers' batch endpoints on one loopback port (see the module docstring)."""

    def __init__(self, *, clock: FastClock | None = None, validating: float = 60.0,
                 rate: float = 100.0, finalizing: float = 60.0, cancelling: float = 30.0,
                 openai_limits: tuple[int, int] = (50_000, 200 * 1024 * 1024),
                 anthropic_limits: tuple[int, int] = (100_000, 256 * 1024 * 1024),
                 answer: Callable[[dict[str, Any]], str | None] = default_answer) -> None:
        self.clock = clock or FastClock()
        self.validating, self.rate = validating, rate
        self.finalizing, self.cancelling = finalizing, cancelling
        self.openai_limits, self.anthropic_limits = openai_limits, anthropic_limits
        self.answer = answer
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, Batch] = {}
        self.calls: list[tuple[str, str, dict[str, str]]] = []  # method, path, headers
        #: Requests (method, path) held unanswered until `released` is set; `held` is set
        #: once one has arrived (its body read whole), so a test can act while it is held.
        self.hold: set[tuple[str, str]] = set()
        self.held, self.released = threading.Event(), threading.Event()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"  # Anthropic's base URL
        self.openai_url = self.url + "/v1"

    def start(self) -> BatchServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def serve_here(self) -> None:
        """Serve in this thread until interrupted (the server run on its own)."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    # -- time: how far a batch has got ------------------------------------------------------------
    def processed(self, batch: Batch, at: float) -> int:
        """Requests answered by time `at` (processing starts after validation, at `rate` a
        second, and stops when the batch is cancelled or its window ends)."""
        stop = min(at, batch.created + DAY, batch.cancel_at if batch.cancel_at is not None else at)
        running = stop - (batch.created + self.validating)
        return max(0, min(len(batch.requests), int(running * self.rate)))

    def phase(self, batch: Batch) -> tuple[str, int]:
        """(status in OpenAI's words, requests answered) now."""
        now = self.clock.now()
        if batch.invalid:
            return ("validating" if now < batch.created + self.validating else "failed"), 0
        done = self.processed(batch, now)
        if batch.cancel_at is not None:
            ended = now >= batch.cancel_at + self.cancelling
            return ("cancelled" if ended else "cancelling"), done
        if now < batch.created + self.validating:
            return "validating", 0
        finished_at = batch.created + self.validating + len(batch.requests) / self.rate
        if finished_at > batch.created + DAY:
            return ("expired" if now >= batch.created + DAY else "in_progress"), done
        if now < finished_at:
            return "in_progress", done
        return ("finalizing" if now < finished_at + self.finalizing else "completed"), done

    def outcomes(self, batch: Batch, done: int) -> list[tuple[str, dict | None, str | None]]:
        """(custom_id, answer params or None, why not) of every request, shuffled."""
        out = []
        for number, (custom_id, params) in enumerate(batch.requests):
            if number >= done:
                out.append((custom_id, None, "not run"))
                continue
            text = self.answer(params)
            out.append((custom_id, params, None) if text is not None
                       else (custom_id, None, "failed"))
        random.Random(batch.order_seed).shuffle(out)
        return out

    # -- OpenAI -------------------------------------------------------------------------------
    def openai_upload(self, fields: dict[str, Any]) -> tuple[int, Any]:
        content = fields.get("file")
        if fields.get("purpose") != "batch" or not isinstance(content, bytes):
            return 400, _openai_error("A file and purpose=batch are required")
        if len(content) > self.openai_limits[1]:
            return 400, _openai_error(f"File is {len(content)} bytes; the most is "
                                      f"{self.openai_limits[1]}")
        file_id = self.new_id("file-")
        self.files[file_id] = content
        return 200, {"id": file_id, "object": "file", "bytes": len(content),
                     "created_at": int(self.clock.now()), "filename": fields.get("filename"),
                     "purpose": "batch"}

    def openai_create(self, body: dict[str, Any]) -> tuple[int, Any]:
        content = self.files.get(body.get("input_file_id"))
        if content is None:
            return 404, _openai_error(f"No such file: {body.get('input_file_id')}")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return 400, _openai_error("endpoint must be /v1/chat/completions, window 24h")
        requests, invalid, seen = [], [], set()
        for number, raw in enumerate(content.splitlines(), 1):
            try:
                line = json.loads(raw)
                custom_id, params = line["custom_id"], line["body"]
                if line.get("url") != "/v1/chat/completions" or line.get("method") != "POST":
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                invalid.append({"code": "invalid_json_line", "line": number,
                                "message": "This line is not a valid request", "param": None})
                continue
            if custom_id in seen:
                invalid.append({"code": "duplicate_custom_id", "line": number,
                                "message": f"custom_id {custom_id} is repeated", "param": None})
            seen.add(custom_id)
            requests.append((custom_id, params))
        if len(requests) > self.openai_limits[0]:
            invalid.append({"code": "too_many_requests", "line": None, "message":
                            f"{len(requests)} requests; a batch holds at most "
                            f"{self.openai_limits[0]}", "param": None})
        batch = Batch(self.new_id("batch_"), "openai", requests, self.clock.now(),
                      input_file_id=body["input_file_id"], invalid=invalid,
                      order_seed=len(self.batches) + 1)
        self.batches[batch.id] = batch
        return 200, self.openai_batch(batch)

    def openai_batch(self, batch: Batch) -> dict[str, Any]:
        status, done = self.phase(batch)
        ended = status in ("completed", "failed", "expired", "cancelled")
        if ended and status != "failed" and batch.results is None:
            self._openai_files(batch, done)
        outcomes = self.outcomes(batch, done) if status != "validating" else []
        failed = sum(1 for _, params, why in outcomes if params is None and why == "failed")
        if ended:
            failed = len(batch.requests) - sum(1 for _, params, _ in outcomes if params)
        results = batch.results or {}
        return {"id": batch.id, "object": "batch", "endpoint": "/v1/chat/completions",
                "errors": {"object": "list", "data": batch.invalid} if batch.invalid else None,
                "input_file_id": batch.input_file_id, "completion_window": "24h",
                "status": status, "output_file_id": results.get("output"),
                "error_file_id": results.get("error"), "created_at": int(batch.created),
                "expires_at": int(batch.created + DAY),
                "cancelling_at": int(batch.cancel_at) if batch.cancel_at else None,
                "request_counts": {"total": 0 if status == "validating" else len(batch.requests),
                                   "completed": sum(1 for _, params, _ in outcomes if params),
                                   "failed": failed},
                "metadata": None}

    def _openai_files(self, batch: Batch, done: int) -> None:
        output, errors = [], []
        status, _ = self.phase(batch)
        for number, (custom_id, params, why) in enumerate(self.outcomes(batch, done)):
            line_id = f"batch_req_{batch.id}_{number}"
            if params is not None:
                body = {"id": f"chatcmpl-{number}", "object": "chat.completion",
                        "created": int(self.clock.now()), "model": params.get("model"),
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {
                            "role": "assistant", "content": self.answer(params)}}],
                        "usage": _openai_usage(params, self.answer(params))}
                output.append({"id": line_id, "custom_id": custom_id, "response": {
                    "status_code": 200, "request_id": f"req_{number}", "body": body},
                    "error": None})
            elif why == "failed":
                errors.append({"id": line_id, "custom_id": custom_id, "response": {
                    "status_code": 400, "request_id": f"req_{number}",
                    "body": _openai_error("The model refused this request")}, "error": None})
            else:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                errors.append({"id": line_id, "custom_id": custom_id, "response": None,
                               "error": {"code": code, "message": f"Not run: {code}"}})
        batch.results = {}
        for name, lines in (("output", output), ("error", errors)):
            if lines:
                file_id = self.new_id("file-")
                self.files[file_id] = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
                batch.results[name] = file_id

    def chat_completion(self, params: dict[str, Any]) -> tuple[int, Any]:
        """An ordinary (not batched) request, answered at once as the batch would answer it:
        streamed as server-sent events when asked."""
        text = self.answer(params)
        if text is None:
            return 400, _openai_error("The model refused this request")
        usage = _openai_usage(params, text)
        if not params.get("stream"):
            return 200, {"id": "chatcmpl-0", "object": "chat.completion", "model": params["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}],
                         "usage": usage}
        chunks = [{"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
                  {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                  {"choices": [], "usage": usage}]
        events = [f"data: {json.dumps({'id': 'chatcmpl-0', 'model': params['model'], **chunk})}"
                  for chunk in chunks] + ["data: [DONE]"]
        return 200, _EventStream("\n\n".join(events).encode() + b"\n\n")

    # -- Anthropic ----------------------------------------------------------------------------
    def anthropic_create(self, body: Any, size: int) -> tuple[int, Any]:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return 400, _anthropic_error("invalid_request_error", "requests must be a list")
        if len(requests) > self.anthropic_limits[0] or size > self.anthropic_limits[1]:
            return 413, _anthropic_error("request_too_large",
                                         f"{len(requests)} requests, {size} bytes: over the limit")
        pairs = [(r.get("custom_id"), r.get("params")) for r in requests]
        batch = Batch(self.new_id("msgbatch_"), "anthropic", pairs, self.clock.now(),
                      order_seed=len(self.batches) + 1)
        self.batches[batch.id] = batch
        return 200, self.anthropic_batch(batch)

    def anthropic_batch(self, batch: Batch) -> dict[str, Any]:
        status, done = self.phase(batch)
        ended = status in ("completed", "expired", "cancelled")
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        for _, params, why in self.outcomes(batch, done):
            if params is not None:
                counts["succeeded"] += 1
            elif why == "failed":
                counts["errored"] += 1
            elif not ended:
                counts["processing"] += 1
            else:
                counts["expired" if status == "expired" else "canceled"] += 1
        if ended and batch.results is None:
            batch.results = {"results": self._anthropic_results(batch, done, status)}
        return {"id": batch.id, "type": "message_batch",
                "processing_status": ("ended" if ended else
                                      "canceling" if status == "cancelling" else "in_progress"),
                "request_counts": counts, "ended_at": _iso(self.clock.now()) if ended else None,
                "created_at": _iso(batch.created), "expires_at": _iso(batch.created + DAY),
                "cancel_initiated_at": _iso(batch.cancel_at) if batch.cancel_at else None,
                "archived_at": None,
                "results_url": (f"{self.url}/v1/messages/batches/{batch.id}/results"
                                if ended else None)}

    def _anthropic_results(self, batch: Batch, done: int, status: str) -> bytes:
        lines = []
        for custom_id, params, why in self.outcomes(batch, done):
            if params is not None:
                text = self.answer(params)
                result = {"type": "succeeded", "message": {
                    "id": f"msg_{custom_id}", "type": "message", "role": "assistant",
                    "model": params.get("model"), "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn", "stop_sequence": None,
                    "usage": {"input_tokens": len(user_text(params).split()),
                              "output_tokens": len(text.split())}}}
            elif why == "failed":
                result = {"type": "errored", "error": _anthropic_error(
                    "invalid_request_error", "The model refused this request")}
            else:
                result = {"type": "expired" if status == "expired" else "canceled"}
            lines.append(json.dumps({"custom_id": custom_id, "result": result}).encode() + b"\n")
        return b"".join(lines)

    # -- routing ------------------------------------------------------------------------------
    def route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if (method, path) in self.hold:
            self.held.set()
            self.released.wait(timeout=60)
        with self._lock:
            self.calls.append((method, path, headers))
            if path.startswith("/v1/messages/batches"):
                if headers.get("x-api-key") != ANTHROPIC_KEY or "anthropic-version" not in headers:
                    return 401, _anthropic_error("authentication_error", "invalid x-api-key")
                return self._route_anthropic(method, path.removeprefix("/v1/messages/batches"),
                                             raw)
            if headers.get("authorization") != f"Bearer {OPENAI_KEY}":
                return 401, _openai_error("Incorrect API key provided")
            return self._route_openai(method, path.removeprefix("/v1"), headers, raw)

    def _route_openai(self, method: str, path: str, headers: dict[str, str],
                      raw: bytes) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["chat", "completions"]:
            return self.chat_completion(json.loads(raw))
        if method == "POST" and parts == ["files"]:
            return self.openai_upload(_multipart(headers.get("content-type", ""), raw))
        if method == "POST" and parts == ["batches"]:
            return self.openai_create(json.loads(raw))
        if parts[0] == "batches" and len(parts) >= 2 and parts[1] in self.batches:
            batch = self.batches[parts[1]]
            if method == "POST" and parts[2:] == ["cancel"]:
                if self.phase(batch)[0] not in ("completed", "failed", "expired", "cancelled"):
                    batch.cancel_at = batch.cancel_at or self.clock.now()
                return 200, self.openai_batch(batch)
            if method == "GET" and len(parts) == 2:
                batch.polls += 1
                self.clock.polled()
                return 200, self.openai_batch(batch)
        if method == "GET" and parts[0] == "files" and parts[2:] == ["content"]:
            content = self.files.get(parts[1])
            if content is not None:
                return 200, content
        return 404, _openai_error(f"No route {method} {path}")

    def _route_anthropic(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        parts = [p for p in path.strip("/").split("/") if p]
        if method == "POST" and not parts:
            try:
                body = json.loads(raw)
            except ValueError:
                return 400, _anthropic_error("invalid_request_error", "body is not JSON")
            return self.anthropic_create(body, len(raw))
        batch = self.batches.get(parts[0]) if parts else None
        if batch is None:
            return 404, _anthropic_error("not_found_error", f"No batch {path}")
        if method == "POST" and parts[1:] == ["cancel"]:
            if self.phase(batch)[0] not in ("completed", "expired", "cancelled"):
                batch.cancel_at = batch.cancel_at or self.clock.now()
            return 200, self.anthropic_batch(batch)
        if method == "GET" and parts[1:] == ["results"] and batch.results:
            return 200, batch.results["results"]
        if method == "GET" and len(parts) == 1:
            batch.polls += 1
            self.clock.polled()
            return 200, self.anthropic_batch(batch)
        return 404, _anthropic_error("not_found_error", f"No route {method} {path}")


class _EventStream(bytes):
    """A body sent as text/event-stream."""


def _openai_usage(params: dict[str, Any], text: str | None) -> dict[str, int]:
    prompt = len(user_text(params).split())
    completion = len((text or "").split())
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _openai_error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


def _anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _iso(seconds: float) -> str:
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """A multipart/form-data body's fields: text fields as str, the file as bytes (and its
    name under "filename")."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        if filename:
            fields[name], fields["filename"] = payload, filename
        else:
            fields[name] = payload.decode()
    return fields


def _handler_for(server: BatchServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._answer(b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._answer(self.rfile.read(length) if length else b"")

        def _answer(self, raw: bytes) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = server.route(self.command, self.path, headers, raw)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            kind = ("text/event-stream" if isinstance(body, _EventStream) else
                    "application/octet-stream" if isinstance(body, bytes) else "application/json")
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def batch_server(monkeypatch):
    """A running server, both providers' models pointed at it with its keys; its clock moves
    ten minutes at each status poll."""
    server = BatchServer(clock=FastClock(per_poll=600)).start()
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    yield server
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-poll", type=float, default=600.0,
                        help="server seconds that pass at each status poll")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests answered a second")
    args = parser.parse_args()
    server = BatchServer(clock=FastClock(per_poll=args.per_poll), rate=args.rate)
    print(server.url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_here()


if __name__ == "__main__":
    main()
