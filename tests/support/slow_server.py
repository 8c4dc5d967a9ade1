"""A loopback OpenAI-compatible chat server that answers slowly, on purpose.

It waits `delay` seconds before answering, streams the answer word by word `interval` seconds
apart, and counts what a test wants to know: requests, the most in flight at once, and clients
that hung up mid-stream. Run it in a thread (`SlowServer().start()`) or as a process
(`python -m tests.support.slow_server --delay 0.1`, which prints its URL).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many clients connect at once; the default backlog of 5 drops some


class SlowServer:
    """`hold_until=N` keeps every request waiting until N are in flight at once (or 30 s pass),
    so a test of concurrency needs no timing; `wait_for(condition)` waits on the counts."""

    def __init__(self, delay: float = 0.0, interval: float = 0.0, words: int = 5,
                 hold_until: int = 0) -> None:
        self.delay, self.interval, self.words = delay, interval, words
        self.hold_until = hold_until
        self.requests = self.in_flight = self.most_in_flight = self.hang_ups = 0
        self._lock = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> SlowServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, condition, timeout: float = 30.0) -> bool:
        """Wait until `condition(server)` holds (it is checked whenever a count changes)."""
        with self._lock:
            return self._lock.wait_for(lambda: condition(self), timeout)

    def _count(self, change: int) -> None:
        with self._lock:
            self.in_flight += change
            if change > 0:
                self.requests += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self._lock.notify_all()
        if change > 0 and self.hold_until:
            self.wait_for(lambda s: s.most_in_flight >= s.hold_until)

    def _hung_up(self) -> None:
        with self._lock:
            self.hang_ups += 1
            self._lock.notify_all()


def _handler_for(server: SlowServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # small SSE writes go out at once, as real servers do

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def handle(self) -> None:
            try:
                super().handle()
            except ConnectionError:  # a client closed a kept-alive connection: nothing to do
                pass

        def do_GET(self) -> None:
            self._send_json({"object": "list", "data": [{"id": "slow", "object": "model"}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            server._count(+1)
            try:
                time.sleep(server.delay)
                question = str((body.get("messages") or [{}])[-1].get("content", ""))
                words = [f"w{i} " for i in range(server.words - 1)] + [question[-20:]]
                if body.get("stream"):
                    self._stream(words, body.get("model", "slow"))
                else:
                    self._send_json(_completion(body.get("model", "slow"), "".join(words)))
            except (BrokenPipeError, ConnectionResetError):
                server._hung_up()
            finally:
                server._count(-1)

        def _send_json(self, data: dict) -> None:
            payload = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _stream(self, words: list[str], model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i, word in enumerate(words):
                if i and server.interval:
                    time.sleep(server.interval)
                self._event({"id": "c1", "object": "chat.completion.chunk", "model": model,
                             "choices": [{"index": 0, "delta": {"content": word},
                                          "finish_reason": None}]})
            self._event({"id": "c1", "object": "chat.completion.chunk", "model": model,
                         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": len(words),
                                   "total_tokens": 3 + len(words)}})
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")

        def _event(self, data: dict) -> None:
            self._chunk(f"data: {json.dumps(data)}\n\n".encode())

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


def _completion(model: str, text: str) -> dict:
    return {"id": "c1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": len(text.split()),
                      "total_tokens": 3 + len(text.split())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--words", type=int, default=5)
    args = parser.parse_args()
    server = SlowServer(args.delay, args.interval, args.words)
    print(server.url, flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()


def _chunks_of(line: str, response) -> list[str]:
    """The text pieces of one server-sent event line; records usage when the event has it."""
    if not line.startswith("data: ") or line == "data: [DONE]":
        return []
    event = json.loads(line[len("data: "):])
    if event.get("usage"):
        response.set_usage(input=event["usage"]["prompt_tokens"],
                           output=event["usage"]["completion_tokens"])
    return [c["delta"]["content"] for c in event["choices"] if c["delta"].get("content")]


def _request(prompt) -> dict:
    return {"model": "slow", "stream": True, "messages": [{"role": "user", "content": prompt.prompt}]}


def loopback_models(url: str, model_id: str = "loopback"):
    """A sync and an async model that stream from `url` with httpx, for the runner's tests.

    Like real plugins they reuse their HTTP client: one for the sync model (httpx.Client is
    thread-safe), one per event loop for the async model.
    """
    import asyncio

    import httpx

    from llm_notebook import AsyncModel, Model

    class LoopbackChat(Model):
        client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=None))

        def execute(self, prompt, stream, response, conversation):
            with self.client.stream("POST", f"{url}/chat/completions",
                                    json=_request(prompt)) as answer:
                for line in answer.iter_lines():
                    yield from _chunks_of(line, response)

    class AsyncLoopbackChat(AsyncModel):
        clients: dict = {}

        async def execute(self, prompt, stream, response, conversation):
            loop = asyncio.get_running_loop()
            client = self.clients.get(loop)
            if client is None:
                client = self.clients[loop] = httpx.AsyncClient(
                    timeout=30, limits=httpx.Limits(max_connections=None))
            async with client.stream("POST", f"{url}/chat/completions",
                                     json=_request(prompt)) as answer:
                async for line in answer.aiter_lines():
                    for chunk in _chunks_of(line, response):
                        yield chunk

    LoopbackChat.model_id = AsyncLoopbackChat.model_id = model_id
    return LoopbackChat(), AsyncLoopbackChat()
