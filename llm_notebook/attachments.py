"""Attachments: files, URLs and in-memory objects sent to a model alongside the prompt."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import mimetypes
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import AttachmentError
from .keys import redact_known

#: Types that detectors name in more than one way, mapped to the one models expect.
_TYPE_ALIASES = {
    "audio/mp3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "audio/wave": "audio/wav",
    "audio/x-wav": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
}
#: What a path names when it is no regular file, by the test that tells it.
_SPECIAL_FILES = ((stat.S_ISDIR, "a folder: attach the files in it one by one"),
                  (stat.S_ISFIFO, "a named pipe (FIFO), not a regular file"),
                  (stat.S_ISCHR, "a character device, not a regular file"),
                  (stat.S_ISBLK, "a block device, not a regular file"),
                  (stat.S_ISSOCK, "a socket, not a regular file"))
#: Characters of a library's own error message kept in an attachment error.
LONGEST_REASON = 200


def normalize_type(content_type: str) -> str:
    """Lower-case, drop parameters (`; charset=...`) and map synonyms to one name."""
    base = content_type.split(";", 1)[0].strip().lower()
    return _TYPE_ALIASES.get(base, base)


def detect_type(data: bytes, name: str | None = None, declared: str | None = None) -> str | None:
    """Guess a content type from leading bytes, the name's extension, then a server's header.

    A `declared` Content-Type comes last because servers often send a generic one, and
    `application/octet-stream` says nothing at all.
    """
    import puremagic

    try:
        matches = puremagic.magic_string(data[:8192])
    except (puremagic.PureError, ValueError):
        matches = []
    for match in matches:
        if match.mime_type:
            return normalize_type(match.mime_type)
    if name:
        guessed, _ = mimetypes.guess_type(name)
        if guessed:
            return normalize_type(guessed)
    if declared and normalize_type(declared) != "application/octet-stream":
        return normalize_type(declared)
    try:
        data[:8192].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain"


@dataclass
class Attachment:
    """One attachment; usually only one of `path`, `url` or `content` is set.

    Its bytes are read once (by `load()` when a prompt is made, or by the first use) and kept:
    type detection, `id()`, the log and the plugins all see those bytes, so a file changed or
    deleted while an answer streams changes nothing.
    """

    type: str | None = None
    path: str | None = None
    url: str | None = None
    content: bytes | None = field(default=None, repr=False)
    _id: str | None = field(default=None, repr=False, compare=False)
    _served_type: str | None = field(default=None, repr=False, compare=False)
    _read: bytes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.path is not None:
            self.path = str(absolute_path(self.path))
        if self.type:
            self.type = normalize_type(self.type)

    def __repr__(self) -> str:
        where = (f"path={self.path!r}" if self.path else f"url={redact_known(self.url)!r}"
                 if self.url else f"content=<{len(self.content or b'')} bytes>")
        return f"Attachment(type={self.type!r}, {where})"

    def is_url_only(self) -> bool:
        """Whether only a URL is known, so a plugin may send the URL instead of the bytes."""
        return bool(self.url) and self.path is None and self.content is None

    def load(self) -> Attachment:
        """Read the bytes, type and id now, once; returns the attachment itself.

        Called when a prompt is made. A URL is fetched only when its name does not tell its type:
        plugins send URLs to the model as they are.
        """
        if not self.is_url_only():
            self.content_bytes()
        self.resolve_type()
        self.id()
        return self

    def id(self) -> str:
        """A stable id: sha256 of the content, or of `{"url": url}` for URL attachments."""
        if self._id is None:
            if self.is_url_only():
                payload = json.dumps({"url": self.url}).encode("utf-8")
            else:
                payload = self.content_bytes()
            self._id = hashlib.sha256(payload).hexdigest()
        return self._id

    def resolve_type(self) -> str:
        """The given type, else one detected from the content (and the name's extension)."""
        if self.type:
            return self.type
        if self.is_url_only() and self._read is None:
            guessed, _ = mimetypes.guess_type(self.url.split("?", 1)[0])
            if guessed:
                self.type = normalize_type(guessed)
                return self.type
        detected = detect_type(self.content_bytes(), self.path or self.url, self._served_type)
        if detected is None:
            raise AttachmentError(
                f"Could not tell the content type of {self.describe()}: "
                "give it explicitly, e.g. Attachment(type='image/png', ...)"
            )
        self.type = detected
        return detected

    def content_bytes(self) -> bytes:
        """The bytes: given content, else the file's or the URL's, read once and then kept."""
        if self.content is not None:
            return self.content
        if self._read is None:
            self._read = self._read_source()
        return self._read

    def _read_source(self) -> bytes:
        if self.path:
            try:
                special = _special_file(os.stat(self.path).st_mode)
                if special:
                    raise AttachmentError(f"Cannot read attachment file {self.path}: it is {special}")
                return Path(self.path).read_bytes()
            except OSError as exc:
                raise AttachmentError(
                    f"Cannot read attachment file {self.path}: {reason_of(exc)}") from None
        if self.url:
            check_url(self.url)
            try:
                data, self._served_type = _fetch(self.url)
            except AttachmentError as exc:
                raise AttachmentError(redact_known(str(exc))) from None
            except ValueError as exc:  # a host name that cannot be encoded
                raise AttachmentError(f"Cannot fetch attachment {redact_known(self.url)}: "
                                      f"{reason_of(exc)}") from None
            return data
        raise AttachmentError("Attachment has no path, url or content")

    def base64_content(self) -> str:
        return base64.b64encode(self.content_bytes()).decode("ascii")

    def size(self) -> int | None:
        """Size in bytes, without fetching a URL that has not been fetched yet."""
        kept = self.content if self.content is not None else self._read
        if kept is not None:
            return len(kept)
        if self.path:
            try:
                return os.path.getsize(self.path)
            except OSError:
                return None
        return None

    def metadata(self) -> dict[str, Any]:
        """What the log records about an attachment: id, type and size, never the bytes."""
        try:
            type_ = self.resolve_type()
        except AttachmentError:
            type_ = None
        return {"id": self.id(), "type": type_, "size": self.size(),
                "path": self.path, "url": redact_known(self.url) if self.url else None}

    def describe(self) -> str:
        """The attachment in a few words, for messages: its file, URL (keys masked) or size."""
        if self.path:
            return f"file {self.path}"
        if self.url:
            return f"URL {redact_known(self.url)}"
        return f"{len(self.content or b''):,} bytes of content"

    def downscaled(self, max_edge: int | None) -> Attachment:
        """This attachment, or a re-encoded copy whose longest image edge is `max_edge`."""
        if not max_edge or not self.resolve_type().startswith("image/") or self.type == "image/svg+xml":
            return self
        from . import images

        return images.downscale(self, max_edge)

    @classmethod
    def from_object(cls, obj: Any, *, max_edge: int | None | type(...) = ...) -> Attachment:
        """An attachment from a notebook object; images are limited to `max_edge` pixels."""
        from .attachment_objects import attachment_from
        from .settings import settings

        if max_edge is ...:
            max_edge = settings.max_image_edge
        return attachment_from(obj).downscaled(max_edge)


def absolute_path(text: str) -> Path:
    """`text` with `~` expanded, made absolute; a name that cannot be is one clear error."""
    try:
        return Path(text).expanduser().resolve()
    except RuntimeError:  # ~user with no such user, or a loop of symbolic links
        reason = ("no such user, or no home folder is known" if text.startswith("~")
                  else "its symbolic links form a loop")
        raise AttachmentError(f"Cannot use the path {text!r}: {reason}") from None
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long
        raise AttachmentError(f"Cannot use the path {text!r}: {reason_of(exc)}") from None


def checked_file(text: str) -> Path:
    """The regular file `text` names, made absolute; anything else is one line saying what it is
    (a folder, a pipe, a path through a file)."""
    path = absolute_path(text)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AttachmentError(
            f"No file at {text!r}: give an existing file path, a URL or a variable") from None
    except NotADirectoryError:
        raise AttachmentError(f"No file at {text!r}: a part of the path before the last / is a "
                              "file, not a folder") from None
    except (OSError, ValueError) as exc:
        raise AttachmentError(f"Cannot use the path {text!r}: {reason_of(exc)}") from None
    special = _special_file(mode)
    if special:
        raise AttachmentError(f"{text!r} is {special}")
    return path


def _special_file(mode: int) -> str | None:
    """What a file of this mode is when it is not a regular one (reading a pipe or a device
    may never end)."""
    return next((what for test, what in _SPECIAL_FILES if test(mode)), None)


def check_url(url: str) -> None:
    """Refuse an address that cannot be fetched, before any request: one line saying why."""
    shown = redact_known(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks the port
    except ValueError as exc:
        raise AttachmentError(f"Cannot fetch attachment {shown}: {reason_of(exc)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AttachmentError(f"Cannot fetch attachment {shown}: give an address such as "
                              "https://example.com/picture.png")
    if any(character.isspace() or not character.isprintable() for character in url):
        raise AttachmentError(f"Cannot fetch attachment {shown!r}: it holds spaces or control "
                              "characters (write a space as %20)")


def reason_of(exc: BaseException) -> str:
    """Why `exc` happened, on one short line without any key: the OS's reason, else the
    message's first line, else the exception's name."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        try:
            lines = str(exc).strip().splitlines()
        except Exception:  # an exception whose own __str__ fails is still named
            lines = []
        text = lines[0] if lines else type(exc).__name__
    text = redact_known(text)
    return text if len(text) <= LONGEST_REASON else text[:LONGEST_REASON - 1] + "…"


#: Redirects a URL attachment follows, to any address (it carries no key).
MAX_URL_REDIRECTS = 5


def _fetch(url: str) -> tuple[bytes, str | None]:
    """The URL's bytes and the Content-Type the server gave them, counted as they come, so
    that neither a huge or endless body nor a slow one can hold the notebook."""
    import httpx

    from .deadlines import Deadline, cut_off
    from .http import origin
    from .http_pools import sync_client, timeout
    from .settings import settings

    deadline = Deadline(settings.attachment_timeout, "attachment_timeout")
    client = sync_client(origin(url))
    target = url
    try:
        for _ in range(MAX_URL_REDIRECTS + 1):
            reply = client.send(client.build_request("GET", target, timeout=timeout(deadline)),
                                stream=True)
            with contextlib.closing(reply), cut_off(reply, deadline.at):
                if reply.next_request is None:
                    if reply.status_code >= 400:
                        raise AttachmentError(f"Cannot fetch attachment {url}: "
                                              f"HTTP {reply.status_code}")
                    return _read_within_limit(reply, url), reply.headers.get("content-type")
                target = reply.next_request.url
    except httpx.HTTPError as exc:
        if deadline.passed():
            raise AttachmentError(f"Fetching attachment {url} took longer than "
                                  f"{deadline.describe()}: raise the setting for slow servers, "
                                  "or download the file and attach it") from None
        raise AttachmentError(f"Cannot fetch attachment {url}: {exc}") from None
    raise AttachmentError(f"Cannot fetch attachment {url}: it redirects more than "
                          f"{MAX_URL_REDIRECTS} times")


def _read_within_limit(reply, url: str) -> bytes:
    from .settings import settings

    limit = settings.max_attachment_bytes
    declared = reply.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(url, limit)
    data = bytearray()
    for piece in reply.iter_bytes():
        data += piece
        if len(data) > limit:
            raise _too_large(url, limit)
    return bytes(data)


def _too_large(url: str, limit: int) -> AttachmentError:
    return AttachmentError(f"Attachment {url} is larger than {limit:,} bytes "
                           "(llm_notebook.settings.max_attachment_bytes): raise the setting, or "
                           "download the file and attach it")
