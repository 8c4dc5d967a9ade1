"""Prompts, and the responses that stream back from a model's execute().

A response owns its transcript (the text and parts as they stream) and its status. Every view
reads the transcript through `text_so_far()` and keeps no copy, so after any ending what a cell
shows, what `--out` stores, the log row and `text()` are one string.

The lifecycle is guarded by one lock per response:

- starting claims the response, so `execute()` runs exactly once however many readers race;
  the others wait for the end and read the finished transcript;
- finishing is a transaction: status, end time, the frozen transcript, the conversation's turn
  and waking every reader happen together, first; then the observers run (the log, session usage,
  the answer cache, views), each guarded, so a failing side effect is a warning and never a
  failed answer or a reader left waiting;
- `interrupt()` finishes a running response from any thread at once; chunks a model yields after
  that are discarded.

The core imports none of its observers: they subscribe with `on_finish()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import datetime as _dt
import enum
import os
import random
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import LLMNotebookError, ModelError
from .keys import prompt_key, redact
from .parts import Message, ToolCallPart
from .transcript import Transcript, as_event

if TYPE_CHECKING:
    from .attachments import Attachment
    from .models import _BaseConversation, _BaseModel

__all__ = ["AsyncResponse", "ObserverWarning", "Prompt", "Recorded", "Response", "Status", "Usage",
           "on_finish", "on_start"]


class Status(str, enum.Enum):
    """Where a response is in its life; compares equal to its lower-case name."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    INTERRUPTED = "interrupted"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        return self in _ENDINGS


_ENDINGS = frozenset({Status.DONE, Status.INTERRUPTED, Status.ERROR})
_NO_MORE = object()


class ObserverWarning(UserWarning):
    """Something that runs after a response finished (the log, a view) failed; the answer is intact."""


#: Randomness for ids: seeded from the OS once (and again in a forked child, which would
#: otherwise repeat its parent's ids); asking the OS for every id costs more than an answer.
_id_bits = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_id_bits.seed)


def new_id() -> str:
    """A time-ordered unique id (milliseconds, then 64 random bits), like a ULID in hex."""
    return f"{int(time.time() * 1000):012x}{_id_bits.getrandbits(64):016x}"


@dataclass(frozen=True)
class Usage:
    """Token counts of one response; `details` holds extra counts such as cached tokens."""

    input: int | None = None
    output: int | None = None
    details: dict[str, Any] | None = None


class Prompt:
    """What execute() receives.

    `.prompt` is the text (None for a prompt of attachments or tool results only), `.system`,
    `.attachments`, `.options`; `.schema` (always a dict), `.tools`, `.tool_results` and
    `.hide_reasoning` as in llm. `.messages` is the complete input chain for this turn: given
    explicitly, or made from the other fields (a conversation passes its history this way), so
    a plugin that builds its request from it must not also walk `conversation.responses`.
    """

    def __init__(self, prompt: str | None, model: _BaseModel, *,
                 attachments: list[Attachment] | None = None, system: str | None = None,
                 options: Any = None, schema: Any = None, tools: Any = None,
                 tool_results: list[Any] | None = None, messages: list[Message] | None = None,
                 hide_reasoning: bool = False, fragments: list[str] | None = None,
                 system_fragments: list[str] | None = None) -> None:
        from .schemas import as_json_schema
        from .tools import as_tools

        self._prompt = prompt
        self.model = model
        self.attachments = list(attachments or [])
        self._system = system
        self.fragments = list(fragments or [])
        self.system_fragments = list(system_fragments or [])
        self.options = options if options is not None else model.Options()
        self.schema = as_json_schema(schema) if schema is not None else None
        self.tools = as_tools(tools)
        self.tool_results = list(tool_results or [])
        self.hide_reasoning = hide_reasoning
        self._explicit_messages = list(messages) if messages is not None else None

    @property
    def prompt(self) -> str | None:
        """The prompt's text, after any fragments."""
        pieces = [*self.fragments, *([self._prompt] if self._prompt else [])]
        return "\n".join(pieces) if pieces else self._prompt

    @property
    def system(self) -> str | None:
        pieces = [*([self._system] if self._system else []), *self.system_fragments]
        return "\n\n".join(pieces) if pieces else self._system

    def turn_messages(self) -> list[Message]:
        """What this turn adds to the chain: tool results (role "tool"), then the user's text
        and attachments. No system message and no history."""
        from .parts import AttachmentPart, TextPart, ToolResultPart

        messages = []
        if self.tool_results:
            messages.append(Message(role="tool", parts=[
                ToolResultPart(name=result.name, output=result.output,
                               tool_call_id=result.tool_call_id,
                               exception=_describe_exception(result.exception),
                               attachments=list(result.attachments or []))
                for result in self.tool_results]))
        user = ([TextPart(text=self.prompt)] if self.prompt else []) + [
            AttachmentPart(attachment=a) for a in self.attachments]
        if user:
            messages.append(Message(role="user", parts=user))
        return messages

    @property
    def messages(self) -> list[Message]:
        if self._explicit_messages is not None:
            return list(self._explicit_messages)
        from .parts import TextPart

        system = [Message(role="system", parts=[TextPart(text=self.system)])] if self.system else []
        return system + self.turn_messages()

    def __repr__(self) -> str:
        return f"<Prompt {self.prompt!r} for {self.model.model_id!r}>"


def _describe_exception(exception: BaseException | None) -> str | None:
    if exception is None:
        return None
    return f"{type(exception).__name__}: {exception}"


Observer = Callable[["Response | AsyncResponse"], Any]
_observers: list[Observer] = []


@dataclass(frozen=True)
class Recorded:
    """A whole answer recorded earlier (by the answer cache), replayed instead of asking the model.

    `chunks` are what execute() yielded, in order (text and StreamEvents); `about` says where the
    answer came from, for the response's provenance (`response.replayed`).
    """

    chunks: tuple[Any, ...]
    usage: Usage = Usage()
    resolved_model: str | None = None
    tool_calls: tuple[Any, ...] = ()
    response_json: Any = None
    about: dict[str, Any] | None = None


StartHook = Callable[["Response | AsyncResponse"], "Recorded | None"]
_start_hooks: list[StartHook] = []


def on_start(hook: StartHook) -> Callable[[], None]:
    """Call `hook(response)` as each response starts, before its model is asked.

    The hook may return a `Recorded` answer, which the response replays instead of calling the
    model (the answer cache), or raise an LLMNotebookError to refuse the request before anything
    is sent (a budget); the response then fails with that message. Returns an unsubscriber.
    """
    _start_hooks.append(hook)
    return lambda: _start_hooks.remove(hook) if hook in _start_hooks else None


def on_finish(observer: Observer) -> Callable[[], None]:
    """Call `observer(response)` after every response finishes (done, interrupted or failed).

    It runs in the thread that finished the response, after every reader was woken; an exception
    in it is one `ObserverWarning`. Returns a function that unsubscribes.
    """
    _observers.append(observer)
    return lambda: _observers.remove(observer) if observer in _observers else None


def _guarded(step: Callable[..., Any], *args: Any, what: str = "") -> None:
    """`step(*args)`; a failure is one warning naming the step (described only if it failed)."""
    try:
        step(*args)
    except Exception as exc:  # a side effect must never undo a finished answer
        name = what or getattr(step, "__qualname__", repr(step))
        about = f" of response {args[0].id}" if args and hasattr(args[0], "id") else ""
        warnings.warn(f"llm_notebook: {name}{about} failed ({type(exc).__name__}: {exc}); the "
                      "answer itself is complete", ObserverWarning, stacklevel=3)


@dataclass(frozen=True)
class _Final:
    """The transcript frozen at the end: what every reader of a finished response sees."""

    text: str
    chunks: tuple[str, ...]
    parts: tuple[Any, ...]


class _Done:
    """Whether a response has finished, as a flag readers may wait on. The event to wait on is
    made only when a reader must wait (a second reader of a streaming response): most responses
    never need one."""

    __slots__ = ("_set", "_event", "_lock")

    def __init__(self) -> None:
        self._set = False
        self._event: threading.Event | None = None
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            self._set = True
            event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        with self._lock:
            if self._set:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)


class _BaseResponse:
    """What sync and async responses share: the transcript, usage, timing, status, observers."""

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
        self.resolved_model: str | None = None
        #: Where a replayed answer came from (see `Recorded`); None when the model answered.
        self.replayed: dict[str, Any] | None = None
        self.error: str | None = None
        self._tool_calls: list[Any] = []
        self.log_enabled = settings.log
        self._status = Status.PENDING
        self._transcript = Transcript()
        self._final: _Final | None = None
        self._summary: dict[str, Any] | None = None
        self._usage = Usage()
        self._start: float | None = None
        self._first_chunk: float | None = None
        self._end: float | None = None
        self._start_utc: _dt.datetime | None = None
        self._streamer: Any = None
        self._lock = threading.Lock()
        self._done = _Done()
        self._wake_on_finish: list[Callable[[], Any]] = []
        self._done_callbacks: list[Observer] = []
        self._progress_callbacks: list[Observer] = []

    # -- state -------------------------------------------------------------------------------
    @property
    def status(self) -> Status:
        return self._status

    @property
    def finished(self) -> bool:
        return self._status in _ENDINGS

    @property
    def streamer(self) -> Any:
        """The thread (sync) or task (async) running execute(); None before it starts."""
        return self._streamer

    @property
    def attachments(self) -> list[Attachment]:
        return self.prompt.attachments

    def text_so_far(self) -> str:
        """The answer's text as it stands: while streaming, what has arrived; once finished, all.

        Never waits and never starts the model, so any view may call it at any time.
        """
        final = self._final
        if final is not None:
            return final.text
        return redact(self._transcript.text(), self._key)

    def parts_so_far(self) -> list[Any]:
        """The answer's parts (text, reasoning, tool calls) as they stand; see `text_so_far`."""
        final = self._final
        if final is not None:
            return list(final.parts)
        return [_redacted_part(part, self._key) for part in self._transcript.parts()]

    def recorded_usage(self) -> Usage:
        """The usage the model has reported so far, without waiting for the end."""
        return self._usage

    def elapsed_ms(self) -> int:
        """Milliseconds from the start to the end (or until now, while streaming); never waits."""
        return self._duration()

    @property
    def started_utc(self) -> _dt.datetime | None:
        """When the model was started (UTC), None before."""
        return self._start_utc

    def set_usage(self, *, input: int | None = None, output: int | None = None,
                  details: dict[str, Any] | None = None) -> None:
        """Record token usage; plugins call it at the end of execute()."""
        self._usage = Usage(input=input, output=output, details=details or None)

    def set_resolved_model(self, model_id: str) -> None:
        """Record the model that really answered (a provider's "-latest" alias resolved)."""
        self.resolved_model = model_id

    def add_tool_call(self, tool_call: Any) -> None:
        """Record a tool call for the package to run (plugins call it as they read the answer).

        A call without an id gets a unique `tc_` one: every consumer relies on having one.
        """
        from .tools import new_tool_call_id

        if tool_call.tool_call_id is None:
            tool_call = dataclasses.replace(tool_call, tool_call_id=new_tool_call_id())
        self._tool_calls.append(tool_call)

    def tool_calls_so_far(self) -> list[Any]:
        """The tool calls added so far (see `add_tool_call`), without waiting."""
        return list(self._tool_calls)

    @property
    def messages(self) -> list[Message]:
        """The answer as assistant messages: its parts, and the tool calls the plugin added
        that it did not also stream as events."""
        final = self._final
        parts = list(final.parts) if final is not None else self._transcript.parts()
        streamed = {p.tool_call_id for p in parts if isinstance(p, ToolCallPart)}
        parts += [ToolCallPart(name=call.name, arguments=call.arguments,
                               tool_call_id=call.tool_call_id)
                  for call in self._tool_calls if call.tool_call_id not in streamed]
        return [Message(role="assistant", parts=parts)] if parts else []

    def on_done(self, callback: Observer) -> None:
        """Call `callback(response)` once finished (at once if it already has), guarded like the
        process-wide observers."""
        with self._lock:
            if not self._done.is_set():
                self._done_callbacks.append(callback)
                return
        _guarded(callback, self)

    def interrupt(self, reason: str = "stopped before the end") -> bool:
        """End the answer now, keeping its text, from any thread; False if it had already ended.

        A model blocked inside a chunk cannot be stopped sooner, but what it yields afterwards is
        discarded and its generator is closed at its next chunk.
        """
        return self._finish(Status.INTERRUPTED, reason)

    # -- the lifecycle ---------------------------------------------------------------------------
    def _claim(self, streamer: Any) -> bool:
        """Become the one reader that runs execute(); False if another already has (or it ended)."""
        with self._lock:
            if self._status is not Status.PENDING:
                return False
            self._status = Status.RUNNING
            self._streamer = streamer
            self._start = time.monotonic()
            self._start_utc = _dt.datetime.now(_dt.timezone.utc)
            return True

    def _keep(self, chunk: Any) -> str | None:
        """Record one value execute() yielded; returns the visible text it adds ("" for none),
        or None when the response has already ended and the model should stop.

        Chunks are kept as the model sent them; a key a server echoes is redacted where text is
        read (`text_so_far`, the finished transcript), so no per-chunk cost is paid for it.
        """
        if self._status is not Status.RUNNING:
            return None
        if type(chunk) is str:
            if not chunk:
                return ""
            if self._first_chunk is None:
                self._first_chunk = time.monotonic()
            self._transcript.add_text(chunk)
            return chunk
        if chunk is None:  # an empty delta
            return ""
        event = as_event(chunk)
        if event is None:
            return self._keep(str(chunk))
        if self._first_chunk is None:
            self._first_chunk = time.monotonic()
        text = self._transcript.add_event(event)
        if not text:  # readers hear of text as it is yielded; of other parts, through this
            for callback in tuple(self._progress_callbacks):
                _guarded(callback, self)
        return text

    def on_progress(self, callback: Observer) -> Callable[[], None]:
        """Call `callback(response)` whenever a part other than text grows (reasoning, a tool
        call), in the thread that streams: a view can show them as they come, though iterating
        yields only text. Returns an unsubscriber."""
        self._progress_callbacks.append(callback)
        return lambda: (self._progress_callbacks.remove(callback)
                        if callback in self._progress_callbacks else None)

    def _finish(self, status: Status, error: str | None = None) -> bool:
        """The ending transaction, then the observers; False if the response had already ended."""
        with self._lock:
            if self._status in _ENDINGS:
                return False
            self._end = time.monotonic()
            self._status = status
            self.error = error
            transcript = self._transcript
            raw = transcript.text()
            text = redact(raw, self._key)
            chunks = tuple(transcript.chunks) if text == raw else ((text,) if text else ())
            self._final = _Final(text, chunks, tuple(_redacted_part(part, self._key)
                                                     for part in transcript.parts()))
            if self.conversation is not None and self._belongs_in_conversation():
                self.conversation.responses.append(self)
            self._done.set()
            wake, self._wake_on_finish = self._wake_on_finish, []
            callbacks, self._done_callbacks = self._done_callbacks, []
        for step in wake:
            _guarded(step, what=f"waking a reader of response {self.id}")
        for observer in tuple(_observers):
            _guarded(observer, self)
        for callback in callbacks:
            _guarded(callback, self)
        return True

    def _belongs_in_conversation(self) -> bool:
        """Finished turns, and interrupted ones that said something (marked by their status),
        are what the next prompt of the conversation carries; failed turns are not."""
        if self._status is Status.DONE:
            return True
        return self._status is Status.INTERRUPTED and bool(self._final.text or self._final.parts)

    @contextlib.contextmanager
    def _recording_the_end(self):
        """Around the model's loop (sync or async): however it ends, the response finishes."""
        try:
            yield
        except GeneratorExit:  # the reader stopped early
            self._finish(Status.INTERRUPTED, "stopped before the end")
            raise
        except BaseException as exc:
            if self.finished:
                if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
                    raise
                return  # ended elsewhere (interrupted): what the abandoned model does is moot
            error = self._fail(exc)
            if error is exc:
                raise
            raise error from None
        else:
            self._finish(Status.DONE)

    def _fail(self, exc: BaseException) -> BaseException:
        """Finish as failed or interrupted; returns the exception the caller should see."""
        if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
            self._finish(Status.INTERRUPTED, f"interrupted ({type(exc).__name__})")
            return exc
        message = redact(str(exc), self._key)
        if isinstance(exc, LLMNotebookError):
            self._finish(Status.ERROR, message)
            if message == str(exc):
                return exc
            redacted = type(exc)(message)
            if isinstance(exc, ModelError):  # whether asking again could help, for map's retries
                redacted.retryable = exc.retryable
            return redacted
        # anything else, SystemExit included: a model must never take the kernel or the loop down
        wrapped = ModelError(f"Model {self.model.model_id!r} failed: {type(exc).__name__}: {message}")
        self._finish(Status.ERROR, str(wrapped))
        return wrapped

    def _recorded(self) -> Recorded | None:
        """The answer a start hook supplies instead of the model, if any (hooks may refuse)."""
        for hook in list(_start_hooks):
            recorded = hook(self)
            if recorded is not None:
                self.set_usage(input=recorded.usage.input, output=recorded.usage.output,
                               details=recorded.usage.details)
                self.resolved_model = recorded.resolved_model
                self._tool_calls = list(recorded.tool_calls)
                self.response_json = recorded.response_json
                self.replayed = recorded.about or {}
                return recorded
        return None

    def _execute_kwargs(self) -> dict[str, Any]:
        kwargs = {"prompt": self.prompt, "stream": self.stream, "response": self,
                  "conversation": self.conversation}
        if self.model._takes_key:
            kwargs["key"] = self._key
        return kwargs

    def as_model(self, step, *args, **kwargs):
        """`step(...)` with this prompt's key visible to the model's own `get_key()`, as while it
        answers: for the model's other calls on this prompt (counting its tokens)."""
        token = prompt_key.set((self.model, self._key))
        try:
            return step(*args, **kwargs)
        finally:
            prompt_key.reset(token)

    def _refuse_waiting_on_itself(self, streamer: Any) -> None:
        """Reading a response from inside the loop that streams it would wait forever."""
        if self._status is Status.RUNNING and self._streamer is streamer:
            raise RuntimeError(f"Response {self.id} is still streaming here: read it after the "
                               "loop that streams it has ended")

    def _finished_chunks(self) -> tuple[str, ...]:
        return self._final.chunks if self._final is not None else ()

    # -- reading the record ------------------------------------------------------------------------
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
        """Provenance (no key, no attachment bytes); complete once the response has finished.

        A finished response's record never changes, so it is made once (treat it as read-only).
        """
        summary = self._summary
        if summary is None:
            summary = self._describe()
            if self._final is not None:
                self._summary = summary
        return summary

    def _describe(self) -> dict[str, Any]:
        usage = self._usage
        return {
            "id": self.id, "model": self.model.model_id, "status": self._status.value,
            "error": self.error, "prompt": self.prompt.prompt, "system": self.prompt.system,
            "options": self.prompt.options.model_dump(exclude_unset=True),
            "attachments": [a.metadata() for a in self.attachments],
            "text": self.text_so_far(),
            "usage": {"input": usage.input, "output": usage.output, "details": usage.details},
            "resolved_model": self.resolved_model, "replayed": self.replayed,
            "parts": [part.to_dict() for part in self.parts_so_far()],
            "tool_calls": [dataclasses.asdict(call) for call in self._tool_calls],
            "duration_ms": self._duration(), "first_chunk_ms": self.first_chunk_ms(),
            "datetime_utc": self._datetime(),
            "conversation_id": self.conversation.id if self.conversation else None,
        }

    def __repr__(self) -> str:
        text = self.text_so_far()
        shown = text if len(text) <= 60 else text[:57] + "..."
        return (f"<{type(self).__name__} model={self.model.model_id!r} "
                f"status={self._status.value!r} text={shown!r}>")


class Response(_BaseResponse):
    """A sync response: runs the model when first iterated, then replays what it kept."""

    def __iter__(self) -> Iterator[str]:
        if not self._claim(threading.current_thread()):
            # streamed, or streaming elsewhere: wait for the end, then the finished text
            self._refuse_waiting_on_itself(threading.current_thread())
            self._done.wait()
            yield from self._finished_chunks()
            return
        chunks = None
        with self._recording_the_end():
            try:
                recorded = self._recorded()
                # the model runs in a context of its own where its prompt's key is visible to
                # its get_key(); entering it is one call per chunk, the cheapest way
                context = contextvars.copy_context()
                context.run(prompt_key.set, (self.model, self._key))
                chunks = (recorded.chunks if recorded is not None else
                          context.run(self.model.execute, **self._execute_kwargs()))
                chunks = iter([chunks] if isinstance(chunks, str) else chunks)
                while (chunk := context.run(next, chunks, _NO_MORE)) is not _NO_MORE:
                    text = self._keep(chunk)
                    if text is None:  # ended elsewhere: stop the model, keep nothing more
                        break
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
        return self.text_so_far()

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

    def tool_calls(self) -> list[Any]:
        """The tool calls the model asked for (waits for the end)."""
        self._force()
        return self.tool_calls_so_far()

    def tool_calls_or_raise(self) -> list[Any]:
        return self.tool_calls()

    def execute_tool_calls(self, *, before_call: Any = None, after_call: Any = None,
                           tool_calls_list: list[Any] | None = None,
                           tools: list[Any] | None = None) -> list[Any]:
        """Run the tool calls the model asked for (or `tool_calls_list`) with this prompt's tools
        (or `tools`); see `tool_execution`."""
        from .tool_execution import execute_tool_calls
        from .tools import as_tools

        calls = self.tool_calls() if tool_calls_list is None else tool_calls_list
        return execute_tool_calls(calls, self.prompt.tools if tools is None else as_tools(tools),
                                  before_call=before_call, after_call=after_call)

    def reply(self, prompt: str | None = None, *, tool_results: list[Any] | None = None,
              **arguments: Any) -> Response:
        """The model's next turn after this one: with the results of the calls it asked for
        (run now, unless `tool_results` are given), and `prompt` if any."""
        if tool_results is None and self.tool_calls():
            tool_results = self.execute_tool_calls()
        return _continuation(self).prompt(prompt, tools=self.prompt.tools,
                                          tool_results=tool_results, **arguments)

    def __str__(self) -> str:
        return self.text()

    def _repr_markdown_(self) -> str:
        from .markdown import safe_markdown

        return safe_markdown(self.text())


class AsyncResponse(_BaseResponse):
    """An async response: `await` it or `async for` over it; it runs the model once."""

    def __aiter__(self) -> AsyncIterator[str]:
        if self._claim(_current_task()):
            return self._run()
        if self.finished:
            return _replay(self._finished_chunks())
        self._refuse_waiting_on_itself(_current_task())
        return self._replay_when_finished()

    async def _replay_when_finished(self) -> AsyncIterator[str]:
        """What a second reader sees while another task streams: the whole text, once done."""
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def wake() -> None:  # on whichever thread finishes the response
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))

        with self._lock:
            waiting = not self._done.is_set()
            if waiting:
                self._wake_on_finish.append(wake)
        if waiting:
            await finished
        for chunk in self._finished_chunks():
            yield chunk

    async def _run(self) -> AsyncIterator[str]:
        chunks = None
        with self._recording_the_end():
            try:
                recorded = self._recorded()
                chunks = (_replay(recorded.chunks) if recorded is not None else
                          self.as_model(self.model.execute, **self._execute_kwargs()))
                while True:
                    token = prompt_key.set((self.model, self._key))
                    try:
                        chunk = await anext(chunks, _NO_MORE)
                    finally:
                        prompt_key.reset(token)
                    if chunk is _NO_MORE:
                        break
                    text = self._keep(chunk)
                    if text is None:
                        break
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
        return self.text_so_far()

    def text_or_raise(self) -> str:
        """The text if the response has finished, else ValueError (it would need an await)."""
        if not self.finished:
            raise ValueError(f"Response {self.id} has not finished: await it before reading its text")
        return self.text_so_far()

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

    async def tool_calls(self) -> list[Any]:
        await self._force()
        return self.tool_calls_so_far()

    async def execute_tool_calls(self, *, before_call: Any = None, after_call: Any = None,
                                 tool_calls_list: list[Any] | None = None,
                                 tools: list[Any] | None = None) -> list[Any]:
        from .tool_execution import aexecute_tool_calls
        from .tools import as_tools

        calls = await self.tool_calls() if tool_calls_list is None else tool_calls_list
        return await aexecute_tool_calls(
            calls, self.prompt.tools if tools is None else as_tools(tools),
            before_call=before_call, after_call=after_call)

    async def reply(self, prompt: str | None = None, *, tool_results: list[Any] | None = None,
                    **arguments: Any) -> AsyncResponse:
        if tool_results is None and await self.tool_calls():
            tool_results = await self.execute_tool_calls()
        return _continuation(self).prompt(prompt, tools=self.prompt.tools,
                                          tool_results=tool_results, **arguments)

    def tool_calls_or_raise(self) -> list[Any]:
        """The tool calls if the response has finished, else ValueError (it would need an await)."""
        if not self.finished:
            raise ValueError(f"Response {self.id} has not finished: await it before reading its "
                             "tool calls")
        return self.tool_calls_so_far()

    def __str__(self) -> str:
        return self.text_so_far()

    def _repr_markdown_(self) -> str:
        from .markdown import safe_markdown

        return safe_markdown(self.text_so_far(), partial=not self.finished)


def _redacted(value: Any, key: str) -> Any:
    if isinstance(value, str):
        return redact(value, key)
    if isinstance(value, dict):
        return {name: _redacted(item, key) for name, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, key) for item in value]
    return value


def _redacted_part(part: Any, key: str | None) -> Any:
    """`part` with a key a server echoed into its text, arguments or output masked."""
    if not key:
        return part
    changes = {name: _redacted(getattr(part, name), key)
               for name in ("text", "arguments", "output") if hasattr(part, name)}
    return dataclasses.replace(part, **changes)


def _continuation(response: _BaseResponse) -> Any:
    """The conversation a reply goes into: the response's own, or one that starts with it."""
    if response.conversation is not None:
        return response.conversation
    conversation = response.model.conversation()
    conversation.responses.append(response)
    return conversation


def _current_task() -> asyncio.Task | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop: driven by hand, e.g. with send()
        return None


async def _replay(chunks: tuple[str, ...]) -> AsyncIterator[str]:
    for chunk in chunks:
        yield chunk
