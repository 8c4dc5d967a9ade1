"""Faults for the loopback server of tests/support/fake_llm_server.py, each a reply to queue.

Every fault answers in the wire format of the path it was asked on (OpenAI's chat completions
or Anthropic's messages): TCP resets before and mid-stream, a byte drip, an endless stream, a
stall after the stream is done, redirects, gzip-encoded bodies, broken chunked encoding, huge
headers, random bytes, echoes of the request's key (plain or base64, in an error or in the
answer), an echo of the prompt, and replies held back until several requests have come.
The raw ones write on the real socket themselves (`Reply.takeover`).
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from tests.support.fake_llm_server import (Recorded, Reply, anthropic_delta, anthropic_events,
                                           anthropic_message, error_body, json_reply,
                                           openai_chunk, openai_completion, openai_events,
                                           openai_usage, sse, stream_reply)

#: The longest any fault keeps a connection busy, so a client that never hangs up cannot
#: leave a server thread running for the rest of the session.
LONGEST_FAULT = 60.0
WORDS = ["Partial ", "answers ", "are ", "kept ", "here."]

Fault = Callable[[Recorded], Reply]


# -- the answer in the wire format of the request --------------------------------------------------
def is_anthropic(recorded: Recorded) -> bool:
    return recorded.path.endswith("/messages")


def answer_events(recorded: Recorded, words: list[str], *, done: bool = True) -> list:
    if is_anthropic(recorded):
        return anthropic_events(words, stop=done)
    return openai_events(words, usage=openai_usage(), done=done)


def whole_answer(recorded: Recorded, text: str) -> dict[str, Any]:
    if is_anthropic(recorded):
        return anthropic_message(text)
    return openai_completion(text, usage=openai_usage())


def opening(recorded: Recorded) -> int:
    """How many events of `answer_events` come before the first text."""
    return 3 if is_anthropic(recorded) else 1  # message_start, content_block_start, ping | role


def delta(recorded: Recorded, text: str) -> tuple[str | None, Any]:
    return anthropic_delta(text) if is_anthropic(recorded) else (None, openai_chunk(text))


def sent_key(recorded: Recorded) -> str:
    """The key the request carried, in either API's header."""
    bearer = recorded.headers.get("authorization", "")
    return bearer.removeprefix("Bearer ") or recorded.headers.get("x-api-key", "")


def prompt_words(recorded: Recorded) -> list[str]:
    """The last user message's words, each with its space: what `echo` answers."""
    text = recorded.body["messages"][-1]["content"]
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]]


# -- raw HTTP on the socket ------------------------------------------------------------------------
def head(status: int = 200, content_type: str = "text/event-stream", *,
         headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    """A status line and headers; chunked unless `length` is given."""
    lines = [f"HTTP/1.1 {status} Fault", f"Content-Type: {content_type}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(piece: bytes) -> bytes:
    return b"%X\r\n%s\r\n" % (len(piece), piece)


def reset(connection: socket.socket) -> None:
    """Close with a TCP reset (RST) instead of an orderly FIN."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def wait_for_hang_up(connection: socket.socket, recorded: Recorded, seconds: float) -> None:
    """Hold the connection open until the client closes it (recorded as a hang-up) or
    `seconds` pass."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        readable, _, _ = select.select([connection], [], [], left)
        if readable and not connection.recv(65536):
            recorded.hung_up = True
            return


def _raw(write: Callable[[socket.socket, Recorded], None]) -> Fault:
    return lambda recorded: Reply(takeover=write)


# -- the faults ------------------------------------------------------------------------------------
def reset_before_reply() -> Fault:
    return _raw(lambda connection, recorded: reset(connection))


def reset_mid_stream(words: int = 2) -> Fault:
    """The answer's first events (up to `words` words of text), then a reset."""
    def write(connection: socket.socket, recorded: Recorded) -> None:
        events = answer_events(recorded, WORDS)[:opening(recorded) + words]
        connection.sendall(head() + b"".join(chunk(p) for p in sse(events)))
        time.sleep(0.05)  # let the events arrive before the reset
        reset(connection)
    return _raw(write)


def drip(interval: float, *, head_too: bool = False, words: int = 200) -> Fault:
    """A long answer sent one byte every `interval` seconds (its headers too with `head_too`)."""
    def write(connection: socket.socket, recorded: Recorded) -> None:
        body = b"".join(sse(answer_events(recorded, ["drip "] * words)))
        start = head(length=len(body))
        if not head_too:
            connection.sendall(start)
            start = b""
        end = time.monotonic() + LONGEST_FAULT
        for byte in start + body:
            if time.monotonic() > end:
                return
            connection.sendall(bytes([byte]))
            time.sleep(interval)
    return _raw(write)


def endless_stream() -> Fault:
    """An answer that never ends: one more word every millisecond, for as long as it is read."""
    def pieces(recorded: Recorded) -> Iterator[bytes]:
        yield from sse(answer_events(recorded, [])[:opening(recorded)])
        end = time.monotonic() + LONGEST_FAULT
        while time.monotonic() < end:
            yield sse([delta(recorded, "more ")])[0]
    return lambda recorded: stream_reply(pieces(recorded))


def stall_after_done(words: list[str] = WORDS, *, done: bool = True) -> Fault:
    """The whole answer, [DONE] or message_stop included (or, with `done=False`, an OpenAI
    stream that ends at its usage chunk), then the socket held open without the end of the
    chunked body."""
    def write(connection: socket.socket, recorded: Recorded) -> None:
        events = answer_events(recorded, words, done=done)
        connection.sendall(head() + b"".join(chunk(p) for p in sse(events)))
        wait_for_hang_up(connection, recorded, LONGEST_FAULT)
    return _raw(write)


def redirect(status: int, location: str) -> Fault:
    return lambda recorded: Reply(status=status, headers={"Location": location},
                                  pieces=[b"moved"], content_type="text/plain", chunked=False)


def gzipped(*, stream: bool = True) -> Fault:
    """The normal answer, gzip-encoded (the stream compressed as one gzip member)."""
    def reply(recorded: Recorded) -> Reply:
        if stream:
            body, kind = b"".join(sse(answer_events(recorded, WORDS))), "text/event-stream"
        else:
            body, kind = json.dumps(whole_answer(recorded, "".join(WORDS))).encode(), "application/json"
        packed = gzip.compress(body)
        return Reply(headers={"Content-Encoding": "gzip"}, content_type=kind,
                     pieces=[packed[:len(packed) // 2], packed[len(packed) // 2:]])
    return reply


def bad_chunking() -> Fault:
    """The stream's first word in good chunks, then a chunk size that is not hexadecimal."""
    def write(connection: socket.socket, recorded: Recorded) -> None:
        events = answer_events(recorded, WORDS)[:opening(recorded) + 1]
        connection.sendall(head() + b"".join(chunk(p) for p in sse(events)) +
                           b"zz\r\nnot a chunk\r\n")
        wait_for_hang_up(connection, recorded, LONGEST_FAULT)
    return _raw(write)


def huge_headers(size: int = 300_000) -> Fault:
    return lambda recorded: stream_reply(sse(answer_events(recorded, WORDS)),
                                         headers={"X-Padding": "a" * size})


def random_bytes(count: int = 4096, seed: int = 7) -> Fault:
    """Bytes that are no HTTP at all, then a close."""
    return _raw(lambda connection, recorded: connection.sendall(random.Random(seed).randbytes(count)))


def echo_key_in_error(status: int = 401, *, encoding: str = "plain") -> Fault:
    """An error whose message quotes the request's key, as is or base64-encoded."""
    def reply(recorded: Recorded) -> Reply:
        key = sent_key(recorded)
        shown = base64.b64encode(key.encode()).decode() if encoding == "base64" else key
        kind = "anthropic" if is_anthropic(recorded) else "openai"
        return json_reply(error_body(f"Incorrect API key provided: {shown}", kind), status)
    return reply


def echo_key_in_answer(then: str = "malformed") -> Fault:
    """An answer that repeats the request's key, then (`then="malformed"`) an event of
    malformed data quoting it again."""
    def reply(recorded: Recorded) -> Reply:
        key = sent_key(recorded)
        events = answer_events(recorded, ["The key is ", key, " ok"], done=False)
        events = events[:-2]  # up to the last word: no finish, no usage
        if then == "malformed":
            events.append(("content_block_delta" if is_anthropic(recorded) else None,
                           '{"key": "' + key))
        return stream_reply(sse(events))
    return reply


def echo(*, after: threading.Barrier | None = None) -> Fault:
    """The prompt's own words as the answer, so each client can tell its answer from another's;
    with `after`, sent only once every party of the barrier has asked (or it timed out)."""
    def reply(recorded: Recorded) -> Reply:
        if after is not None:
            try:
                after.wait()
            except threading.BrokenBarrierError:  # the others never came: answer anyway
                pass
        return stream_reply(sse(answer_events(recorded, prompt_words(recorded))))
    return reply
