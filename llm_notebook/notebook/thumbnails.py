"""Small pictures of the images a prompt attaches, shown above its answer.

So the saved notebook shows which image went with the prompt. Each is its own small image
output, marked in its metadata so that `@plot` never takes a thumbnail for a plot.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from ..errors import LLMNotebookError
from ..output_metadata import METADATA_KEY, package_metadata

#: Longest edge of a thumbnail, in pixels.
EDGE = 96
_SHOWN_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


def is_thumbnail(metadata: Any) -> bool:
    return bool(package_metadata(metadata).get("thumbnail"))


def thumbnail_bundle(attachment: Any, index: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The display of one attachment's thumbnail; None when it is no local raster image (a URL
    is not fetched for a picture; an unreadable image is the model's to refuse)."""
    from .. import images

    if attachment.content is None and not attachment.path:
        return None
    try:
        kind = attachment.resolve_type()
        if kind not in _SHOWN_TYPES:
            return None
        size = images.dimensions(attachment)
        small = images.downscale(attachment, EDGE)
        payload = small.content_bytes()
    except (LLMNotebookError, OSError, ValueError):  # a picture must never stop the prompt
        return None
    if size is None:
        return None
    width, height = size
    shown = small.resolve_type()
    data = {shown: base64.b64encode(payload).decode("ascii"),
            "text/plain": f"[attachment {index}: {kind}, {width}×{height} px]"}
    scale = min(1.0, EDGE / max(width, height))
    metadata = {shown: {"width": max(1, round(width * scale))},
                METADATA_KEY: {"thumbnail": True, "attachment": index}}
    return data, metadata


def show_thumbnails(attachments: Iterable[Any]) -> None:
    from IPython.display import publish_display_data

    for index, attachment in enumerate(attachments, 1):
        bundle = thumbnail_bundle(attachment, index)
        if bundle is not None:
            publish_display_data(*bundle)
