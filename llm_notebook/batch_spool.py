"""Request files for the providers' batch engines, written to disk as they are made and split
where a provider's per-batch limits (requests and bytes) require, and JSONL read back line by
line, so that neither side of a large job is ever held in memory whole.

    spool = Spool(folder, Limits(requests=50_000, bytes=200 * MB), name="requests")
    spool.add(b'{"custom_id": "r0", ...}')
    parts = spool.close()            # [Part(path, requests, bytes), ...]
    for record in read_jsonl(path):  # one decoded line at a time
        ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import LLMNotebookError

MB = 1024 * 1024
#: Rows a job handles at a time (made and looked up in the cache; recorded once collected), and
#: lines its files take between two hand-overs to the OS: small enough to keep memory flat,
#: large enough that the store's writer and the disk see few, large batches.
CHUNK = 1000


class RequestTooLarge(LLMNotebookError, ValueError):
    """One request alone is larger than a provider takes in a batch."""


@dataclass(frozen=True)
class Limits:
    """What one batch may hold: requests, and bytes of its request body or file. `framing` is
    what the body adds around the lines (Anthropic's `{"requests": [...]}`), counted too."""

    requests: int
    bytes: int
    framing: int = 0


@dataclass(frozen=True)
class Part:
    """One request file, sent as one provider batch."""

    path: Path
    requests: int
    bytes: int


class Spool:
    """Writes lines to `NAME-1.jsonl`, `NAME-2.jsonl`, ... in `folder`, starting the next file
    when a line would pass `limits`."""

    def __init__(self, folder: Path, limits: Limits, *, name: str = "requests") -> None:
        self.folder, self.limits, self.name = folder, limits, name
        self.parts: list[Part] = []
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._requests = 0
        self._bytes = 0

    def add(self, line: bytes, *, what: str = "a request") -> int:
        """Append one request (a JSON line without its newline); the number of the part (from
        1) it went into."""
        size = len(line) + 1
        if size + self.limits.framing > self.limits.bytes:
            raise RequestTooLarge(
                f"{what} is {size / MB:.1f} MB, more than the {self.limits.bytes / MB:.0f} MB a "
                "batch may hold: send fewer or smaller attachments with it")
        if self._file is not None and (self._requests >= self.limits.requests or
                                       self._bytes + size > self.limits.bytes):
            self._finish_part()
        if self._file is None:
            self._path = self.folder / f"{self.name}-{len(self.parts) + 1}.jsonl"
            self._file = open(self._path, "wb")  # noqa: SIM115 (closed by _finish_part)
            self._requests, self._bytes = 0, self.limits.framing
        self._file.write(line)
        self._file.write(b"\n")
        self._requests += 1
        self._bytes += size
        return len(self.parts) + 1

    def close(self) -> list[Part]:
        """Finish the last file; the parts, in order (none when nothing was added)."""
        if self._file is not None:
            self._finish_part()
        return self.parts

    def discard(self) -> None:
        """Close and delete what was written (a job that is not submitted)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        for path in [part.path for part in self.parts] + ([self._path] if self._path else []):
            path.unlink(missing_ok=True)

    def _finish_part(self) -> None:
        assert self._file is not None and self._path is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        self.parts.append(Part(self._path, self._requests, self._bytes))


def jsonl_line(value: Any) -> bytes:
    """`value` as one compact JSON line (no newline)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_jsonl(path: Path) -> Iterator[Any]:
    """The decoded lines of a JSONL file, one at a time; blank lines are skipped and a line
    that is not JSON is a ValueError naming the file and the line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                yield json.loads(raw)
            except ValueError:
                raise ValueError(f"line {number} of {path.name} is not JSON: "
                                 f"{raw[:120].decode('utf-8', 'replace')!r}") from None


class LineLog:
    """A JSONL file appended to line by line, and handed to the OS every `flush_every` lines
    and at `close()`, so that what was written survives a crash of the process; reopened, it
    continues where it ended (a torn last line is dropped)."""

    def __init__(self, path: Path, *, flush_every: int = 1) -> None:
        self.path = path
        self.flush_every = flush_every
        self._file: IO[bytes] | None = None
        self._unflushed = 0

    def entries(self) -> Iterator[Any]:
        """What the file holds so far (nothing when it does not exist yet)."""
        if not self.path.exists():
            return iter(())
        return self._whole_lines()

    def _whole_lines(self) -> Iterator[Any]:
        with open(self.path, "rb") as handle:
            for raw in handle:
                if raw.endswith(b"\n"):
                    yield json.loads(raw)

    def append(self, value: Any) -> None:
        if self._file is None:
            self._drop_torn_end()
            self._file = open(self.path, "ab")  # noqa: SIM115 (closed by close())
        self._file.write(jsonl_line(value) + b"\n")
        self._unflushed += 1
        if self._unflushed >= self.flush_every:
            self._file.flush()
            self._unflushed = 0

    def flush(self) -> None:
        """Hand what was appended to the OS now."""
        if self._file is not None:
            self._file.flush()
            self._unflushed = 0

    def close(self) -> None:
        if self._file is not None:
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def _drop_torn_end(self) -> None:
        """A crash mid-line leaves half a line: cut the file back to its last whole line."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        with open(self.path, "rb+") as handle:
            keep = size
            while keep:
                step = min(4096, keep)
                handle.seek(keep - step)
                block = handle.read(step)
                end = block.rfind(b"\n")
                if end != -1:
                    keep = keep - step + end + 1
                    break
                keep -= step
            if keep != size:
                handle.truncate(keep)
