"""What every finished response does once it has finished: it is logged and counted.

These subscribe to `responses.on_finish`, so the response core imports none of them; importing
this module (the models module does) is what wires them. They run for every answer, so they stay
small: the log and the session account are imported on first use, then kept.
"""

from __future__ import annotations

import functools
from typing import Any

from .responses import on_finish


@functools.cache
def _log_record():
    from .log import record

    return record


@functools.cache
def _session_usage():
    from .usage import session_usage

    return session_usage


def _log(response: Any) -> None:
    if response.log_enabled:
        _log_record()(response)


def _count(response: Any) -> None:
    _session_usage().record_response(response)


on_finish(_log)
on_finish(_count)
