"""`/v1/embeddings` replies for the loopback server (tests/support/fake_llm_server.py).

Queue `embeddings_reply()` once per request expected: it answers as OpenAI does, in the
`encoding_format` asked for (floats, or base64 float32), with one vector per input in `data` and
the input's word count as `prompt_tokens`. The vector of a text starts with the text's length,
so a test can tell which input each row came from.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
from collections.abc import Callable

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
