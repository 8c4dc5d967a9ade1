"""What a notebook object becomes as an attachment: bytes, binary files, paths, URLs, images.

Anything else is refused by its type, and an object whose own code fails while it is turned into
bytes (a figure that cannot draw, a closed file) is one line naming it, not its traceback.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from .attachments import Attachment, check_url, checked_file, reason_of
from .errors import AttachmentError

ACCEPTED_OBJECTS = (
    "PIL images, matplotlib figures and axes, numpy image arrays, bytes, io.BytesIO, "
    "files opened with 'rb', file paths, http(s) URLs and IPython.display.Image"
)


def attachment_from(obj: Any) -> Attachment:
    """The attachment `obj` stands for; AttachmentError says what was wrong with it."""
    if isinstance(obj, Attachment):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return Attachment(content=bytes(obj))
    if isinstance(obj, io.BytesIO):
        return Attachment(content=obj.getvalue())
    if isinstance(obj, os.PathLike):
        return _converted(obj, lambda given: from_path(os.fspath(given)))
    if isinstance(obj, str):
        return _from_text(obj)
    convert = _converter(obj)
    if convert is None:
        raise _refused(obj)
    return _converted(obj, convert)


def from_path(text: str) -> Attachment:
    """A file attachment, refused in one line when `text` names no regular file."""
    return Attachment(path=str(checked_file(text)))


def type_name(obj: Any) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else kind.__qualname__


def _refused(obj: Any) -> AttachmentError:
    return AttachmentError(f"Cannot attach an object of type {type_name(obj)}: "
                           f"accepted are {ACCEPTED_OBJECTS}")


def _from_text(text: str) -> Attachment:
    if not text.strip():
        raise AttachmentError("An empty name names no attachment: give a file path, a URL or "
                              "a variable")
    if text.startswith(("http://", "https://")):
        check_url(text)
        return Attachment(url=text)
    return from_path(text)


def _converter(obj: Any) -> Callable[[Any], Attachment] | None:
    """How to turn a library's object into an attachment; None for objects that are none."""
    from . import images

    module = type(obj).__module__ or ""
    if module.startswith("PIL."):
        from PIL import Image

        return images.from_pil if isinstance(obj, Image.Image) else None
    if module.startswith("matplotlib."):
        return _from_matplotlib
    if module.startswith("numpy") and hasattr(obj, "shape"):
        return images.from_array
    if module.startswith("IPython.") and type(obj).__name__ == "Image":
        return _from_ipython_image
    if isinstance(obj, io.TextIOBase):
        raise AttachmentError(f"Cannot attach a file opened as text ({type_name(obj)}): open it "
                              "with open(path, 'rb'), or attach its path")
    if isinstance(obj, io.IOBase):
        return _from_binary_file
    return None


def _converted(obj: Any, convert: Callable[[Any], Attachment]) -> Attachment:
    try:
        return convert(obj)
    except AttachmentError:
        raise
    except Exception as exc:  # the object's own library failed: its reason, in one line
        raise AttachmentError(f"Cannot attach this {type_name(obj)}: {type(exc).__name__}: "
                              f"{reason_of(exc)}") from None


def _from_matplotlib(obj: Any) -> Attachment:
    from . import images

    figure = obj if hasattr(obj, "savefig") else getattr(obj, "get_figure", lambda: None)()
    if figure is None or not hasattr(figure, "savefig"):
        raise _refused(obj)
    return images.from_figure(figure)


def _from_binary_file(stream: Any) -> Attachment:
    data = stream.read()
    if not isinstance(data, bytes):
        raise AttachmentError(f"Cannot attach this {type_name(stream)}: reading it gave "
                              f"{type_name(data)}, not bytes; open the file with 'rb'")
    return Attachment(content=data)


def _from_ipython_image(image: Any) -> Attachment:
    mime = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}.get(
        getattr(image, "format", None) or "")
    if image.data:
        return Attachment(type=mime, content=bytes(image.data))
    if getattr(image, "filename", None):
        return Attachment(type=mime, path=from_path(image.filename).path)
    if image.url:
        check_url(image.url)
        return Attachment(type=mime, url=image.url)
    raise AttachmentError("This IPython.display.Image has no data, file name or URL to attach")
