"""Pooled HTTP clients: one per endpoint for sync models, one per endpoint and event loop for
async ones. A forked child starts with none, since the pooled sockets belong to its parent.

httpx is imported inside the functions, so loading the plugins stays cheap.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import weakref
from typing import Any

from .settings import settings

USER_AGENT = "llm_notebook"

_lock = threading.Lock()
_sync_clients: dict[str, Any] = {}
_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: The parent's clients, held by a forked child so that nothing there closes them: closing
#: would end the parent's TLS sessions, and their sockets are still the parent's to use.
_parents_clients: list[Any] = []


def timeout(deadline=None):
    """The connect and read timeouts of `settings` (read at each use, so changes apply at once),
    shortened to what is left before `deadline`."""
    import httpx

    read, connect = settings.read_timeout, settings.connect_timeout
    if deadline is not None:
        read, connect = deadline.bound(read), deadline.bound(connect)
    return httpx.Timeout(read, connect=connect)


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
                client = httpx.Client(headers={"User-Agent": USER_AGENT}, timeout=timeout())
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
        client = clients[origin] = httpx.AsyncClient(headers={"User-Agent": USER_AGENT},
                                                     timeout=timeout())
    return client


class _LoopClients(dict):
    """One loop's clients by origin, the process they belong to, and the generator that closes
    them with the loop (held here because the loop itself keeps only a weak reference to it)."""

    closer: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.pid = os.getpid()


async def _close_with_loop(loop, clients: _LoopClients):
    """Waits for the life of `loop`: shutting a loop down (as `asyncio.run` and long-lived
    runners do) closes its unfinished async generators, and so this one closes the clients,
    unless the loop runs on in a forked child, where they are the parent's."""
    try:
        yield
    finally:
        if clients.pid == os.getpid():
            _async_clients.pop(loop, None)
            for client in clients.values():
                await client.aclose()


def _start_afresh_in_child() -> None:
    """After fork: the child must neither use the parent's connections (both would read the
    same sockets) nor close them (the parent is still using them)."""
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    _parents_clients.extend(_sync_clients.values())
    _parents_clients.extend(_async_clients.values())
    _sync_clients.clear()
    _async_clients.clear()


os.register_at_fork(after_in_child=_start_afresh_in_child)
