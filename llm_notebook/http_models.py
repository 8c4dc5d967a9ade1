"""Base classes for models answered by one HTTP request, streamed as server-sent events or not.

A subclass says how to build the request (`build_request`), how to read a whole answer
(`read_answer`) and how to read a stream (`stream_reader`); `execute()` hands them to the wire
loop in `http`, run blocking for sync models and on the event loop for async ones.

Readers hand on text as plain strings (the fast path: most of a stream), and reasoning and tool
calls as `StreamEvent`s; where one piece of the answer holds several, a list of them.
"""

from __future__ import annotations

from typing import Any

from . import http
from .http_errors import malformed
from .models import AsyncKeyModel, KeyModel
from .utils import simplify_usage_dict


class StreamReader:
    """Reads one streamed answer: `feed` returns each event's text and sets `done` once the
    protocol says the answer is complete; `end` checks and records it after the stream."""

    #: Set by the wire loop once any text has been handed on.
    started = False
    done = False

    def __init__(self, response, request: http.Request) -> None:
        self.response = response
        self.request = request

    def feed(self, event: Any) -> str | None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError

    def incomplete(self) -> Exception:
        return self.request.error(f"The answer stream from {self.request.url} ended before the "
                                  "answer was complete. The partial answer is kept.")

    def malformed(self, piece: Any, why: str = "") -> Exception:
        return malformed(self.request, piece, why)

    def expect_object(self, value: Any, where: str) -> dict[str, Any]:
        """`value` if it is a JSON object, {} if it is missing, else a malformed-data error."""
        if value is None:
            return {}
        if type(value) is not dict:
            raise self.malformed(value, f"where {where} should be an object")
        return value


class _HTTPWire:
    """What a protocol implements; shared by its sync and async model classes."""

    def build_request(self, prompt, stream: bool, conversation, key: str | None) -> http.Request:
        raise NotImplementedError

    def read_answer(self, body: Any, response, request: http.Request) -> str:
        raise NotImplementedError

    def stream_reader(self, response, request: http.Request) -> StreamReader:
        raise NotImplementedError

    def _exchange(self, prompt, stream, response, conversation, key) -> http.Steps:
        request = self.build_request(prompt, stream, conversation, key)
        if stream:
            return http.exchange(request, new_reader=lambda: self.stream_reader(response, request))
        return http.exchange(request, read_body=lambda body: self.read_answer(body, response,
                                                                              request))


class HTTPModel(_HTTPWire, KeyModel):
    """A sync model over HTTP; one pooled connection per endpoint."""

    def execute(self, prompt, stream, response, conversation, key):
        """The answer's text and events, as a generator."""
        values = http.run(self._exchange(prompt, stream, response, conversation, key))
        try:
            for value in values:
                if type(value) is list:
                    yield from value
                else:
                    yield value
        finally:
            values.close()


class AsyncHTTPModel(_HTTPWire, AsyncKeyModel):
    """An async model over HTTP; clients are cached per event loop."""

    async def execute(self, prompt, stream, response, conversation, key):
        """The answer's text and events, as an async generator."""
        values = http.arun(self._exchange(prompt, stream, response, conversation, key))
        try:
            async for value in values:
                if type(value) is list:
                    for item in value:
                        yield item
                else:
                    yield value
        finally:
            await values.aclose()


def set_usage_from_counts(response, usage: dict[str, Any] | None, *, request: http.Request,
                          input: str, output: str, ignored: tuple[str, ...] = ()) -> None:
    """Set the response's usage from a provider's counts: the two named ones as input and
    output, the other non-zero ones as details. Counts of the wrong shape are malformed data."""
    if not usage:
        return
    if type(usage) is not dict:
        raise malformed(request, usage, "where usage should be an object")
    counts = {name: usage.get(name) for name in (input, output)}
    for name, count in counts.items():
        if count is not None and (type(count) is not int or count < 0):
            raise malformed(request, usage, f"where {name} should be a count")
    details = {k: v for k, v in usage.items() if k not in (input, output, *ignored)}
    response.set_usage(input=counts[input], output=counts[output],
                       details=simplify_usage_dict(details))
