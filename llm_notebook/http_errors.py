"""Errors users can act on, from what an HTTP server sent: one line each, naming the address,
the setting to change or the fix, and never the key (every message goes through `Request.error`).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from .settings import settings

_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_INVISIBLE = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)
KEPT = " The partial answer is kept."


def one_line(text: str) -> str:
    return " ".join(text.split())


def clip(text: str, limit: int = 300) -> str:
    """`text` on one line, cut to `limit` characters."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarize(text: str, limit: int = 300) -> str:
    """Readable one-line text from a body that may be HTML (an error page from a proxy)."""
    if "<" in text and ">" in text:
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", _INVISIBLE.sub(" ", text))
        text = html.unescape(text)
    return clip(text, limit)


def server_message(body: Any, fallback: str = "") -> str:
    """The server's own explanation from an error body in the usual JSON shapes, on one line
    (validation errors come indented over several) so that it reads as part of ours."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, str):
            return summarize(error)
        if isinstance(error, dict):
            for name in ("message", "detail", "msg"):
                if isinstance(error.get(name), str):
                    return summarize(error[name])
        if isinstance(body.get("detail"), str):
            return summarize(body["detail"])
        return summarize(json.dumps(body))
    return fallback


def _reply_message(reply) -> str:
    try:
        text = reply.text
    except Exception:  # body never read (stream closed early)
        return ""
    try:
        return server_message(json.loads(text), summarize(text))
    except ValueError:
        return summarize(text)


def after_retries(retries: int) -> str:
    """The "(after N retries)" of an error message; nothing when the first try failed."""
    if not retries:
        return ""
    return f" (after {retries} {'retry' if retries == 1 else 'retries'})"


def status_error(reply, request, *, note: str = ""):
    """An HTTP error status as a ModelError saying what to do next. Never worth a retry by the
    caller: either it cannot succeed, or the HTTP layer has already used its retries."""
    status = reply.status_code
    message = _reply_message(reply) or reply.reason_phrase
    detail = f"HTTP {status} from {request.url}: {message}"
    tried = after_retries(request.retries)
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
    return request.error(text, retryable=False)


def redirect_error(reply, request, location: str | None, why: str):
    """A redirect that is not followed, naming where it points."""
    where = f"redirects to {location}" if location else "redirects without a Location header"
    return request.error(f"HTTP {reply.status_code} from {request.url} {where}: {why}.",
                         retryable=False)


def deadline_error(request, deadline, *, streaming: bool = False):
    """The answer ran out of `settings.answer_timeout`."""
    return request.error(f"The answer from {request.origin} took longer than "
                         f"{deadline.describe()}, so it was stopped."
                         f"{KEPT if streaming else ''} Raise the setting, or set it to None, "
                         "for answers this long.")


def transport_error(exc: Exception, request, *, streaming: bool = False):
    """A network failure as a ModelError naming the address and the setting that governs it."""
    import httpx

    kept = KEPT if streaming else ""
    reason = one_line(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.ConnectTimeout):
        text = (f"Connecting to {request.origin} timed out after {settings.connect_timeout:g} s. "
                "Check the address, or raise llm_notebook.settings.connect_timeout.")
    elif isinstance(exc, httpx.ConnectError):
        text = (f"Cannot connect to {request.url}: {one_line(str(exc))}. Is the server running, "
                "and listening at that address?")
    elif isinstance(exc, httpx.ReadTimeout):
        text = (f"{request.origin} sent nothing for {settings.read_timeout:g} s, so the answer was "
                f"abandoned. Raise llm_notebook.settings.read_timeout for slow models.{kept}")
    elif streaming:
        text = f"The answer stream from {request.url} broke off ({reason}).{kept}"
    else:
        text = f"The request to {request.url} failed ({reason})."
    return request.error(text)


def not_a_stream(reply, request, exc: Exception):
    kind = reply.headers.get("content-type", "no content type")
    return request.error(f"{request.url} answered with {kind} instead of an event stream "
                         f"({one_line(str(exc))})", retryable=False)


def not_json(reply, request):
    kind = reply.headers.get("content-type", "no content type")
    return request.error(f"{request.url} answered with {kind}, not JSON: {summarize(reply.text)}",
                         retryable=False)


def malformed(request, piece: Any, why: str = ""):
    """Data of the wrong shape from the server, quoted so the user sees what came; `why` says
    what was expected, e.g. "where a JSON object belongs"."""
    shown = piece if isinstance(piece, str) else json.dumps(piece, default=repr)
    return request.error(f"The server sent malformed data: {clip(shown, 200)!r}"
                         f"{' ' + why if why else ''} (from {request.url}).{KEPT}")
