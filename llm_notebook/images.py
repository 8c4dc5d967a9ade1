"""Image encoding with pillow: notebook images to PNG bytes, and downscaling."""

from __future__ import annotations

import io
from typing import Any

from .attachments import Attachment
from .errors import AttachmentError

_KEEP_FORMATS = {"image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}


def _png_bytes(image: Any) -> bytes:
    if image.mode not in _PNG_MODES:
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def from_pil(image: Any) -> Attachment:
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
    """(width, height) of an image attachment, or None when pillow cannot read it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(attachment.content_bytes())) as image:
            return image.size
    except (UnidentifiedImageError, OSError, AttachmentError):
        return None


def downscale(attachment: Attachment, max_edge: int) -> Attachment:
    """A copy whose longest edge is at most `max_edge`, in the same format where possible."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(attachment.content_bytes()))
        image.load()
    except (UnidentifiedImageError, OSError):
        return attachment
    width, height = image.size
    if max(width, height) <= max_edge:
        return attachment
    scale = max_edge / max(width, height)
    resized = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.LANCZOS)
    kind = attachment.resolve_type()
    fmt = _KEEP_FORMATS.get(kind)
    if fmt is None:
        return Attachment(type="image/png", content=_png_bytes(resized))
    if fmt == "JPEG" and resized.mode not in ("RGB", "L"):
        resized = resized.convert("RGB")
    buffer = io.BytesIO()
    resized.save(buffer, format=fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    return Attachment(type=kind, content=buffer.getvalue())
