"""The HTTP calls of the providers' batch engines that the wire loop in `http` does not make:
request bodies streamed from a file (an upload, a 200 MB batch), and replies streamed to a file
(a batch's results). Plain JSON calls go through `http.get_json`.

Like the wire loop, these retry 429 and 5xx answers up to `settings.max_retries` times,
honouring Retry-After, pool their connections per endpoint, and turn every failure into one
`ModelError` line that names the address and never the key.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ContextManager

from .http import LONGEST_WAIT, RETRY_STATUSES, Request, backoff, retry_after
from .http_errors import not_json, status_error, transport_error
from .http_pools import sync_client, timeout
from .settings import settings

#: Bytes read from a reply at a time when it is written to a file.
DOWNLOAD_CHUNK = 1024 * 1024

#: Makes, for each try, the keyword arguments of the body (`content=`, `files=`, `data=`).
BodyMaker = Callable[[], ContextManager[dict[str, Any]]]


def send(request: Request, body: BodyMaker | None = None, *, save_to: Path | None = None,
         missing: str = "") -> Any:
    """Send `request` (its body made by `body` for each try, else its JSON `body`); returns the
    reply's JSON, or with `save_to` writes the reply's bytes there (whole, or not at all) and
    returns None. `missing`: what a 404 means here, when it is not a missing model."""
    import httpx

    client = sync_client(request.origin)
    while True:
        with _body(request, body) as arguments:
            built = client.build_request(request.method, request.url, headers=request.headers,
                                         timeout=timeout(), **arguments)
            try:
                reply = client.send(built, stream=True)
            except httpx.HTTPError as exc:
                raise transport_error(exc, request) from None
        try:
            if reply.status_code < 300:
                return _read(reply, request, save_to)
            reply.read()  # the body explains the status
            if reply.status_code == 404 and missing:
                raise request.error(f"{missing} (HTTP 404 from {request.url})", retryable=False)
            _wait_to_retry(reply, request)
        except httpx.HTTPError as exc:
            raise transport_error(exc, request) from None
        finally:
            reply.close()


@contextlib.contextmanager
def _body(request: Request, body: BodyMaker | None):
    if body is not None:
        with body() as arguments:
            yield arguments
    else:
        yield {} if request.body is None else {"json": request.body}


def _read(reply: Any, request: Request, save_to: Path | None) -> Any:
    if save_to is None:
        reply.read()
        try:
            return json.loads(reply.content)
        except ValueError:
            raise not_json(reply, request) from None
    partial = save_to.with_name(save_to.name + ".partial")
    try:
        with open(partial, "wb") as handle:
            for chunk in reply.iter_bytes(DOWNLOAD_CHUNK):
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, save_to)
    finally:
        partial.unlink(missing_ok=True)
    return None


def _wait_to_retry(reply: Any, request: Request) -> None:
    """Sleep before another try of a refused request, or raise the error that says why not."""
    if reply.status_code not in RETRY_STATUSES or request.retries >= settings.max_retries:
        raise status_error(reply, request)
    asked = retry_after(reply.headers)
    if asked is not None and asked > LONGEST_WAIT:
        raise status_error(reply, request,
                           note=f"the server asks to wait {asked:.0f} s before trying again")
    time.sleep(asked if asked is not None else backoff(request.retries))
    request.retries += 1
