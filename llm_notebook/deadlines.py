"""Deadlines a server cannot stretch.

A per-read timeout never fires on a server that drips a byte at a time or streams without end,
so at the deadline a watchdog thread shuts the socket down: the blocked read returns at once,
whichever thread or event loop is waiting on it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any


class Deadline:
    """When something must be over: `seconds` from now, as the setting named `setting` says
    (None: no limit)."""

    def __init__(self, seconds: float | None, setting: str) -> None:
        self.seconds = seconds
        self.setting = setting
        self.at = None if seconds is None else time.monotonic() + seconds

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def remaining(self) -> float | None:
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def bound(self, seconds: float) -> float:
        """`seconds`, or less if the deadline comes sooner."""
        return seconds if self.at is None else min(seconds, self.remaining())

    def allows(self, wait: float) -> bool:
        """Whether waiting `wait` seconds still ends before the deadline."""
        return self.at is None or time.monotonic() + wait < self.at

    def describe(self) -> str:
        return f"{self.seconds:g} s (llm_notebook.settings.{self.setting})"


class _Watchdog:
    """One thread that shuts sockets down at their times: arming is a push on a heap, where a
    thread per deadline would cost a thread start (about a millisecond) on every answer."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._alarms: list[list[Any]] = []  # heap of [when, number, socket or None if cancelled]
        self._numbers = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, when: float, sock) -> list[Any]:
        alarm = [when, next(self._numbers), sock]
        with self._changed:
            heapq.heappush(self._alarms, alarm)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="llm_notebook deadlines",
                                                daemon=True)
                self._thread.start()
            if self._alarms[0] is alarm:  # sooner than what the thread waits for
                self._changed.notify()
        return alarm

    def cancel(self, alarm: list[Any]) -> None:
        """Once this returns, the alarm's socket is never shut down by it."""
        with self._changed:
            alarm[2] = None

    def _watch(self) -> None:
        with self._changed:
            while True:
                while self._alarms and self._alarms[0][2] is None:
                    heapq.heappop(self._alarms)
                if not self._alarms:
                    self._changed.wait()
                    continue
                wait = self._alarms[0][0] - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                _shut_down(heapq.heappop(self._alarms)[2])


_watchdog = _Watchdog()


def _new_watchdog_in_child() -> None:
    """After fork the watchdog's thread is gone (and its lock may be held): start afresh."""
    global _watchdog
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_new_watchdog_in_child)


@contextlib.contextmanager
def cut_off(reply, at: float | None):
    """Within the block, `reply`'s connection is shut down at `at` (a `time.monotonic()` value),
    ending any read of it; nothing happens if the block ends first or `at` is None."""
    sock = None
    if at is not None:
        stream = reply.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is None:
        yield
        return
    watchdog = _watchdog
    alarm = watchdog.arm(at, sock)
    try:
        yield
    finally:
        watchdog.cancel(alarm)


def _shut_down(sock) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)
