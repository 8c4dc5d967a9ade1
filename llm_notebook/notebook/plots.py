"""The images a kernel has displayed, so a prompt can attach "the plot above" as `@plot`.

Wraps the shell's display publisher (display(), inline matplotlib figures) and display hook
(an image as a cell's value) and keeps the newest few raster images, newest last.
"""

from __future__ import annotations

import base64
from collections import deque
from typing import Any

from ..attachments import Attachment
from ..errors import AttachmentError
from .thumbnails import is_thumbnail

#: Raster types worth attaching, in order of preference when one output carries several.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


def _image_in(data: Any) -> tuple[str, Any] | None:
    if not isinstance(data, dict):
        return None
    for kind in IMAGE_TYPES:
        if data.get(kind):
            return kind, data[kind]
    return None


def _as_bytes(payload: Any) -> bytes:
    """Display data holds raster images as base64 text (kernel) or raw bytes (terminal)."""
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return base64.b64decode(payload)


class PlotHistory:
    """The last `size` images shown; `attachment(n)` is the n-th newest."""

    def __init__(self, size: int = 10) -> None:
        self._images: deque[tuple[str, Any]] = deque(maxlen=size)
        self._shell: Any = None
        self._wrapped: list[tuple[Any, str]] = []
        #: How many images have been shown in all (the history keeps the newest `size`).
        self.seen = 0

    def __len__(self) -> int:
        return len(self._images)

    def resize(self, size: int) -> None:
        self._images = deque(self._images, maxlen=max(1, size))

    def remember(self, data: Any) -> None:
        found = _image_in(data)
        if found:
            self._images.append(found)
            self.seen += 1

    def attachment(self, back: int = 1) -> Attachment:
        """The `back`-th most recent image (1 = the newest) as an attachment."""
        kept = len(self._images)
        if 1 <= back <= self.seen and back > kept:
            raise AttachmentError(
                f"@plot-{back} asks for the image {back} back, and {self.seen} images have been "
                f"shown, but LLMMagics.plot_history keeps only the newest {kept}: raise it with "
                f"%config LLMMagics.plot_history = {back} (it counts the images shown from then "
                "on), or show the image again")
        if back < 1 or back > kept:
            have = kept
            raise AttachmentError(
                f"@plot{'' if back == 1 else f'-{back}'} asks for the image {back} back, but "
                f"{'no image has' if not have else f'only {have} image(s) have'} been displayed "
                "since %load_ext llm_notebook: show a plot or image first, or attach a variable")
        kind, payload = self._images[-back]
        return Attachment(type=kind, content=_as_bytes(payload))

    def install(self, shell: Any) -> None:
        """Start remembering what `shell` displays; `uninstall()` undoes it."""
        if self._shell is not None:
            return
        self._shell = shell
        publisher, hook = shell.display_pub, shell.displayhook
        publish, write = publisher.publish, hook.write_format_data

        def remembering_publish(data, metadata=None, *args, **kwargs):
            if not is_thumbnail(metadata):  # a picture of an attachment is no plot
                self.remember(data)
            return publish(data, metadata, *args, **kwargs)

        def remembering_write(format_dict, *args, **kwargs):
            self.remember(format_dict)
            return write(format_dict, *args, **kwargs)

        publisher.publish = remembering_publish
        hook.write_format_data = remembering_write
        self._wrapped = [(publisher, "publish"), (hook, "write_format_data")]

    def uninstall(self) -> None:
        for owner, name in self._wrapped:
            owner.__dict__.pop(name, None)  # drops the instance wrapper: the class method is back
        self._wrapped = []
        self._shell = None

