"""A real HTTP server on 127.0.0.1 speaking OpenAI Chat Completions and Anthropic Messages.

Tests queue scripted replies (status, headers, body pieces written as separate TCP writes,
pauses, an abrupt end, or a function that takes the raw connection over) and read back the
requests it received, each with the time it came. A queued callable builds its reply from the
request. With nothing queued it answers like the real services: `/v1/chat/completions`,
`/v1/messages` and `/v1/models`.

Run it on its own (for the benchmark) with `python -m tests.support.fake_llm_server --chunks N`:
it prints its base URL, then answers every streamed chat completion with N small chunks.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

DEFAULT_WORDS = ["Hello ", "from ", "the ", "fake ", "server."]


@dataclass
class Recorded:
    """One request as the server saw it; `connection` tells which TCP connection carried it.

    The reply's fate is filled in as it is written: how many body pieces went out, and whether
    the client hung up before the end (`finished` is set either way). `received_at` is the
    `time.monotonic()` at which the request had come in whole.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    connection: tuple[str, int]
    received_at: float = field(default_factory=time.monotonic)
    pieces_sent: int = 0
    hung_up: bool = False
    finished: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)


@dataclass
class Reply:
    """What to send back: each piece is a separate write; `cut` drops the connection mid-body.

    `takeover(connection, recorded)`, when given, writes the whole reply itself on the raw
    socket (for replies that break HTTP); the connection is closed after it."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    pieces: Iterable[bytes] = field(default_factory=list)
    pause: float = 0.0
    cut: bool = False
    content_type: str = "text/event-stream"
    chunked: bool = True
    takeover: Callable[[socket.socket, Recorded], None] | None = None


# -- wire formats ----------------------------------------------------------------------------------
def sse(events: list[tuple[str | None, Any]], *, crlf: bool = False, keepalive: bool = False,
        split: bool = False) -> list[bytes]:
    """Server-sent events as byte pieces, one per event (two when `split`, cut mid-line)."""
    end = "\r\n" if crlf else "\n"
    pieces = [(": keep-alive" + end + end).encode()] if keepalive else []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        event = (f"event: {name}{end}" if name else "") + f"data: {text}{end}{end}"
        if keepalive:
            event = f": ping{end}" + event
        raw = event.encode()
        if split:
            cut = len(raw) // 2
            pieces += [raw[:cut], raw[cut:]]
        else:
            pieces.append(raw)
    return pieces


def openai_usage(prompt_tokens: int = 11, completion_tokens: int = 5, cached: int = 0,
                 reasoning: int = 0) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0}}


def openai_chunk(content: str | None = None, finish: str | None = None, *, model: str = "m",
                 usage: dict | None = None, empty_choices: bool = False) -> dict[str, Any]:
    choices = [] if empty_choices else [
        {"index": 0, "delta": {"content": content} if content is not None else {},
         "finish_reason": finish}]
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
             "choices": choices}
    if usage is not None or empty_choices:
        chunk["usage"] = usage
    return chunk


def openai_events(words: list[str], *, usage: dict | None = None, model: str = "m",
                  done: bool = True) -> list[tuple[None, Any]]:
    """A streamed completion: a role chunk, one chunk per word, the finish, the usage-only chunk."""
    events: list[tuple[None, Any]] = [(None, {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                                              "model": model, "choices": [{"index": 0, "delta": {
                                                  "role": "assistant", "content": ""},
                                                  "finish_reason": None}]})]
    events += [(None, openai_chunk(word, model=model)) for word in words]
    events.append((None, openai_chunk(None, "stop", model=model)))
    if usage is not None:
        events.append((None, openai_chunk(model=model, usage=usage, empty_choices=True)))
    if done:
        events.append((None, "[DONE]"))
    return events


def openai_completion(text: str, *, usage: dict | None = None, model: str = "m") -> dict[str, Any]:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}]}
    if usage is not None:
        body["usage"] = usage
    return body


def anthropic_usage(input_tokens: int = 21, output_tokens: int = 1, cache_creation: int = 0,
                    cache_read: int = 0) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_creation, "cache_read_input_tokens": cache_read}


def anthropic_delta(text: str) -> tuple[str, Any]:
    return ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": text}})


def anthropic_events(words: list[str], *, usage: dict | None = None, final_output: int = 5,
                     model: str = "claude-test", stop: bool = True) -> list[tuple[str, Any]]:
    """A streamed message as the Messages API documents it, pings included."""
    usage = usage or anthropic_usage()
    events: list[tuple[str, Any]] = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
    ]
    events += [anthropic_delta(word) for word in words]
    events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta",
                                  "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                  "usage": {"output_tokens": final_output}})]
    if stop:
        events.append(("message_stop", {"type": "message_stop"}))
    return events


def anthropic_message(text: str, *, usage: dict | None = None, model: str = "claude-test") -> dict:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": usage or anthropic_usage(output_tokens=5)}


def stream_reply(pieces: list[bytes], **kwargs: Any) -> Reply:
    return Reply(pieces=pieces, **kwargs)


def json_reply(body: Any, status: int = 200, headers: dict | None = None) -> Reply:
    return Reply(status=status, headers=headers or {}, pieces=[json.dumps(body).encode()],
                 content_type="application/json", chunked=False)


def error_reply(status: int, message: str, *, kind: str = "openai",
                headers: dict | None = None) -> Reply:
    """An error in the shape each API uses, or an HTML page as a proxy would send."""
    if kind == "html":
        page = (f"<!DOCTYPE html><html><head><title>{status} {message}</title></head>"
                f"<body><h1>{message}</h1><p>nginx</p></body></html>")
        return Reply(status=status, headers=headers or {}, pieces=[page.encode()],
                     content_type="text/html", chunked=False)
    return json_reply(error_body(message, kind), status, headers)


def error_body(message: str, kind: str = "openai") -> dict[str, Any]:
    if kind == "anthropic":
        return {"type": "error", "error": {"type": "api_error", "message": message}}
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


# -- the server --------------------------------------------------------------------------------------
class FakeLLMServer:
    """Starts on a free port; `queue()` scripts the next replies, `requests` records what came."""

    def __init__(self, models: list[str] | None = None, bench_chunks: int = 0) -> None:
        self.models = models or ["fake-small", "fake-vision"]
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._connections_changed = threading.Condition(self._lock)
        self._open_connections: set[tuple[str, int]] = set()
        self._bench = _bench_body(bench_chunks) if bench_chunks else b""
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def queue(self, *replies: Reply | Callable[[Recorded], Reply]) -> None:
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.requests.clear()

    def last_body(self) -> Any:
        return self.requests[-1].body

    def wait_closed(self, connection: tuple[str, int], timeout: float = 10) -> bool:
        """Wait until the client has closed `connection` (a `Recorded.connection`)."""
        with self._connections_changed:
            return self._connections_changed.wait_for(
                lambda: connection not in self._open_connections, timeout)

    def _connection_opened(self, connection: tuple[str, int]) -> None:
        with self._connections_changed:
            self._open_connections.add(connection)

    def _connection_closed(self, connection: tuple[str, int]) -> None:
        with self._connections_changed:
            self._open_connections.discard(connection)
            self._connections_changed.notify_all()

    def _next_reply(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            reply = self._replies.popleft() if self._replies else self._default_reply
        return reply(recorded) if callable(reply) else reply  # outside the lock: it may wait

    def _default_reply(self, recorded: Recorded) -> Reply:
        body = recorded.body if isinstance(recorded.body, dict) else {}
        stream = bool(body.get("stream"))
        model = body.get("model", "m")
        if recorded.path.endswith("/models"):
            return json_reply({"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": "fake"} for m in self.models]})
        if recorded.path.endswith("/chat/completions"):
            if stream and self._bench:
                return Reply(pieces=[self._bench], chunked=False)
            if stream:
                return stream_reply(sse(openai_events(DEFAULT_WORDS, model=model,
                                                      usage=openai_usage())))
            return json_reply(openai_completion("".join(DEFAULT_WORDS), model=model,
                                                usage=openai_usage()))
        if recorded.path.endswith("/messages"):
            if stream:
                return stream_reply(sse(anthropic_events(DEFAULT_WORDS, model=model)))
            return json_reply(anthropic_message("".join(DEFAULT_WORDS), model=model))
        return error_reply(404, f"No route {recorded.path}", kind="html")


def bench_words(count: int) -> list[str]:
    return [f"w{i % 10} " for i in range(count)]


def _bench_body(count: int) -> bytes:
    """The benchmark's answer, rendered once: `count` one-word chunks, then usage and [DONE]."""
    return b"".join(sse(openai_events(bench_words(count), usage=openai_usage(completion_tokens=count))))


def _handler_for(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def setup(self) -> None:
            super().setup()
            server._connection_opened(self.client_address[:2])

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                server._connection_closed(self.client_address[:2])

        def do_GET(self) -> None:
            self._answer(None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            self._answer(body)

        def _answer(self, body: Any) -> None:
            recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                body, self.client_address[:2])
            reply = server._next_reply(recorded)
            if reply.takeover is not None:
                self.close_connection = True
                try:
                    reply.takeover(self.connection, recorded)
                except OSError:  # the client hung up
                    recorded.hung_up = True
                finally:
                    recorded.finished.set()
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(sum(len(p) for p in reply.pieces)))
            self.end_headers()
            try:
                self._write_body(reply, recorded)
            except (BrokenPipeError, ConnectionResetError):
                recorded.hung_up = True
                self.close_connection = True
            finally:
                recorded.finished.set()

        def _write_body(self, reply: Reply, recorded: Recorded) -> None:
            for index, piece in enumerate(reply.pieces):
                if index and reply.pause:
                    time.sleep(reply.pause)
                elif index and reply.chunked:
                    time.sleep(0.001)  # let each piece arrive in its own TCP segment
                if reply.chunked:
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
                recorded.pieces_sent += 1
            if reply.cut:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply.chunked:
                self.wfile.write(b"0\r\n\r\n")

    return Handler


# -- pytest fixtures (registered for every test by tests/conftest.py's pytest_plugins) -------------
@pytest.fixture(scope="session")
def fake_llm_server():
    """One loopback server for the whole session."""
    server = FakeLLMServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm_server(fake_llm_server, monkeypatch):
    """The session's server, emptied, with the OpenAI and Anthropic models pointed at it."""
    fake_llm_server.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm_server.openai_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm_server.url)
    return fake_llm_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=20_000, help="chunks per streamed answer")
    args = parser.parse_args()
    server = FakeLLMServer(bench_chunks=args.chunks).start()
    print(server.openai_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
