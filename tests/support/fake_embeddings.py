"""`/v1/embeddings` replies for the loopback server (tests/support/fake_llm_server.py).

Queue `embeddings_reply()` once per request expected: it answers as OpenAI does, in the
`encoding_format` asked for (floats, or base64 float32), with one vector per input in `data` and
the input's word count as `prompt_tokens`. The vector of a text starts with the text's length,
so a test can tell which input each row came from.

Run on its own (for the benchmark), `python -m tests.support.fake_embeddings --delay 0.05`
prints its base URL, then answers every `POST /v1/embeddings` that way after `delay` seconds.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.fake_llm_server import Recorded, Reply, json_reply

DIMENSIONS = 8


def fake_vector(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """`len(text)`, then numbers fixed by the text (exact in float32)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [float(len(text))] + [digest[i] / 8 for i in range(dimensions - 1)]


def embeddings_body(texts: list[str], encoding_format: str | None, model: str,
                    dimensions: int = DIMENSIONS) -> dict:
    data = []
    for index, text in enumerate(texts):
        vector = fake_vector(text, dimensions)
        if encoding_format == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(len(text.split()) for text in texts)
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def embeddings_reply(*, dimensions: int = DIMENSIONS, gate: threading.Event | None = None,
                     started: threading.Semaphore | None = None,
                     ) -> Callable[[Recorded], Reply]:
    """A reply to one embeddings request. With `started` it is released as the request
    arrives; with `gate` the reply waits for it to be set (at most 30 s) before answering."""

    def reply(recorded: Recorded) -> Reply:
        if started is not None:
            started.release()
        if gate is not None:
            gate.wait(30)
        body = recorded.body
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return json_reply(embeddings_body(texts, body.get("encoding_format"),
                                          body.get("model", "m"), dimensions))

    return reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # clients connect at once; the default backlog of 5 drops some


def serve(delay: float) -> ThreadingHTTPServer:
    """A server answering every embeddings request after `delay` seconds (for the benchmark)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once, as real servers send

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            time.sleep(delay)
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            payload = json.dumps(embeddings_body(texts, body.get("encoding_format"),
                                                 body.get("model", "m"))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return _Server(("127.0.0.1", 0), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    server = serve(parser.parse_args().delay)
    print(f"http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
