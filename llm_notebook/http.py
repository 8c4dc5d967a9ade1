"""HTTP for the model plugins: pooled clients, retries before any output, errors users can act on.

httpx is imported inside the functions, so loading the plugins (which happens on the first model
lookup) stays cheap.
"""

from __future__ import annotations

import asyncio
import atexit
import email.utils
import html
import json
import random
import re
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ModelError
from .keys import redact
from .settings import settings

#: Answers worth another try: rate limits, server failures and Anthropic's "overloaded".
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
#: Wait before the first retry when the server does not say (doubles each time, with jitter).
FIRST_BACKOFF = 1.0
#: A server asking for a longer wait than this gets an error instead of a frozen notebook.
LONGEST_WAIT = 60.0
_USER_AGENT = "llm_notebook"


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
        """scheme://host:port: the pool key, so each endpoint keeps its own connections."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def error(self, message: str) -> ModelError:
        """A ModelError whose message can never carry the key."""
        return ModelError(redact(message, self.secret))


# -- client pools ------------------------------------------------------------------------------
_lock = threading.Lock()
_sync_clients: dict[str, Any] = {}
_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def timeout():
    """The connect and read timeouts of `settings`, read at each use so changes apply at once."""
    import httpx

    return httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)


def sync_client(origin: str):
    """The one `httpx.Client` of an endpoint, created on first use and reused by every prompt."""
    client = _sync_clients.get(origin)
    if client is None:
        import httpx

        with _lock:
            client = _sync_clients.get(origin)
            if client is None:
                if not _sync_clients:
                    atexit.register(close_sync_clients)
                client = httpx.Client(headers={"User-Agent": _USER_AGENT}, timeout=timeout())
                _sync_clients[origin] = client
    return client


def close_sync_clients() -> None:
    """Close the pooled connections (at exit, so no socket is left for the garbage collector)."""
    with _lock:
        clients = list(_sync_clients.values())
        _sync_clients.clear()
    for client in clients:
        client.close()


async def async_client(origin: str):
    """The `httpx.AsyncClient` of an endpoint for the running event loop.

    Its connections belong to one loop, so each loop gets its own clients, closed when the loop
    shuts down: the clients hold the loop, so a weak reference alone would never let it go.
    """
    import httpx

    loop = asyncio.get_running_loop()
    clients = _async_clients.get(loop)
    if clients is None:
        for old in [old for old in _async_clients if old.is_closed()]:  # closed without shutdown
            del _async_clients[old]
        clients = _async_clients[loop] = _LoopClients()
        clients.closer = _close_with_loop(loop, clients)
        await clients.closer.__anext__()
    client = clients.get(origin)
    if client is None:
        client = clients[origin] = httpx.AsyncClient(headers={"User-Agent": _USER_AGENT},
                                                     timeout=timeout())
    return client


class _LoopClients(dict):
    """One loop's clients by origin, and the generator that closes them with the loop (held here
    because the loop itself keeps only a weak reference to it)."""

    closer: Any = None


async def _close_with_loop(loop, clients: _LoopClients):
    """Waits for the life of `loop`: shutting a loop down (as `asyncio.run` and long-lived
    runners do) closes its unfinished async generators, and so this one closes the clients."""
    try:
        yield
    finally:
        _async_clients.pop(loop, None)
        for client in clients.values():
            await client.aclose()


def _build(client, request: Request):
    return client.build_request(request.method, request.url, json=request.body,
                                headers=request.headers, timeout=timeout())


# -- sending, with retries before any output ------------------------------------------------------
def open_response(request: Request):
    """Send `request`; the response once its status is a success, its body not read yet."""
    import httpx

    client = sync_client(request.origin)
    while True:
        try:
            response = client.send(_build(client, request), stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc, request) from None
        if response.status_code < 400:
            return response
        try:
            response.read()
        except httpx.HTTPError:
            pass
        finally:
            response.close()
        time.sleep(_wait_before_retry(response, request))


async def aopen_response(request: Request):
    """`open_response` for async models, on the running loop's client."""
    import httpx

    client = await async_client(request.origin)
    while True:
        try:
            response = await client.send(_build(client, request), stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc, request) from None
        if response.status_code < 400:
            return response
        try:
            await response.aread()
        except httpx.HTTPError:
            pass
        finally:
            await response.aclose()
        await asyncio.sleep(_wait_before_retry(response, request))


def _wait_before_retry(response, request: Request) -> float:
    """Seconds to wait before the next try (counted on `request`), or the error to raise when
    there is none."""
    if response.status_code not in RETRY_STATUSES or request.retries >= settings.max_retries:
        raise status_error(response, request, retries=request.retries)
    asked = retry_after(response.headers)
    if asked is not None and asked > LONGEST_WAIT:
        raise status_error(response, request, retries=request.retries,
                           note=f"the server asks to wait {asked:.0f} s before trying again")
    wait = asked if asked is not None else backoff(request.retries)
    request.retries += 1
    return wait


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


# -- reading answers --------------------------------------------------------------------------------
def read_json(response, request: Request) -> Any:
    """The JSON body of a non-streamed answer."""
    import httpx

    try:
        response.read()
    except httpx.HTTPError as exc:
        raise transport_error(exc, request) from None
    finally:
        response.close()
    return _decode_json(response, request)


async def aread_json(response, request: Request) -> Any:
    import httpx

    try:
        await response.aread()
    except httpx.HTTPError as exc:
        raise transport_error(exc, request) from None
    finally:
        await response.aclose()
    return _decode_json(response, request)


def _decode_json(response, request: Request) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise request.error(f"{request.url} answered with {kind}, not JSON: "
                            f"{summarize(response.text)}") from None


def iter_events(response, request: Request):
    """The server-sent events of a streamed answer; a broken stream becomes a ModelError."""
    import httpx
    from httpx_sse import EventSource, SSEError

    try:
        yield from EventSource(response).iter_sse()
    except SSEError as exc:
        raise _not_a_stream(response, request, exc) from None
    except httpx.HTTPError as exc:
        raise transport_error(exc, request, streaming=True) from None


async def aiter_events(response, request: Request):
    import httpx
    from httpx_sse import EventSource, SSEError

    try:
        async for event in EventSource(response).aiter_sse():
            yield event
    except SSEError as exc:
        raise _not_a_stream(response, request, exc) from None
    except httpx.HTTPError as exc:
        raise transport_error(exc, request, streaming=True) from None


def _not_a_stream(response, request: Request, exc: Exception) -> ModelError:
    kind = response.headers.get("content-type", "no content type")
    return request.error(f"{request.url} answered with {kind} instead of an event stream ({exc})")


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
        raise request.error(f"The answer stream from {request.url} sent malformed data "
                            f"{summarize(data)!r} where a JSON object belongs. "
                            "The partial answer is kept.")
    return value


# -- errors users can act on ----------------------------------------------------------------------
_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_INVISIBLE = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)


def summarize(text: str, limit: int = 300) -> str:
    """Readable one-line text from a body that may be HTML (an error page from a proxy)."""
    if "<" in text and ">" in text:
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", _INVISIBLE.sub(" ", text))
        text = html.unescape(text)
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def server_message(body: Any, fallback: str = "") -> str:
    """The server's own explanation from an error body in the usual JSON shapes, on one line
    (validation errors come indented over several) so that it reads as part of ours."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, str):
            return _one_line(error)
        if isinstance(error, dict):
            for name in ("message", "detail", "msg"):
                if isinstance(error.get(name), str):
                    return _one_line(error[name])
        if isinstance(body.get("detail"), str):
            return _one_line(body["detail"])
        return summarize(json.dumps(body))
    return fallback


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _response_message(response) -> str:
    try:
        text = response.text
    except Exception:  # body never read (stream closed early)
        return ""
    try:
        return server_message(json.loads(text), summarize(text))
    except ValueError:
        return summarize(text)


def status_error(response, request: Request, *, retries: int = 0, note: str = "") -> ModelError:
    """An HTTP error status as a ModelError saying what to do next."""
    status = response.status_code
    message = _response_message(response) or response.reason_phrase
    detail = f"HTTP {status} from {request.url}: {message}"
    tried = after_retries(retries)
    if status in (401, 403):
        text = f"The API key was rejected ({detail}). {request.key_hint}".rstrip()
    elif status == 404:
        text = (f"Model {request.model_name!r} was not found, or the address is wrong ({detail}). "
                "Check the model id and the endpoint's base URL.")
    elif status == 429:
        text = f"Rate limited{tried} ({detail}). Wait a moment and try again."
    elif status >= 500:
        text = f"The server failed{tried} ({detail}). Try again later."
    else:
        text = f"The request was refused ({detail})."
    if note:
        text += f" Note: {note}."
    return request.error(text)


def after_retries(retries: int) -> str:
    """The "(after N retries)" of an error message; nothing when the first try failed."""
    if not retries:
        return ""
    return f" (after {retries} {'retry' if retries == 1 else 'retries'})"


def transport_error(exc: Exception, request: Request, *, streaming: bool = False) -> ModelError:
    """A network failure as a ModelError naming the address and the setting that governs it."""
    import httpx

    kept = " The partial answer is kept." if streaming else ""
    if isinstance(exc, httpx.ConnectTimeout):
        text = (f"Connecting to {request.origin} timed out after {settings.connect_timeout:g} s. "
                "Check the address, or raise llm_notebook.settings.connect_timeout.")
    elif isinstance(exc, httpx.ConnectError):
        text = (f"Cannot connect to {request.url}: {exc}. Is the server running, and listening "
                "at that address?")
    elif isinstance(exc, httpx.ReadTimeout):
        text = (f"{request.origin} sent nothing for {settings.read_timeout:g} s, so the answer was "
                f"abandoned. Raise llm_notebook.settings.read_timeout for slow models.{kept}")
    elif streaming:
        text = f"The answer stream from {request.url} broke off ({type(exc).__name__}: {exc}).{kept}"
    else:
        text = f"The request to {request.url} failed ({type(exc).__name__}: {exc})."
    return request.error(text)
