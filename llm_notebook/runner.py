"""The background event loop that runs async models for sync callers.

One daemon thread owns one event loop for the life of the process (the pattern fsspec and
jupyter_core use). Sync code (the magics, the widgets, `map`) hands it coroutines and waits on
the result, so nothing patches asyncio and the kernel's own loop is never re-entered.

- `run(coro)`: run a coroutine and wait for its result.
- `iterate(response)`: the chunks of any response, in the calling thread, as they arrive.
- `iterate_many(responses)`: `(index, chunk)` pairs of several responses streaming at once.
- `start(response, on_chunk=None)`: stream a response in the background; returns a `Handle`.
- `submit(coro)`: run any coroutine in the background; returns a `Handle`.
- `stream(response)`: the chunks of any response as an async iterator on the current loop
  (a sync model runs in a worker thread, so none waits for another).
- `consume(response, on_chunk)`: run any response to its end on the running loop.
- `relay(produce)`: what a coroutine on the runner emits, yielded in the calling thread.
- `wait(handles)`: wait for some handles; an interrupt while waiting cancels them.
- `running()`, `wait_all()`: the background handles not finished yet, and waiting for them all.

A KeyboardInterrupt (a kernel interrupt) in a thread waiting on the runner cancels the work it
waits for: the response ends "interrupted" at once, keeping its partial text (a sync model blocked
inside a chunk is abandoned: what it yields afterwards is discarded), then the KeyboardInterrupt
goes on up. No exception from a model, however unusual (SystemExit included), stops the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from .responses import AsyncResponse, Response

__all__ = ["Handle", "consume", "get_loop", "iterate", "iterate_many", "relay", "run", "running",
           "start", "stream", "submit", "wait", "wait_all"]

T = TypeVar("T")

#: Seconds a cancelled piece of work gets to wind down (close its stream) before the
#: interrupted caller stops waiting for it; its response has already ended by then.
CANCEL_GRACE = 2.0

_END = object()
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_running: set[Handle] = set()


def _forget_after_fork() -> None:
    """A forked child has no runner thread, and the lock may be held by a thread it lacks."""
    global _lock, _loop, _thread
    _lock = threading.Lock()
    _loop = _thread = None
    _running.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def get_loop() -> asyncio.AbstractEventLoop:
    """The runner's event loop, started on first use in a daemon thread (again after a fork)."""
    global _loop, _thread
    with _lock:
        if _loop is None or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="llm_notebook-runner",
                                       daemon=True)
            _running.clear()
            _thread.start()
        return _loop


def _on_runner_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


class BackgroundWorkError(RuntimeError):
    """Work on the runner raised an exception that would have stopped its loop (SystemExit, ...)."""


async def _contained(coro: Coroutine[Any, Any, T]) -> T:
    """`coro`, with any BaseException but cancellation turned into an ordinary error: asyncio lets
    KeyboardInterrupt and SystemExit escape a task and stop the loop, and every handle with it."""
    try:
        return await coro
    except (Exception, asyncio.CancelledError):
        raise
    except BaseException as exc:
        raise BackgroundWorkError(f"{type(exc).__name__} raised in background work: {exc}") from None


class Handle:
    """Work running on the runner loop: `.done()`, `.cancel()`, `.result()`, or `await handle`.

    `await handle` works from any other event loop (such as the kernel's, with top-level await).
    `response` is the response being streamed, for handles made by `start()`. Background
    handles (from `submit()` and `start()`) are the ones `running()` lists.
    """

    def __init__(self, coro: Coroutine[Any, Any, T], *, response: Any = None,
                 background: bool = True) -> None:
        self.response = response
        self._future: concurrent.futures.Future = concurrent.futures.Future()
        self._task: asyncio.Task | None = None
        self._cancel_requested = False
        self._loop = get_loop()
        if background:
            with _lock:
                _running.add(self)
        self._loop.call_soon_threadsafe(self._begin, coro)

    # -- on the runner loop --------------------------------------------------------------
    def _begin(self, coro: Coroutine) -> None:
        if self._cancel_requested:
            coro.close()
            self._settle(None)
            return
        self._task = self._loop.create_task(_contained(coro))
        self._task.add_done_callback(self._settle)

    def _settle(self, task: asyncio.Task | None) -> None:
        with _lock:
            _running.discard(self)
        if task is None or task.cancelled():
            self._future.cancel()
            self._future.set_running_or_notify_cancel()  # wakes concurrent.futures.wait()
        elif task.exception() is not None:
            self._future.set_exception(task.exception())
        else:
            self._future.set_result(task.result())

    def _cancel_on_loop(self) -> None:
        self._cancel_requested = True
        if self._task is not None:
            self._task.cancel()

    # -- from any thread -----------------------------------------------------------------
    def done(self) -> bool:
        return self._future.done()

    def cancelled(self) -> bool:
        return self._future.cancelled()

    def cancel(self) -> bool:
        """Ask the work to stop; False if it had already finished. Partial answers are kept."""
        if self._future.done():
            return False
        self._loop.call_soon_threadsafe(self._cancel_on_loop)
        return True

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the result (or raise the work's error); an interrupt while waiting cancels it."""
        if _on_runner_thread():
            raise RuntimeError("Handle.result() would block the runner's own loop: "
                               "use `await handle` there instead")
        try:
            return self._future.result(timeout)
        except KeyboardInterrupt:
            self.stop()
            raise

    def stop(self) -> None:
        """Cancel and wait (at most CANCEL_GRACE seconds) for the work to wind down."""
        if self.cancel():
            concurrent.futures.wait([self._future], timeout=CANCEL_GRACE)

    def add_done_callback(self, callback: Callable[[Handle], Any]) -> None:
        """Call `callback(handle)` once finished (on the runner thread, or at once if done)."""
        self._future.add_done_callback(lambda _: callback(self))

    def __await__(self):
        return self._wait().__await__()

    async def _wait(self) -> Any:
        try:
            return await asyncio.shield(asyncio.wrap_future(self._future))
        except asyncio.CancelledError:
            if not self._future.done():  # the awaiting task was cancelled, not the work
                self.cancel()
            raise

    def __repr__(self) -> str:
        if not self.done():
            state = "running"
        elif self.cancelled():
            state = "cancelled"
        elif self._future.exception() is not None:
            state = f"failed: {self._future.exception()}"
        else:
            state = "done"
        about = f" {self.response!r}" if self.response is not None else ""
        return f"<Handle {state}{about}>"


def submit(coro: Coroutine[Any, Any, T]) -> Handle:
    """Start `coro` on the runner loop and return at once."""
    return Handle(coro)


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run `coro` on the runner loop and wait for its result; an interrupt cancels it.

    After `timeout` seconds the work is cancelled and TimeoutError says so; a TimeoutError the
    work itself raised comes through as it is.
    """
    if _on_runner_thread():
        coro.close()
        raise RuntimeError("runner.run() was called on the runner's own loop: await the "
                           "coroutine instead")
    handle = Handle(coro, background=False)
    try:
        return handle.result(timeout)
    except TimeoutError:
        if handle.done():  # the work's own error, not our deadline
            raise
        handle.stop()
        raise TimeoutError(f"gave up after {timeout} seconds; the work was cancelled") from None


def stream(response: Response | AsyncResponse) -> AsyncIterator[str]:
    """The chunks of any response on the running loop; a sync one runs in a worker thread."""
    if isinstance(response, AsyncResponse):
        return response.__aiter__()
    return _chunks_from_thread(response)


async def _chunks_from_thread(response: Response) -> AsyncIterator[str]:
    """A sync response iterated in its own thread; its chunks are handed over to this loop.

    Leaving early (a cancel, an interrupt) ends the response at once as interrupted when this
    thread is the one running its model; the thread then stops at the model's next chunk.
    """
    loop = asyncio.get_running_loop()
    items: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def hand_over(item: Any, error: BaseException | None = None) -> None:
        try:
            loop.call_soon_threadsafe(items.put_nowait, (item, error))
        except RuntimeError:  # the loop has closed: nobody is listening any more
            stop.set()

    def work() -> None:
        chunks = iter(response)
        try:
            for chunk in chunks:
                if stop.is_set():
                    break
                hand_over(chunk)
        except BaseException as exc:  # an Exception here: the response turns the rest into one
            hand_over(_END, exc if isinstance(exc, Exception) else BackgroundWorkError(
                f"{type(exc).__name__} raised while streaming: {exc}"))
            return
        finally:
            chunks.close()
        hand_over(_END)

    # the worker runs in a copy of this task's context, so what is set for the request here
    # (the cache's mode, a budget's limit) holds for the model too
    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,),
                              name=f"llm_notebook-{response.model.model_id}", daemon=True)
    worker.start()
    ended = False
    try:
        while True:
            item, error = await items.get()
            if item is _END:
                ended = True
                if error is not None:
                    raise error
                return
            yield item
    finally:
        if not ended:
            stop.set()
            if response.streamer in (worker, None):  # ours, or not started: stop it now
                response.interrupt()


async def consume(response: Response | AsyncResponse,
                  on_chunk: Callable[[str], Any] | None = None) -> None:
    """Run any response to its end on the running loop, calling `on_chunk` with each chunk."""
    async with contextlib.aclosing(stream(response)) as chunks:
        async for chunk in chunks:
            if on_chunk is not None:
                on_chunk(chunk)


def relay(produce: Callable[[Callable[[T], None]], Coroutine]) -> Iterator[T]:
    """Items that a coroutine on the runner loop emits, yielded in this thread as they arrive.

    Leaving early (break, an error, an interrupt) cancels the coroutine.
    """
    items: queue.SimpleQueue = queue.SimpleQueue()
    handle = None
    try:
        handle = Handle(produce(items.put), background=False)
        handle.add_done_callback(lambda _: items.put(_END))
        while (item := items.get()) is not _END:
            yield item
        handle.result()
    finally:
        if handle is not None and not handle.done():
            handle.stop()


def iterate(response: Response | AsyncResponse) -> Iterator[str]:
    """The chunks of any response as they arrive, for a sync caller: async models stream too."""
    if not isinstance(response, AsyncResponse):
        return iter(response)
    return relay(lambda emit: consume(response, emit))


def iterate_many(responses: Sequence[Response | AsyncResponse]) -> Iterator[tuple[int, str]]:
    """`(index, chunk)` pairs from several responses streaming at once, as they arrive.

    Sync models run in worker threads, so none waits for another. A response that fails stops
    alone: read its `.status` and `.error`; the others go on.
    """
    async def produce(emit: Callable[[tuple[int, str]], None]) -> None:
        tasks = [asyncio.ensure_future(_consume_one(i, r, emit)) for i, r in enumerate(responses)]
        try:  # not gather: cancelled, it would not wait for the streams to wind down
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            # each stream is cancelled once and waited for (a sync model stops at its next
            # chunk), so every response has its final status when this returns
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()

    return relay(produce)


async def _consume_one(index: int, response: Response | AsyncResponse,
                       emit: Callable[[tuple[int, str]], None]) -> None:
    try:
        await consume(response, lambda chunk: emit((index, chunk)))
    except Exception:
        if not response.finished:  # not a model failure the response recorded
            raise


def start(response: Response | AsyncResponse,
          on_chunk: Callable[[str], Any] | None = None) -> Handle:
    """Stream `response` in the background; `on_chunk` is called on the runner thread per chunk.

    The handle's result is the finished response; a cancelled one is the response with its
    partial text and status "interrupted". Keep `on_chunk` quick: it runs on the shared loop.
    """
    return Handle(_complete(response, on_chunk), response=response)


async def _complete(response: Response | AsyncResponse,
                    on_chunk: Callable[[str], Any] | None) -> Response | AsyncResponse:
    try:
        await consume(response, on_chunk)
    except asyncio.CancelledError:
        pass  # the response recorded itself as interrupted, with its partial text
    return response


def wait(handles: Sequence[Handle], timeout: float | None = None) -> bool:
    """Wait for `handles` to finish; False if `timeout` passed first. An interrupt while waiting
    cancels them (their responses keep their partial text) and goes on up."""
    futures = [handle._future for handle in handles]
    try:
        _, pending = concurrent.futures.wait(futures, timeout=timeout)
    except KeyboardInterrupt:
        for handle in handles:
            handle.cancel()
        concurrent.futures.wait(futures, timeout=CANCEL_GRACE)
        raise
    return not pending


def running() -> list[Handle]:
    """Background handles that have not finished yet."""
    with _lock:
        return list(_running)


def wait_all(timeout: float | None = None) -> list[Handle]:
    """Wait for every running background handle (see `wait`); returns them."""
    handles = running()
    wait(handles, timeout)
    return handles
