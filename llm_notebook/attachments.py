"""Attachments: files, URLs and in-memory objects sent to a model alongside the prompt."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import mimetypes
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import AttachmentError

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

ACCEPTED_OBJECTS = (
    "PIL images, matplotlib figures and axes, numpy image arrays, bytes, io.BytesIO, "
    "file paths, http(s) URLs and IPython.display.Image"
)


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
    """One attachment; usually only one of `path`, `url` or `content` is set."""

    type: str | None = None
    path: str | None = None
    url: str | None = None
    content: bytes | None = field(default=None, repr=False)
    _id: str | None = field(default=None, repr=False, compare=False)
    _served_type: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.path is not None:
            self.path = str(Path(self.path).expanduser().resolve())
        if self.type:
            self.type = normalize_type(self.type)

    def __repr__(self) -> str:
        where = (f"path={self.path!r}" if self.path else f"url={self.url!r}" if self.url
                 else f"content=<{len(self.content or b'')} bytes>")
        return f"Attachment(type={self.type!r}, {where})"

    def id(self) -> str:
        """A stable id: sha256 of the content, or of `{"url": url}` for URL attachments."""
        if self._id is None:
            if self.content is None and self.path is None and self.url:
                payload = json.dumps({"url": self.url}).encode("utf-8")
            else:
                payload = self.content_bytes()
            self._id = hashlib.sha256(payload).hexdigest()
        return self._id

    def resolve_type(self) -> str:
        """The given type, else one detected from the content (and the name's extension)."""
        if self.type:
            return self.type
        name = self.path or self.url
        if self.url and not self.content and not self.path:
            guessed, _ = mimetypes.guess_type(self.url.split("?", 1)[0])
            if guessed:
                self.type = normalize_type(guessed)
                return self.type
        detected = detect_type(self.content_bytes(), name, self._served_type)
        if detected is None:
            raise AttachmentError(
                f"Could not tell the content type of {self._describe()}: "
                "give it explicitly, e.g. Attachment(type='image/png', ...)"
            )
        self.type = detected
        return detected

    def content_bytes(self) -> bytes:
        """The bytes: given content, the file's, or the URL's (fetched once, then kept)."""
        if self.content is not None:
            return self.content
        if self.path:
            try:
                return Path(self.path).read_bytes()
            except OSError as exc:
                raise AttachmentError(f"Cannot read attachment file {self.path}: {exc.strerror}") from None
        if self.url:
            self.content, self._served_type = _fetch(self.url)
            return self.content
        raise AttachmentError("Attachment has no path, url or content")

    def base64_content(self) -> str:
        return base64.b64encode(self.content_bytes()).decode("ascii")

    def size(self) -> int | None:
        """Size in bytes, without fetching a URL that has not been fetched yet."""
        if self.content is not None:
            return len(self.content)
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
                "path": self.path, "url": self.url}

    def _describe(self) -> str:
        if self.path:
            return f"file {self.path}"
        if self.url:
            return f"URL {self.url}"
        return f"{len(self.content or b'')} bytes of content"

    def downscaled(self, max_edge: int | None) -> Attachment:
        """This attachment, or a re-encoded copy whose longest image edge is `max_edge`."""
        if not max_edge or not self.resolve_type().startswith("image/") or self.type == "image/svg+xml":
            return self
        from . import images

        return images.downscale(self, max_edge)

    @classmethod
    def from_object(cls, obj: Any, *, max_edge: int | None | type(...) = ...) -> Attachment:
        """An attachment from a notebook object; images are limited to `max_edge` pixels."""
        from .settings import settings

        if max_edge is ...:
            max_edge = settings.max_image_edge
        attachment = _from_object(obj)
        return attachment.downscaled(max_edge)


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


def _type_name(obj: Any) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else kind.__qualname__


def _module_of(obj: Any) -> str:
    return type(obj).__module__ or ""


def _from_object(obj: Any) -> Attachment:
    from . import images

    if isinstance(obj, Attachment):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return Attachment(content=bytes(obj))
    if isinstance(obj, io.BytesIO):
        return Attachment(content=obj.getvalue())
    if isinstance(obj, os.PathLike):
        return _from_path(os.fspath(obj))
    if isinstance(obj, str):
        if obj.startswith(("http://", "https://")):
            return Attachment(url=obj)
        return _from_path(obj)
    module = _module_of(obj)
    if module.startswith("PIL."):
        return images.from_pil(obj)
    if module.startswith("matplotlib."):
        figure = obj if hasattr(obj, "savefig") else getattr(obj, "get_figure", lambda: None)()
        if figure is not None and hasattr(figure, "savefig"):
            return images.from_figure(figure)
    if module.startswith("numpy") and hasattr(obj, "shape"):
        return images.from_array(obj)
    if module.startswith("IPython.") and type(obj).__name__ == "Image":
        return _from_ipython_image(obj)
    if hasattr(obj, "read") and callable(obj.read):
        data = obj.read()
        if isinstance(data, bytes):
            return Attachment(content=data)
    raise AttachmentError(f"Cannot attach an object of type {_type_name(obj)}: accepted are {ACCEPTED_OBJECTS}")


def _from_path(text: str) -> Attachment:
    path = Path(text).expanduser()
    if not path.is_file():
        raise AttachmentError(f"No file at {text!r}: give an existing file path, a URL or a variable")
    return Attachment(path=str(path))


def _from_ipython_image(image: Any) -> Attachment:
    mime = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}.get(
        getattr(image, "format", None) or "")
    if image.data:
        return Attachment(type=mime, content=bytes(image.data))
    if getattr(image, "filename", None):
        return Attachment(type=mime, path=image.filename)
    if image.url:
        return Attachment(type=mime, url=image.url)
    raise AttachmentError("This IPython.display.Image has no data, file name or URL to attach")
