"""One HTTP wire loop for the sync and async models.

The loop is written once, as a generator of steps (sans-IO): it says what to do next (send the
request, read the body, stream the events, sleep, close) and decides from what happened:
following same-origin 307/308 redirects, retrying 429/5xx answers and error events that come
before any text (honouring Retry-After), mapping failures to one-line errors, ending a stream
when its protocol says it is done and keeping the answer within `settings.answer_timeout`.
`run` does the steps' I/O blocking and `arun` on the running event loop; only their innermost
loop over the events exists twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from .deadlines import Deadline, cut_off
from .errors import LLMNotebookError, ModelError
from .http_errors import (KEPT, after_retries, deadline_error, malformed, not_a_stream,
                          not_json, redirect_error, server_message, status_error, transport_error)
from .http_pools import async_client, sync_client, timeout
from .keys import redact, redact_known
from .settings import settings

#: Answers worth another try: rate limits, server failures and Anthropic's "overloaded".
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
#: Wait before the first retry when the server does not say (doubles each time, with jitter).
FIRST_BACKOFF = 1.0
#: A server asking for a longer wait than this gets an error instead of a frozen notebook.
LONGEST_WAIT = 60.0
#: Same-origin 307/308 redirects followed in a row before giving up.
MAX_REDIRECTS = 5
#: Seconds a stream that said it is done may take to end its HTTP body, which lets its
#: connection be reused; a server that holds the socket open instead is cut off after this.
END_OF_BODY_GRACE = 0.1
#: HTTP statuses that the error types sent inside streams stand for (OpenAI's and Anthropic's),
#: so that an error event is retried exactly when the same failure as a status would be.
ERROR_TYPE_STATUS = {"overloaded_error": 529, "api_error": 500, "rate_limit_error": 429,
                     "server_error": 500, "rate_limit_exceeded": 429}


def origin(url: str) -> str:
    """scheme://host:port of `url`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Request:
    """One call to a model's HTTP API, with what it takes to explain its failure."""

    url: str
    body: dict[str, Any] | None = None
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    secret: str | None = field(default=None, repr=False)
    model_name: str = ""
    key_hint: str = ""
    #: Tries repeated so far, counted across failed statuses and error events before any output,
    #: so that together they stay within `settings.max_retries`.
    retries: int = field(default=0, repr=False)

    @property
    def origin(self) -> str:
        """The pool key, so each endpoint keeps its own connections."""
        return origin(self.url)

    def error(self, message: str, *, retryable: bool = True) -> ModelError:
        """A ModelError whose message can never carry the key."""
        return ModelError(redact(message, self.secret), retryable=retryable)


class ErrorEvent(Exception):
    """An error the server reported inside the stream; the wire loop retries or raises it.

    Its message is redacted at once: the wire loop's frame holds it while deciding what to do.
    """

    def __init__(self, message: str, status: int | None) -> None:
        message = redact_known(message)
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


def error_event(data: Any) -> ErrorEvent:
    return ErrorEvent(server_message(data), error_status(data))


# -- the steps a driver carries out ---------------------------------------------------------------
@dataclass(slots=True)
class Send:
    """Send the request; the reply once its headers are in, its body not read yet."""

    request: Request
    deadline: Deadline

    def build(self, client):
        request = self.request
        return client.build_request(request.method, request.url, json=request.body,
                                    headers=request.headers, timeout=timeout(self.deadline))


@dataclass(slots=True)
class Stream:
    """Feed the reply's server-sent events to `reader`, handing on their text, until the reader
    is done or the events end; the events' iterator comes back, to read the rest with `Drain`."""

    reply: Any
    reader: Any


Read = NamedTuple("Read", [("reply", Any)])  # the whole body (which also closes the reply)
Drain = NamedTuple("Drain", [("events", Any)])  # the rest of a stream that is done
Close = NamedTuple("Close", [("reply", Any)])
Sleep = NamedTuple("Sleep", [("seconds", float)])
Emit = NamedTuple("Emit", [("value", Any)])  # hand the value on, as the answer


Steps = Generator[Any, Any, None]


# -- the wire loop ---------------------------------------------------------------------------------
def exchange(request: Request, *, new_reader: Callable[[], Any] | None = None,
             read_body: Callable[[Any], Any] = lambda body: body) -> Steps:
    """The steps of one answer. With `new_reader` (a fresh stream reader for each try) the answer
    is streamed and its text handed on as it comes; without, the JSON body is read and
    `read_body(body)` emitted."""
    deadline = Deadline(settings.answer_timeout, "answer_timeout")
    if new_reader is None:
        reply = yield from _accepted(request, deadline)
        yield from _guarded(Read(reply), request, deadline)
        yield Emit(read_body(_decode_json(reply, request)))
        return
    while True:
        reply = yield from _accepted(request, deadline)
        reader = new_reader()
        try:
            events = yield from _guarded(Stream(reply, reader), request, deadline, streaming=True)
        except ErrorEvent as event:
            failure = event
        else:
            break
        if reader.started:  # text already shown must not be repeated by a second answer
            raise request.error(f"The server reported an error mid-answer: {failure.message}."
                                f"{KEPT}")
        yield Close(reply)
        yield Sleep(_retry_wait(request, deadline, failure.status, None,
                                lambda note: _event_error(failure, request, note)))
    if reader.done:
        with cut_off(reply, time.monotonic() + END_OF_BODY_GRACE):
            with contextlib.suppress(Exception):  # the answer is whole: what follows is noise
                yield Drain(events)
    elif deadline.passed():  # the cut ended the body as if the server had
        raise deadline_error(request, deadline, streaming=True)
    reader.end()


def _guarded(step, request: Request, deadline: Deadline, *, streaming: bool = False):
    """Carry out `step` on a reply, cut off at the deadline; network trouble becomes an error."""
    import httpx
    from httpx_sse import SSEError

    with cut_off(step.reply, deadline.at):
        try:
            return (yield step)
        except SSEError as exc:
            raise not_a_stream(step.reply, request, exc) from None
        except httpx.HTTPError as exc:
            if deadline.passed():
                raise deadline_error(request, deadline, streaming=streaming) from None
            raise transport_error(exc, request, streaming=streaming) from None


def _accepted(request: Request, deadline: Deadline):
    """Send `request` until a reply with a success status: same-origin 307/308 redirects are
    followed and statuses worth another try waited out; any other status is an error."""
    import httpx

    redirects = 0
    while True:
        try:
            reply = yield Send(request, deadline)
        except httpx.HTTPError as exc:
            if deadline.passed():
                raise deadline_error(request, deadline) from None
            raise transport_error(exc, request) from None
        if reply.status_code < 300:
            return reply
        with cut_off(reply, deadline.at), contextlib.suppress(httpx.HTTPError):
            yield Read(reply)  # the body explains the status
        if reply.status_code < 400:
            _follow(reply, request, redirects)
            redirects += 1
        else:
            yield Sleep(_retry_wait(request, deadline, reply.status_code,
                                    retry_after(reply.headers),
                                    lambda note: status_error(reply, request, note=note)))


def _follow(reply, request: Request, redirects: int) -> None:
    """Point `request` where a redirect says, if it is one to follow: a 307 or 308 (which resend
    the request as it is) to the same origin (so the key goes nowhere else)."""
    location = reply.headers.get("location")
    if reply.status_code not in (307, 308):
        raise redirect_error(reply, request, location, "only 307 and 308 redirects are "
                             "followed, since they resend the request as it is; give the "
                             "address it names as the base URL instead")
    target = urljoin(request.url, location) if location else None
    if target is None or origin(target) != request.origin:
        raise redirect_error(reply, request, location, "the request (and its key) is not sent "
                             "to another address; if you trust it, give it as the base URL")
    if redirects >= MAX_REDIRECTS:
        raise redirect_error(reply, request, location,
                             f"more than {MAX_REDIRECTS} redirects in a row, so it is not followed")
    request.url = target


def _retry_wait(request: Request, deadline: Deadline, status: int | None, asked: float | None,
                refused: Callable[[str], ModelError]) -> float:
    """Seconds to wait before trying `request` again (counted on it) after a failure standing for
    HTTP `status`, of which the server asked to wait `asked`; `refused(note)` is the error when
    there is no other try."""
    if status not in RETRY_STATUSES or request.retries >= settings.max_retries:
        raise refused("")
    if asked is not None and asked > LONGEST_WAIT:
        raise refused(f"the server asks to wait {asked:.0f} s before trying again")
    wait = asked if asked is not None else backoff(request.retries)
    if not deadline.allows(wait):
        raise refused(f"waiting {wait:.1f} s to try again would pass {deadline.describe()}")
    request.retries += 1
    return wait


def _event_error(event: ErrorEvent, request: Request, note: str) -> ModelError:
    """An error event before any text, that is not (or no longer) worth another try."""
    tried = after_retries(request.retries)
    text = f"The server reported an error instead of an answer{tried}: {event.message}."
    return request.error(text + (f" Note: {note}." if note else ""), retryable=False)


def backoff(retries: int) -> float:
    """Doubling waits, jittered so that clients turned away together do not return together."""
    return FIRST_BACKOFF * 2 ** retries * random.uniform(0.5, 1.0)


def retry_after(headers) -> float | None:
    """The wait a server asks for: `retry-after-ms`, or `Retry-After` in seconds or as a date."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _decode_json(reply, request: Request) -> Any:
    try:
        return json.loads(reply.content)
    except ValueError:
        raise not_json(reply, request) from None


_scan_json = json.JSONDecoder().scan_once


def decode_event(data: str, request: Request) -> dict[str, Any]:
    """One event's JSON object; malformed data (or JSON that is no object) ends the answer with
    an error, keeping what streamed.

    Streams are thousands of small events, so the common case (nothing around the value) goes
    straight to the C scanner, which is several times quicker than `json.loads`.
    """
    try:
        value, end = _scan_json(data, 0)
        if end != len(data):
            value = json.loads(data)
    except (StopIteration, ValueError):
        try:
            value = json.loads(data)
        except ValueError:
            value = None
    if type(value) is not dict:
        raise malformed(request, data, "where a JSON object belongs")
    return value


# -- the drivers ----------------------------------------------------------------------------------
class _Progress:
    """What both drivers keep: the steps, how the last one went (`result` or `error`), and what
    was opened, to close at the end."""

    def __init__(self, steps: Steps) -> None:
        self.steps = steps
        self.result: Any = None
        self.error: Exception | None = None
        self.replies: list[Any] = []
        self.streams: list[Any] = []

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                if self.error is not None:
                    step = self.steps.throw(self.error)
                else:
                    step = self.steps.send(self.result)
            except StopIteration:
                return
            self.result = self.error = None
            yield step
            opened = self.replies if type(step) is Send else self.streams
            if self.result is not None and type(step) in (Send, Stream):
                opened.append(self.result)

    @contextlib.contextmanager
    def step(self):
        """Around one step: an exception it raises goes to the wire loop, which decides.

        The package's own errors leave their frames behind: those of the stream readers hold
        the events as the server sent them (a key it echoes among them), which a verbose
        traceback would show, and the one-line message already says all there is to say.
        """
        try:
            yield
        except LLMNotebookError as exc:
            self.error = exc.with_traceback(None)
        except Exception as exc:
            self.error = exc

    def end(self) -> list[Any]:
        """Stop the wire loop; the replies to close."""
        self.steps.close()
        return self.replies


def _send(step: Send):
    client = sync_client(step.request.origin)
    return client.send(step.build(client), stream=True)


def _read(step: Read) -> None:
    """Read the body into the reply, handing nothing on: the bytes may echo the key, and a value
    passed between frames would show in a verbose traceback's locals."""
    step.reply.read()


async def _aread(step: Read) -> None:
    await step.reply.aread()


_BLOCKING = {Send: _send, Read: _read,
             Close: lambda step: step.reply.close(), Sleep: lambda step: time.sleep(step.seconds),
             Drain: lambda step: collections.deque(step.events, maxlen=0)}


def run(steps: Steps) -> Iterator[Any]:
    """Carry out `steps` blocking, on the endpoint's pooled client; yields what they hand on."""
    from httpx_sse import EventSource

    progress = _Progress(steps)
    try:
        for step in progress:
            with progress.step():
                if type(step) is Stream:
                    reader, feed = step.reader, step.reader.feed
                    progress.result = events = EventSource(step.reply).iter_sse()
                    for event in events:
                        text = feed(event)
                        if text:
                            reader.started = True
                            yield text
                        if reader.done:
                            break
                elif type(step) is Emit:
                    yield step.value
                else:
                    progress.result = _BLOCKING[type(step)](step)
    finally:
        for events in progress.streams:
            events.close()
        for reply in progress.end():
            reply.close()


async def _asend(step: Send):
    """On the loop the whole wait for the headers can be bounded, not just each read of them."""
    import httpx

    client = await async_client(step.request.origin)
    sending = client.send(step.build(client), stream=True)
    if step.deadline.at is None:
        return await sending
    try:
        return await asyncio.wait_for(sending, step.deadline.remaining())
    except TimeoutError:
        raise httpx.ReadTimeout("the answer's deadline passed before the reply came") from None


async def _adrain(step: Drain) -> None:
    async for _ in step.events:
        pass


_ON_LOOP = {Send: _asend, Read: _aread,
            Close: lambda step: step.reply.aclose(),
            Sleep: lambda step: asyncio.sleep(step.seconds), Drain: _adrain}


async def arun(steps: Steps) -> AsyncIterator[Any]:
    """`run` on the running event loop, with that loop's pooled client."""
    from httpx_sse import EventSource

    progress = _Progress(steps)
    try:
        for step in progress:
            with progress.step():
                if type(step) is Stream:
                    reader, feed = step.reader, step.reader.feed
                    progress.result = events = EventSource(step.reply).aiter_sse()
                    async for event in events:
                        text = feed(event)
                        if text:
                            reader.started = True
                            yield text
                        if reader.done:
                            break
                elif type(step) is Emit:
                    yield step.value
                else:
                    progress.result = await _ON_LOOP[type(step)](step)
    finally:
        for events in progress.streams:
            await events.aclose()
        for reply in progress.end():
            await reply.aclose()


def get_json(request: Request) -> Any:
    """The JSON body of a plain (not streamed) call, sent with the wire loop's retries."""
    with contextlib.closing(run(exchange(request))) as values:
        return next(values)
