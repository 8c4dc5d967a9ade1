"""Base classes for models answered by one HTTP request, streamed as server-sent events or not.

A subclass says how to build the request (`build_request`), how to read a whole answer
(`read_answer`) and how to read a stream (`stream_reader`); the sync and async `execute()` here
send it, retry before any output, and turn network trouble into `ModelError`s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from . import http
from .models import AsyncKeyModel, KeyModel
from .settings import settings

#: HTTP statuses that the error types sent inside streams stand for (OpenAI's and Anthropic's),
#: so that an error event is retried exactly when the same failure as a status would be.
ERROR_TYPE_STATUS = {"overloaded_error": 529, "api_error": 500, "rate_limit_error": 429,
                     "server_error": 500, "rate_limit_exceeded": 429}


class ErrorEvent(Exception):
    """An error the server reported inside the stream; `execute` retries it or raises it."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def error_status(data: Any) -> int | None:
    """The HTTP status an error event stands for: its numeric `code` (vLLM), else its `type`."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    for name in (error.get("type"), code):
        if isinstance(name, str) and name in ERROR_TYPE_STATUS:
            return ERROR_TYPE_STATUS[name]
    return None


class StreamReader:
    """Reads one streamed answer: `feed` returns each event's text, `end` checks and records."""

    def __init__(self, response, request: http.Request) -> None:
        self.response = response
        self.request = request

    def feed(self, event: Any) -> str | None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError

    def error_event(self, data: Any) -> ErrorEvent:
        return ErrorEvent(http.server_message(data), error_status(data))

    def incomplete(self) -> Exception:
        return self.request.error(f"The answer stream from {self.request.url} ended before the "
                                  "answer was complete. The partial answer is kept.")


def wait_after_error_event(event: ErrorEvent, started: bool, request: http.Request) -> float:
    """Seconds to wait before sending `request` again, for an error event that came before any
    text and is worth another try; otherwise the event raised as a ModelError (text already
    shown must not be repeated by a second answer)."""
    if started:
        raise request.error(f"The server reported an error mid-answer: {event.message}. "
                            "The partial answer is kept.")
    if event.status not in http.RETRY_STATUSES or request.retries >= settings.max_retries:
        tried = http.after_retries(request.retries)
        raise request.error(f"The server reported an error instead of an answer{tried}: "
                            f"{event.message}.")
    wait = http.backoff(request.retries)
    request.retries += 1
    return wait


class _HTTPWire:
    """What a protocol implements; shared by its sync and async model classes."""

    def build_request(self, prompt, stream: bool, conversation, key: str | None) -> http.Request:
        raise NotImplementedError

    def read_answer(self, body: Any, response, request: http.Request) -> str:
        raise NotImplementedError

    def stream_reader(self, response, request: http.Request) -> StreamReader:
        raise NotImplementedError


class HTTPModel(_HTTPWire, KeyModel):
    """A sync model over HTTP; one pooled connection per endpoint."""

    def execute(self, prompt, stream, response, conversation, key):
        request = self.build_request(prompt, stream, conversation, key)
        if not stream:
            answer = http.open_response(request)
            yield self.read_answer(http.read_json(answer, request), response, request)
            return
        started = False
        while True:
            answer = http.open_response(request)
            reader = self.stream_reader(response, request)
            feed = reader.feed
            failure = None
            try:
                for event in http.iter_events(answer, request):
                    text = feed(event)
                    if text:
                        started = True
                        yield text
            except ErrorEvent as exc:
                failure = exc
            finally:
                answer.close()
            if failure is None:
                reader.end()
                return
            time.sleep(wait_after_error_event(failure, started, request))


class AsyncHTTPModel(_HTTPWire, AsyncKeyModel):
    """An async model over HTTP; clients are cached per event loop."""

    async def execute(self, prompt, stream, response, conversation, key):
        request = self.build_request(prompt, stream, conversation, key)
        if not stream:
            answer = await http.aopen_response(request)
            yield self.read_answer(await http.aread_json(answer, request), response, request)
            return
        started = False
        while True:
            answer = await http.aopen_response(request)
            reader = self.stream_reader(response, request)
            feed = reader.feed
            events = http.aiter_events(answer, request)
            failure = None
            try:
                async for event in events:
                    text = feed(event)
                    if text:
                        started = True
                        yield text
            except ErrorEvent as exc:
                failure = exc
            finally:
                await events.aclose()
                await answer.aclose()
            if failure is None:
                reader.end()
                return
            await asyncio.sleep(wait_after_error_event(failure, started, request))


def set_usage_from_counts(response, usage: dict[str, Any] | None, *, input: str, output: str,
                          ignored: tuple[str, ...] = ()) -> None:
    """Set the response's usage from a provider's counts: the two named ones as input and
    output, the other non-zero ones as details."""
    if not usage:
        return
    details = {k: v for k, v in usage.items() if k not in (input, output, *ignored)}
    response.set_usage(input=usage.get(input), output=usage.get(output), details=nonzero(details))


def nonzero(counts: Any) -> Any:
    """Usage details without the zero, empty and null counts that servers pad them with."""
    if not isinstance(counts, dict):
        return counts
    kept = {}
    for name, value in counts.items():
        value = nonzero(value)
        if value not in (0, None, {}, "") and not isinstance(value, bool):
            kept[name] = value
    return kept


def system_prompt(prompt, conversation) -> str | None:
    """This prompt's system prompt, else the latest earlier one, so follow-ups keep it."""
    if prompt.system or conversation is None:
        return prompt.system
    return next((r.prompt.system for r in reversed(conversation.responses) if r.prompt.system), None)


def chat_messages(prompt, conversation, content) -> list[dict[str, Any]]:
    """Earlier turns as user/assistant messages, then this prompt; `content(text, attachments)`
    renders a user turn in the wire format."""
    messages = []
    for turn in conversation.responses if conversation is not None else ():
        messages.append({"role": "user", "content": content(turn.prompt.prompt, turn.attachments)})
        messages.append({"role": "assistant", "content": turn.text_or_raise()})
    messages.append({"role": "user", "content": content(prompt.prompt, prompt.attachments)})
    return messages
