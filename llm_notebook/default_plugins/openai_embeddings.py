"""OpenAI's `/v1/embeddings`, and every server that speaks it (Ollama, llama.cpp, LM Studio, vLLM).

OpenAI's embedding models are registered under llm's ids and aliases; other servers' models are
added with `llm_notebook.add_openai_endpoint(..., embedding_models=[...])`. Each batch is one
request through the shared HTTP layer (pooled connections, retries of 429 and 5xx, errors of one
line with the key taken out); its token count goes to the session's usage.
"""

from __future__ import annotations

import array
import base64
import binascii
import json
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

from llm_notebook import http
from llm_notebook.embeddings import EmbeddingInputError, EmbeddingModel
from llm_notebook.http_errors import clip
from llm_notebook.plugins import hookimpl

OPENAI_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "OPENAI_BASE_URL"
ENCODINGS = ("float", "base64")
OPENAI_KEY_HINT = ("Set another with llm_notebook.set_key('openai', ...) or the OPENAI_API_KEY "
                   "environment variable, or pass key=... to embed().")

#: (model id, the model OpenAI knows, dimensions asked for, aliases), as llm registers them.
OPENAI_EMBEDDING_MODELS = (
    ("text-embedding-ada-002", "text-embedding-ada-002", None, ("ada", "ada-002")),
    ("text-embedding-3-small", "text-embedding-3-small", None, ("3-small",)),
    ("text-embedding-3-large", "text-embedding-3-large", None, ("3-large",)),
    ("text-embedding-3-small-512", "text-embedding-3-small", 512, ("3-small-512",)),
    ("text-embedding-3-large-256", "text-embedding-3-large", 256, ("3-large-256",)),
    ("text-embedding-3-large-1024", "text-embedding-3-large", 1024, ("3-large-1024",)),
)


class OpenAIEmbeddingModel(EmbeddingModel):
    """Embeddings from an OpenAI-compatible server, `batch_size` texts per request.

    `encoding_format` is what the server is asked to send ("float" or "base64", OpenAI's
    compact form); either is read, since some servers send floats whatever is asked.
    """

    batch_size = 100
    concurrency = 4

    def __init__(self, model_id: str, openai_model_id: str | None = None,
                 dimensions: int | None = None, *, base_url: str | None = None,
                 needs_key: str | None = None, key_env_var: str | None = None,
                 api_key: str | None = None, batch_size: int | None = None,
                 encoding_format: str = "float", key_hint: str = "") -> None:
        if encoding_format not in ENCODINGS:
            raise ValueError(f"encoding_format must be one of {', '.join(ENCODINGS)}, "
                             f"not {encoding_format!r}")
        self.model_id = model_id
        self.openai_model_id = openai_model_id or model_id
        self.dimensions = dimensions
        self._base_url = base_url
        self.needs_key = needs_key
        self.key_env_var = key_env_var
        self.key = api_key
        if batch_size is not None:
            self.batch_size = batch_size
        self.encoding_format = encoding_format
        self._key_hint = key_hint

    @property
    def base_url(self) -> str:
        """Given at creation, else `$OPENAI_BASE_URL` (read on each request), else OpenAI's."""
        return (self._base_url or os.environ.get(BASE_URL_ENV) or OPENAI_BASE_URL).rstrip("/")

    def check_item(self, item: Any, label: Any = None) -> str | bytes:
        """As any model checks, and no empty text: these servers refuse it (OpenAI with a 400,
        llama.cpp with a 500 after every retry)."""
        checked = super().check_item(item, label)
        if checked == "":
            where = "" if label is None else f" at {label!r}"
            raise EmbeddingInputError(f"The item{where} is an empty string, which "
                                      f"{self.model_id!r} cannot embed: drop or fill empty texts")
        return checked

    def build_request(self, items: list[str], key: str | None) -> http.Request:
        body: dict[str, Any] = {"model": self.openai_model_id, "input": items,
                                "encoding_format": self.encoding_format}
        if self.dimensions:
            body["dimensions"] = self.dimensions
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return http.Request(f"{self.base_url}/embeddings", body, headers=headers, secret=key,
                            model_name=self.openai_model_id, key_hint=self._key_hint)

    def embed_batch(self, items: Iterable[str], *, key: str | None = None) -> list[list[float]]:
        items = list(items)
        request = self.build_request(items, key)
        started = time.monotonic()
        answer = http.get_json(request)
        vectors = read_vectors(answer, len(items), request)
        record_usage(self.model_id, answer, request, time.monotonic() - started)
        return vectors


def read_vectors(answer: Any, count: int, request: http.Request) -> list[list[float]]:
    """The `count` vectors of an embeddings answer, in input order (by each item's `index`)."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or len(data) != count:
        got = f"{len(data)} vectors" if isinstance(data, list) else "no 'data' list"
        raise malformed(request, answer, f"where {count} vectors belong (it sent {got})")
    ordered: list[list[float] | None] = [None] * count
    for position, item in enumerate(data):
        index = item.get("index", position) if isinstance(item, dict) else None
        if type(index) is not int or not 0 <= index < count or ordered[index] is not None:
            raise malformed(request, item, f"where the embedding of item {position} belongs")
        ordered[index] = _vector(item.get("embedding"), index, request)
    return ordered


def _vector(value: Any, index: int, request: http.Request) -> list[float]:
    if isinstance(value, str):
        return _decode_base64(value, index, request)
    if isinstance(value, list) and value and isinstance(value[0], list):
        raise request.error(
            f"{request.url} sent one vector per token for item {index}, not one per text: the "
            f"model it serves does not pool its token vectors. Serve an embedding model there "
            f"(one with pooling) and embed with it", retryable=False)
    if (not isinstance(value, list) or not value
            or not all(type(x) in (float, int) for x in value)):
        raise malformed(request, value, f"where the vector of item {index} (numbers) belongs")
    return [float(x) for x in value]


def _decode_base64(value: str, index: int, request: http.Request) -> list[float]:
    """OpenAI's base64 form: the vector's float32 values, little-endian."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw or len(raw) % 4:
        raise malformed(request, value, f"where the base64 vector of item {index} belongs")
    floats = array.array("f", raw)
    if sys.byteorder == "big":
        floats.byteswap()
    return floats.tolist()


def malformed(request: http.Request, piece: Any, why: str) -> Exception:
    """Data of the wrong shape, quoted so the user sees what came and what was expected."""
    shown = piece if isinstance(piece, str) else json.dumps(piece, default=repr)
    return request.error(f"The server sent malformed data: {clip(shown, 200)!r} {why} "
                         f"(from {request.url})", retryable=False)


def record_usage(model_id: str, answer: dict[str, Any], request: http.Request,
                 seconds: float) -> None:
    """The request's input tokens, counted in the session's usage (as `%llm usage` shows it)."""
    from llm_notebook.usage import session_usage

    usage = answer.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if tokens is not None and (type(tokens) is not int or tokens < 0):
        raise malformed(request, usage, "where prompt_tokens should be a count")
    session_usage.record({"model": model_id, "duration_ms": round(seconds * 1000),
                          "usage": {"input": tokens, "output": None, "details": None}})


@hookimpl
def register_embedding_models(register):
    for model_id, openai_model_id, dimensions, aliases in OPENAI_EMBEDDING_MODELS:
        register(OpenAIEmbeddingModel(model_id, openai_model_id, dimensions, needs_key="openai",
                                      key_env_var="OPENAI_API_KEY", encoding_format="base64",
                                      key_hint=OPENAI_KEY_HINT),
                 aliases=aliases)
