"""Prompts and the responses that stream back from a model's execute()."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import LLMNotebookError, ModelError
from .keys import prompt_key, redact

if TYPE_CHECKING:
    from .attachments import Attachment
    from .models import _BaseConversation, _BaseModel

PENDING, RUNNING, DONE, INTERRUPTED, FAILED = "pending", "running", "done", "interrupted", "error"

_NO_MORE = object()


def new_id() -> str:
    """A time-ordered unique id (milliseconds, then randomness), like a ULID in hex."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Usage:
    """Token counts of one response; `details` holds extra counts such as cached tokens."""

    input: int | None = None
    output: int | None = None
    details: dict[str, Any] | None = None


@dataclass
class Prompt:
    """What execute() receives: `.prompt` is None for an attachments-only prompt."""

    prompt: str | None
    model: _BaseModel
    attachments: list[Attachment] = field(default_factory=list)
    system: str | None = None
    options: Any = None

    def __post_init__(self) -> None:
        if self.options is None:
            self.options = self.model.Options()


def _as_text(chunk: Any) -> str:
    """What execute() yielded, as text: None (an empty delta) is nothing."""
    return "" if chunk is None else str(chunk)


class _BaseResponse:
    """State shared by sync and async responses: chunks, usage, timing, status and logging."""

    def __init__(self, prompt: Prompt, model: _BaseModel, stream: bool,
                 conversation: _BaseConversation | None = None, key: str | None = None) -> None:
        from .settings import settings

        self.id = new_id()
        self.prompt = prompt
        self.model = model
        self.stream = stream
        self.conversation = conversation
        self._key = key
        self.response_json: Any = None
        self.status = PENDING
        self.error: str | None = None
        self.log_enabled = settings.log
        self._chunks: list[str] = []
        self._usage = Usage()
        self._start: float | None = None
        self._first_chunk: float | None = None
        self._end: float | None = None
        self._start_utc: _dt.datetime | None = None
        self._streamer: Any = None  # the thread (sync) or task (async) running execute()
        self._finished = threading.Event()
        self._finish_lock = threading.Lock()
        self._wake_on_finish: list[Any] = []

    @property
    def attachments(self) -> list[Attachment]:
        return self.prompt.attachments

    @property
    def finished(self) -> bool:
        return self.status in (DONE, INTERRUPTED, FAILED)

    def set_usage(self, *, input: int | None = None, output: int | None = None,
                  details: dict[str, Any] | None = None) -> None:
        """Record token usage; plugins call it at the end of execute()."""
        self._usage = Usage(input=input, output=output, details=details or None)

    def _execute_kwargs(self) -> dict[str, Any]:
        kwargs = {"prompt": self.prompt, "stream": self.stream, "response": self,
                  "conversation": self.conversation}
        if self.model._takes_key:
            kwargs["key"] = self._key
        return kwargs

    def _as_running_model(self, step, *args, **kwargs):
        """`step(...)` with this prompt's key visible to the model's own `get_key()`."""
        token = prompt_key.set((self.model, self._key))
        try:
            return step(*args, **kwargs)
        finally:
            prompt_key.reset(token)

    def _begin(self, streamer: Any) -> None:
        self._streamer = streamer
        self.status = RUNNING
        self._start = time.monotonic()
        self._start_utc = _dt.datetime.now(_dt.timezone.utc)

    def _keep(self, chunk: Any) -> str:
        """Record one value execute() yielded; returns its text ("" for an empty delta)."""
        text = chunk if type(chunk) is str else _as_text(chunk)
        if text:
            if not self._chunks:
                self._first_chunk = time.monotonic()
            self._chunks.append(text)
        return text

    @contextlib.contextmanager
    def _recording_the_end(self):
        """Around the model's loop (sync or async): however it ends, the response finishes."""
        try:
            yield
        except GeneratorExit:  # the reader stopped early
            self._finish(INTERRUPTED, "stopped before the end")
            raise
        except BaseException as exc:
            error = self._fail(exc)
            if error is exc:
                raise
            raise error from exc
        self._finish(DONE)

    def _fail(self, exc: BaseException) -> BaseException:
        """Finish as failed or interrupted; returns the exception the caller should see."""
        if not isinstance(exc, Exception):
            self._finish(INTERRUPTED, f"interrupted ({type(exc).__name__})")
            return exc
        message = redact(str(exc), self._key)
        if isinstance(exc, LLMNotebookError):
            self._finish(FAILED, message)
            if message != str(exc):
                return type(exc)(message)
            return exc
        wrapped = ModelError(f"Model {self.model.model_id!r} failed: {type(exc).__name__}: {message}")
        self._finish(FAILED, str(wrapped))
        return wrapped

    def _finish(self, status: str, error: str | None = None) -> None:
        self._end = time.monotonic()
        self.status = status
        self.error = error
        if status == DONE and self.conversation is not None:
            self.conversation.responses.append(self)
        if self.log_enabled:
            from . import log

            log.record(self)
        with self._finish_lock:
            self._finished.set()
            wake, self._wake_on_finish = self._wake_on_finish, []
        for callback in wake:
            callback()

    def _refuse_waiting_on_itself(self, streamer: Any) -> None:
        """Reading a response from inside the loop that streams it would wait forever."""
        if self.status == RUNNING and self._streamer is streamer:
            raise RuntimeError(f"Response {self.id} is still streaming here: read it after the "
                               "loop that streams it has ended")

    def _text_so_far(self) -> str:
        return "".join(self._chunks)

    def _duration(self) -> int:
        if self._start is None:
            return 0
        end = self._end if self._end is not None else time.monotonic()
        return int((end - self._start) * 1000)

    def first_chunk_ms(self) -> int | None:
        """Milliseconds from the start to the first text (time to first token), if any came."""
        if self._start is None or self._first_chunk is None:
            return None
        return int((self._first_chunk - self._start) * 1000)

    def _datetime(self) -> str:
        return self._start_utc.isoformat() if self._start_utc else ""

    def to_dict(self) -> dict[str, Any]:
        """Provenance of a finished response (no key, no attachment bytes)."""
        usage = self._usage
        return {
            "id": self.id, "model": self.model.model_id, "status": self.status, "error": self.error,
            "prompt": self.prompt.prompt, "system": self.prompt.system,
            "options": self.prompt.options.model_dump(exclude_unset=True),
            "attachments": [a.metadata() for a in self.attachments],
            "text": self._text_so_far(),
            "usage": {"input": usage.input, "output": usage.output, "details": usage.details},
            "duration_ms": self._duration(), "first_chunk_ms": self.first_chunk_ms(),
            "datetime_utc": self._datetime(),
            "conversation_id": self.conversation.id if self.conversation else None,
        }

    def __repr__(self) -> str:
        text = self._text_so_far()
        shown = text if len(text) <= 60 else text[:57] + "..."
        return f"<{type(self).__name__} model={self.model.model_id!r} status={self.status!r} text={shown!r}>"


class Response(_BaseResponse):
    """A sync response: runs the model when first iterated, then replays what it kept."""

    def __iter__(self) -> Iterator[str]:
        if self.status != PENDING:  # streamed, or streaming elsewhere: wait for it, then replay
            self._refuse_waiting_on_itself(threading.current_thread())
            self._finished.wait()
            yield from list(self._chunks)
            return
        self._begin(threading.current_thread())
        chunks = None
        with self._recording_the_end():
            try:
                chunks = self._as_running_model(self.model.execute, **self._execute_kwargs())
                chunks = iter([chunks] if isinstance(chunks, str) else chunks)
                while (chunk := self._as_running_model(next, chunks, _NO_MORE)) is not _NO_MORE:
                    text = self._keep(chunk)
                    if text:
                        yield text
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()

    def _force(self) -> None:
        if not self.finished:
            for _ in self:
                pass

    def text(self) -> str:
        self._force()
        return self._text_so_far()

    def text_or_raise(self) -> str:
        return self.text()

    def usage(self) -> Usage:
        self._force()
        return self._usage

    def duration_ms(self) -> int:
        self._force()
        return self._duration()

    def datetime_utc(self) -> str:
        self._force()
        return self._datetime()

    def json(self) -> Any:
        """The raw provider JSON a plugin stored in `response.response_json`, if any."""
        self._force()
        return self.response_json

    def __str__(self) -> str:
        return self.text()

    def _repr_markdown_(self) -> str:
        from .markdown import safe_markdown

        return safe_markdown(self.text())


class AsyncResponse(_BaseResponse):
    """An async response: `await` it or `async for` over it; it runs the model once."""

    def __aiter__(self) -> AsyncIterator[str]:
        if self.status == PENDING:
            return self._run()
        if self.finished:
            return _replay(list(self._chunks))
        self._refuse_waiting_on_itself(_current_task())
        return self._replay_when_finished()

    async def _replay_when_finished(self) -> AsyncIterator[str]:
        """What a second reader sees while another task streams: the whole text, once done."""
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def wake() -> None:  # on whichever thread finishes the response
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))

        with self._finish_lock:
            waiting = not self._finished.is_set()
            if waiting:
                self._wake_on_finish.append(wake)
        if waiting:
            await finished
        for chunk in list(self._chunks):
            yield chunk

    async def _run(self) -> AsyncIterator[str]:
        self._begin(_current_task())
        chunks = None
        with self._recording_the_end():
            try:
                chunks = self._as_running_model(self.model.execute, **self._execute_kwargs())
                while True:
                    token = prompt_key.set((self.model, self._key))
                    try:
                        chunk = await anext(chunks, _NO_MORE)
                    finally:
                        prompt_key.reset(token)
                    if chunk is _NO_MORE:
                        break
                    text = self._keep(chunk)
                    if text:
                        yield text
            finally:
                if hasattr(chunks, "aclose"):
                    await chunks.aclose()

    async def _force(self) -> AsyncResponse:
        if not self.finished:
            async for _ in self:
                pass
        return self

    def __await__(self):
        return self._force().__await__()

    async def text(self) -> str:
        await self._force()
        return self._text_so_far()

    def text_or_raise(self) -> str:
        """The text if the response has finished, else ValueError (it would need an await)."""
        if not self.finished:
            raise ValueError(f"Response {self.id} has not finished: await it before reading its text")
        return self._text_so_far()

    async def usage(self) -> Usage:
        await self._force()
        return self._usage

    async def duration_ms(self) -> int:
        await self._force()
        return self._duration()

    async def datetime_utc(self) -> str:
        await self._force()
        return self._datetime()

    async def json(self) -> Any:
        await self._force()
        return self.response_json

    def __str__(self) -> str:
        return self._text_so_far()

    def _repr_markdown_(self) -> str:
        from .markdown import safe_markdown

        return safe_markdown(self._text_so_far(), partial=not self.finished)


def _current_task() -> asyncio.Task | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop: driven by hand, e.g. with send()
        return None


async def _replay(chunks: list[str]) -> AsyncIterator[str]:
    for chunk in chunks:
        yield chunk
