"""The helpers plugins written for `llm` import from `llm.utils`, under the same names, so that a
plugin ports by changing its import. Each is small and has no heavy import at load time."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time
from typing import Any

from .schemas import multi_schema, schema_dsl

__all__ = ["Fragment", "ULID", "dicts_to_table_string", "extract_fenced_code_block",
           "find_unused_key", "logging_client", "make_schema_id", "maybe_fenced_code",
           "mimetype_from_path", "mimetype_from_string", "monotonic_ulid", "multi_schema",
           "remove_dict_none_values", "schema_dsl", "simplify_usage_dict", "token_usage_string",
           "truncate_string"]

#: Types puremagic names differently from what models accept.
_TYPE_SPELLINGS = {"audio/wave": "audio/wav", "audio/x-wav": "audio/wav"}


class Fragment(str):
    """A piece of prompt text that remembers where it came from (`source`)."""

    source: str

    def __new__(cls, content: str, source: str = "") -> Fragment:
        fragment = super().__new__(cls, content)
        fragment.source = source
        return fragment

    def id(self) -> str:
        """The SHA-256 of the text: the same text from two sources is one fragment."""
        return hashlib.sha256(self.encode("utf-8")).hexdigest()


def _mimetype(detect, value) -> str | None:
    import puremagic

    try:
        kind = detect(value, mime=True)
    except (puremagic.PureError, ValueError, OSError):
        return None
    return _TYPE_SPELLINGS.get(kind, kind) or None


def mimetype_from_string(content: bytes) -> str | None:
    """The content type of some bytes, by their first bytes; None when unknown."""
    import puremagic

    return _mimetype(puremagic.from_string, content)


def mimetype_from_path(path: str) -> str | None:
    """The content type of a file, by its first bytes; None when unknown."""
    import puremagic

    return _mimetype(puremagic.from_file, path)


def dicts_to_table_string(headings: list[str], dicts: list[dict[str, Any]]) -> list[str]:
    """Rows of a plain-text table, one string each, the heading first; columns padded to fit."""
    rows = [[str(d.get(h, "")) for h in headings] for d in dicts]
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headings)]
    return ["    ".join(cell.ljust(width) for cell, width in zip(row, widths))
            for row in [list(headings), *rows]]


def remove_dict_none_values(value: Any) -> Any:
    """`value` without the None entries of its dicts, at any depth; dicts left empty go too."""
    if isinstance(value, list):
        return [remove_dict_none_values(item) for item in value]
    if not isinstance(value, dict):
        return value
    kept = {}
    for name, item in value.items():
        if item is None:
            continue
        item = remove_dict_none_values(item)
        if isinstance(item, dict) and not item:
            continue
        kept[name] = item
    return kept


def simplify_usage_dict(usage: Any) -> Any:
    """Usage details without the zero, empty and null counts providers pad them with (and the
    flags some add, which are not counts), at any depth."""
    if not isinstance(usage, dict):
        return usage
    kept = {}
    for name, value in usage.items():
        value = simplify_usage_dict(value)
        if value not in (0, None, {}, "") and not isinstance(value, bool):
            kept[name] = value
    return kept


def token_usage_string(input_tokens: int | None, output_tokens: int | None,
                       token_details: dict | None) -> str:
    """"1,234 input, 56 output, {details}": usage in one line."""
    pieces = []
    if input_tokens is not None:
        pieces.append(f"{input_tokens:,} input")
    if output_tokens is not None:
        pieces.append(f"{output_tokens:,} output")
    if token_details:
        pieces.append(json.dumps(token_details))
    return ", ".join(pieces)


_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<lang>\w+)?[ \t]*\r?\n(?P<code>.*?)^(?P=fence)[ \t]*$",
                    re.MULTILINE | re.DOTALL)


def extract_fenced_code_block(text: str, last: bool = False) -> str | None:
    """The code inside the first (or `last`) fenced block of Markdown, None if there is none.
    A fence of more than three backticks ends only at a fence of the same length."""
    blocks = [match.group("code") for match in _FENCE.finditer(text)]
    if not blocks:
        return None
    return blocks[-1] if last else blocks[0]


def maybe_fenced_code(content: str) -> str:
    """`content` in a code fence when it looks like code or markup (many `<`, or mostly short
    lines), with a fence longer than any run of backticks inside it."""
    lines = content.splitlines()
    looks_like_code = content.count("<") > 10 or (
        len(lines) > 3 and sum(len(line) < 120 for line in lines) / len(lines) > 0.9)
    if not looks_like_code:
        return content
    fence = "```"
    while fence in content:
        fence += "`"
    return f"\n{fence}\n{content.strip()}\n{fence}"


def make_schema_id(schema: dict) -> tuple[str, str]:
    """(id, compact JSON) of a schema: the same schema always gets the same id."""
    compact = json.dumps(schema, separators=(",", ":"))
    return hashlib.blake2b(compact.encode(), digest_size=16).hexdigest(), compact


def find_unused_key(item: dict, key: str) -> str:
    """`key`, with underscores added until `item` has no such key."""
    while key in item:
        key += "_"
    return key


def truncate_string(text: str, max_length: int = 100, normalize_whitespace: bool = False,
                    keep_end: bool = False) -> str:
    """`text` cut to `max_length` characters with "..." (or its start and end around "... ")."""
    if not text:
        return text
    if normalize_whitespace:
        text = " ".join(text.split())
    if len(text) <= max_length:
        return text
    if keep_end and max_length >= 9:
        side = (max_length - 5) // 2
        return f"{text[:side]}... {text[-side:]}"
    return text[:max_length - 3] + "..."


def logging_client():
    """An httpx client that prints each request and response to stderr (keys redacted), for
    plugins that show their traffic when asked to."""
    import httpx

    from .keys import redact_known

    def show(what: str) -> None:
        print(redact_known(what), file=sys.stderr)

    def request(req) -> None:
        show(f"Request: {req.method} {req.url}")
        if req.content:
            show(req.content.decode("utf-8", "replace"))

    def response(reply) -> None:
        show(f"Response: status_code={reply.status_code}")

    return httpx.Client(event_hooks={"request": [request], "response": [response]})


# -- ULIDs ----------------------------------------------------------------------------------------
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class ULID(str):
    """A ULID in its 26-character text form (time-ordered: 48 bits of milliseconds, then 80 of
    randomness); `.bytes` and `.milliseconds` give its parts."""

    @classmethod
    def from_bytes(cls, raw: bytes) -> ULID:
        number = int.from_bytes(raw, "big")
        return cls("".join(_CROCKFORD[(number >> shift) & 31] for shift in range(125, -1, -5)))

    @property
    def bytes(self) -> bytes:
        number = 0
        for char in self:
            number = number * 32 + _CROCKFORD.index(char)
        return number.to_bytes(16, "big")

    @property
    def milliseconds(self) -> int:
        return int.from_bytes(self.bytes[:6], "big")


_ulid_lock = threading.Lock()
_last_ulid: list[int] = [0, 0]  # milliseconds, randomness


def monotonic_ulid() -> ULID:
    """A new ULID, greater than every other this process made: within one millisecond (or if
    the clock goes back) the randomness of the last one is counted up by one."""
    now = time.time_ns() // 1_000_000
    with _ulid_lock:
        last_ms, last_random = _last_ulid
        if now > last_ms:
            _last_ulid[:] = [now, int.from_bytes(os.urandom(10), "big")]
        elif last_random + 1 >= 1 << 80:
            raise OverflowError("More than 2**80 ULIDs in one millisecond")
        else:
            _last_ulid[1] = last_random + 1
        ms, randomness = _last_ulid
    return ULID.from_bytes(ms.to_bytes(6, "big") + randomness.to_bytes(10, "big"))
