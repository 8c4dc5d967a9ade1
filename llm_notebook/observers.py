"""What every finished response does once it has finished: it is logged and counted.

These subscribe to `responses.on_finish`, so the response core imports none of them; importing
this module (the models module does) is what wires them.
"""

from __future__ import annotations

from typing import Any

from .responses import on_finish


def _log(response: Any) -> None:
    if response.log_enabled:
        from . import log

        log.record(response)


def _count(response: Any) -> None:
    from .usage import session_usage

    session_usage.record_response(response)


on_finish(_log)
on_finish(_count)
