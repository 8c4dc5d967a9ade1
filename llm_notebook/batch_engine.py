"""What the providers' batch engines (`batch_openai`, `batch_anthropic`) share: how a batch's
state and its requests' outcomes are described, whatever the provider calls them, and how the
model's own request builder supplies the address, headers and key.

Statuses are OpenAI's words, which cover both: validating, in_progress, finalizing,
cancelling, then one of the endings completed, failed, expired, cancelled.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batch_spool import read_jsonl
from .http import Request, origin

ENDINGS = frozenset({"completed", "failed", "expired", "cancelled"})
#: How each row that never ran is described, by how its batch ended.
NOT_RUN = {"expired": "expired: the batch's 24 hours ended before this request ran",
           "cancelled": "cancelled before this request ran",
           "failed": "not run: the batch failed"}


@dataclass(frozen=True)
class Outcome:
    """One request's result: the provider's answer body (a chat completion, a message), or why
    there is none."""

    custom_id: str
    body: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Access:
    """Where a batch engine is and how to be let in: the model's base URL, and the headers
    (the key among them) its own request builder sends."""

    base_url: str
    headers: dict[str, str] = field(repr=False)  # the key is among them
    secret: str | None = field(repr=False)
    key_hint: str
    model_name: str

    def request(self, url: str, body: Any = None, *, method: str = "POST") -> Request:
        """A call to `url`; the key goes only to the engine's own origin."""
        same = origin(url) == origin(self.base_url)
        return Request(url, body, method=method, headers=dict(self.headers) if same else {},
                       secret=self.secret, model_name=self.model_name, key_hint=self.key_hint)


class BatchEngine:
    """What each provider's engine class shares: its access, and its requests' outcomes read
    from the batch's result files a line at a time (`outcome` reads one line, the provider's
    way). Its module holds its `NAME` and per-batch `LIMITS`."""

    def __init__(self, access: Access) -> None:
        self.access = access

    def outcomes(self, paths: list[Path]) -> Iterator[Outcome]:
        for path in paths:
            for line in read_jsonl(path):
                yield self.outcome(line)

    def outcome(self, line: Any) -> Outcome:
        raise NotImplementedError


class InterruptHold:
    """Ctrl-C held from `start()` until `release()`, which raises it then: an engine starts the
    hold just before the provider creates a batch, and the job's record is saved with the
    batch's id before the hold is released, so an interrupt can never lose a batch that is
    billed. Only the main thread receives interrupts; elsewhere it holds nothing."""

    def __init__(self) -> None:
        self._previous: Any = None
        self._caught = False

    def start(self) -> None:
        if self._previous is not None or threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)
        if previous is not None:  # None: a handler not set from Python, which could not be put back
            self._previous = previous
            signal.signal(signal.SIGINT, self._catch)

    def _catch(self, number: int, frame: Any) -> None:
        self._caught = True

    def release(self) -> None:
        if self._previous is None:
            return
        signal.signal(signal.SIGINT, self._previous)
        self._previous = None
        if self._caught:
            self._caught = False
            raise KeyboardInterrupt


def access_for(model: Any, key: str | None, base_url: str) -> Access:
    """The engine's access for `model`, from the headers its `build_request` would send."""
    from .responses import Prompt

    built = model.build_request(Prompt(None, model), False, None, key)
    headers = {name: value for name, value in built.headers.items()
               if name.lower() != "content-type"}
    return Access(base_url.rstrip("/"), headers, built.secret, built.key_hint,
                  built.model_name or model.model_id)


def request_body(model: Any, prompt: Any) -> dict[str, Any]:
    """The body the model would send for `prompt`, whole (not streamed), as a batch line needs:
    built by the model's own `build_request`, without the `stream` field batches do not take."""
    body = dict(model.build_body(prompt, False))
    body.pop("stream", None)
    return body


def counts_summary(total: int, completed: int, failed: int) -> dict[str, int]:
    return {"total": total, "completed": completed, "failed": failed}
