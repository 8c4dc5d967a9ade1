"""What every response does as it starts and once it has finished.

As it starts: the answer cache may replay a stored answer (then nothing else is asked), then the
budgets may refuse the request before it is sent. Once finished: it is logged, counted in the
session's usage and priced in the session's costs. These subscribe to `responses.on_start` and
`responses.on_finish`, so the response core imports none of them; importing this module (the
models module does) is what wires them. They run for every answer, so they stay small: each
module is imported on first use, then kept.
"""

from __future__ import annotations

import functools
from typing import Any

from .responses import on_finish, on_start


@functools.cache
def _log_record():
    from .log import record

    return record


@functools.cache
def _session_usage():
    from .usage import session_usage

    return session_usage


@functools.cache
def _session_costs():
    from .prices import session_costs

    return session_costs


@functools.cache
def _cache_start():
    from .cache import start

    return start


@functools.cache
def _budget_check():
    from .budget import check

    return check


def _replay(response: Any) -> Any:
    return _cache_start()(response)


def _check_budgets(response: Any) -> None:
    _budget_check()(response)


def _log(response: Any) -> None:
    if response.log_enabled:
        _log_record()(response)


def _count(response: Any) -> None:
    _session_usage().record_response(response)


def _price(response: Any) -> None:
    _session_costs().record(response)


on_start(_replay)  # first: a replayed answer costs nothing, so no budget need admit it
on_start(_check_budgets)
on_finish(_log)
on_finish(_count)
on_finish(_price)
