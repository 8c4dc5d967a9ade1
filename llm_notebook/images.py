"""Image encoding with pillow: notebook images to PNG bytes, image sizes, and downscaling.

Image bytes may come from anywhere, so the pixel count is checked against
`settings.max_image_pixels` from the header, before any pixel is decoded, and a failure inside
pillow (a truncated or corrupt file) becomes one AttachmentError naming the problem.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .attachments import Attachment, reason_of
from .errors import AttachmentError

_KEEP_FORMATS = {"image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}
#: Held while pillow's process-wide pixel limit is changed, so two reads never restore each
#: other's value.
_PILLOW_LIMIT_LOCK = threading.Lock()
_SEND_UNREAD = "or set max_image_edge to None to send it unread"


def check_pixels(width: int, height: int, what: str) -> None:
    """Refuse an image of more than `settings.max_image_pixels` pixels, naming both numbers."""
    from .settings import settings

    limit = settings.max_image_pixels
    if limit is not None and width * height > limit:
        raise AttachmentError(
            f"{what} is {width:,}×{height:,} pixels ({width * height:,}), more than "
            f"llm_notebook.settings.max_image_pixels ({limit:,}): make it smaller first, or "
            "raise the setting")


def _png_bytes(image: Any) -> bytes:
    if image.mode not in _PNG_MODES:
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def from_pil(image: Any) -> Attachment:
    check_pixels(*image.size, "This PIL image")
    return Attachment(type="image/png", content=_png_bytes(image))


def from_figure(figure: Any) -> Attachment:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return Attachment(type="image/png", content=buffer.getvalue())


def from_array(array: Any) -> Attachment:
    """H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA); uint8, integers in 0-255, or floats in [0, 1]."""
    import numpy as np
    from PIL import Image

    shape = tuple(array.shape)
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] in (3, 4))) or 0 in shape:
        raise AttachmentError(
            f"A numpy array of shape {shape} is not an image: expected H×W, H×W×3 or H×W×4")
    check_pixels(shape[1], shape[0], "This numpy array")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        if np.isnan(array).any() or low < 0.0 or high > 1.0:
            raise AttachmentError(
                f"Float image arrays must hold values in [0, 1] (this one spans {low:g} to {high:g}, "
                "or holds NaN): scale it, or convert it to uint8")
        array = np.round(array * 255).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        if array.dtype != np.uint8:
            low, high = int(array.min()), int(array.max())
            if low < 0 or high > 255:
                raise AttachmentError(
                    f"Integer image arrays must hold values in 0-255 (this one spans {low} to {high}): "
                    "scale it, or convert it to floats in [0, 1]")
            array = array.astype(np.uint8)
    else:
        raise AttachmentError(
            f"A numpy array of dtype {array.dtype} is not an image: use uint8, or floats in [0, 1]")
    return Attachment(type="image/png", content=_png_bytes(Image.fromarray(np.ascontiguousarray(array))))


def dimensions(attachment: Attachment) -> tuple[int, int] | None:
    """(width, height) from the image's header, or None when pillow cannot read it."""
    try:
        image = _opened(attachment)
    except AttachmentError:
        return None
    if image is None:
        return None
    with image:
        return image.size


def downscale(attachment: Attachment, max_edge: int) -> Attachment:
    """A copy whose longest edge is at most `max_edge`, in the same format where possible.

    The image is decoded even when it is small enough, so that a damaged one is refused here,
    in one line, rather than by the model's server.
    """
    image = _opened(attachment)
    if image is None:  # a format pillow does not know: the model may
        return attachment
    with image:
        check_pixels(*image.size, f"The image from {attachment.describe()}")
        _decode(image, attachment)
        if max(image.size) <= max_edge:
            return attachment
        try:
            return _resized(image, attachment.resolve_type(), max_edge)
        except Exception as exc:  # an image mode pillow cannot resize or write back
            raise AttachmentError(f"Cannot downscale {attachment.resolve_type()} from "
                                  f"{attachment.describe()}: {reason_of(exc)}; "
                                  f"{_SEND_UNREAD}") from None


def _resized(image: Any, kind: str, max_edge: int) -> Attachment:
    from PIL import Image

    width, height = image.size
    scale = max_edge / max(width, height)
    resized = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.LANCZOS)
    fmt = _KEEP_FORMATS.get(kind)
    if fmt is None:
        return Attachment(type="image/png", content=_png_bytes(resized))
    if fmt == "JPEG" and resized.mode not in ("RGB", "L"):
        resized = resized.convert("RGB")
    buffer = io.BytesIO()
    resized.save(buffer, format=fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    return Attachment(type=kind, content=buffer.getvalue())


@contextmanager
def _pillow_pixel_limit(limit: int | None) -> Iterator[None]:
    """Pillow's own decompression-bomb limit set to `limit` for the duration."""
    from PIL import Image

    with _PILLOW_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _opened(attachment: Attachment) -> Any:
    """The image with only its header read, or None for a format pillow does not know.

    Pillow's own limit is off while the header is read (which decodes no pixel): its warning
    or error would not say which setting to change; `check_pixels` does.
    """
    from PIL import Image, UnidentifiedImageError

    data = attachment.content_bytes()
    try:
        with _pillow_pixel_limit(None):
            return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if attachment.resolve_type() in _types_pillow_opens():
            raise _damaged(attachment, "it is not an image of that type") from None
        return None
    except Exception as exc:  # pillow's many ways to fail on a bad header
        raise _damaged(attachment, reason_of(exc)) from None


def _decode(image: Any, attachment: Attachment) -> None:
    """Decode every pixel, under pillow's limit set to ours (it also checks frames and tiles)."""
    from .settings import settings

    try:
        with _pillow_pixel_limit(settings.max_image_pixels):
            image.load()
    except Exception as exc:  # truncated data, a corrupt stream, a frame larger than the limit
        raise _damaged(attachment, reason_of(exc)) from None


def _types_pillow_opens() -> set[str]:
    from PIL import Image

    Image.init()
    return {Image.MIME[name] for name in Image.OPEN if name in Image.MIME}


def _damaged(attachment: Attachment, reason: str) -> AttachmentError:
    return AttachmentError(f"Cannot read {attachment.resolve_type()} from {attachment.describe()}: "
                           f"{reason}; attach a complete image, {_SEND_UNREAD}")
