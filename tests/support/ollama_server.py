"""A loopback server speaking Ollama's own API, as the `ollama` client library uses it.

`GET /api/tags` lists the models, `POST /api/show` gives a model's capabilities, and
`POST /api/chat` answers: newline-delimited JSON objects when streaming (one per word, then a
`done` object with the token counts), one object when not. Every request is kept in `requests`
with its decoded body.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORDS = ["Hello ", "from ", "a ", "llama."]
CREATED = "2026-01-01T00:00:00Z"


@dataclass
class OllamaModel:
    name: str
    digest: str
    capabilities: tuple[str, ...] = ("completion",)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class OllamaServer:
    """Serves `models` (each an OllamaModel); `words` is every answer, `prompt_eval_count` and
    `eval_count` the counts its final object reports."""

    def __init__(self, models: list[OllamaModel], words: list[str] = WORDS,
                 prompt_eval_count: int = 26, eval_count: int = 4) -> None:
        self.models = models
        self.words = words
        self.counts = {"prompt_eval_count": prompt_eval_count, "eval_count": eval_count}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def chats(self) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.requests if seen.path == "/api/chat"]

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def answer(self, seen: Seen) -> tuple[int, str, list[bytes]]:
        """(status, content type, body lines) for one request."""
        with self._lock:
            self.requests.append(seen)
        if seen.path == "/api/tags":
            return 200, "application/json", [json.dumps({"models": [
                {"name": m.name, "model": m.name, "modified_at": CREATED, "size": 1000,
                 "digest": m.digest, "details": {"format": "gguf", "family": "llama"}}
                for m in self.models]}).encode()]
        if seen.path == "/api/version":
            return 200, "application/json", [b'{"version": "0.12.0"}']
        body = seen.body if isinstance(seen.body, dict) else {}
        model = next((m for m in self.models if m.name == body.get("model")), None)
        if model is None:
            return 404, "application/json", [json.dumps(
                {"error": f"model '{body.get('model')}' not found"}).encode()]
        if seen.path == "/api/show":
            return 200, "application/json", [json.dumps({
                "modelfile": "", "parameters": "", "template": "", "modified_at": CREATED,
                "details": {"format": "gguf", "family": "llama"},
                "model_info": {"general.architecture": "llama"},
                "capabilities": list(model.capabilities)}).encode()]
        if seen.path == "/api/chat":
            return self._chat(model, body)
        return 404, "application/json", [b'{"error": "no such route"}']

    def _chat(self, model: OllamaModel, body: dict[str, Any]) -> tuple[int, str, list[bytes]]:
        final = {"model": model.name, "created_at": CREATED,
                 "message": {"role": "assistant", "content": ""}, "done": True,
                 "done_reason": "stop", "total_duration": 1000, **self.counts}
        if body.get("stream") is False:
            final["message"]["content"] = "".join(self.words)
            return 200, "application/json", [json.dumps(final).encode()]
        lines = [json.dumps({"model": model.name, "created_at": CREATED, "done": False,
                             "message": {"role": "assistant", "content": word}}).encode() + b"\n"
                 for word in self.words]
        return 200, "application/x-ndjson", lines + [json.dumps(final).encode() + b"\n"]


def _handler(server: OllamaServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._reply(None)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(json.loads(raw) if raw else None)

        def _reply(self, body: Any) -> None:
            seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                        body)
            status, kind, lines = server.answer(seen)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in lines:  # one chunk per line, as the real server flushes them
                self.wfile.write(b"%X\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    return Handler
