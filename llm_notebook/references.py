"""What `-a X` names: `@plot` / `@plot-N`, a variable or attribute path, a file, or a URL.

Shared by the magics and the chat widget; it needs no IPython, only a namespace (a notebook's
user namespace) and, for `@plot`, a history of displayed images.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from .errors import AttachmentError
from .interpolate import is_reference, resolve

PLOT_REFERENCE = re.compile(r"@plot(?:-(\d+))?")


class ImageHistory(Protocol):
    def attachment(self, back: int) -> Any:
        """The `back`-th newest image displayed, as an Attachment."""


def parse_plot_reference(text: str) -> int | None:
    """`@plot` -> 1, `@plot-3` -> 3; anything else -> None."""
    match = PLOT_REFERENCE.fullmatch(text.strip())
    if not match:
        return None
    return int(match.group(1) or 1)


def resolve_attachment(what: str, namespace: dict[str, Any], plots: ImageHistory | None,
                       max_edge: int | None):
    """The attachment `what` names; `plots` is None where no image history is kept."""
    from .attachments import Attachment

    back = parse_plot_reference(what)
    if back is not None:
        if plots is None:
            raise AttachmentError(f"{what.strip()} needs %load_ext llm_notebook first: the images "
                                  "displayed from then on can be attached")
        return plots.attachment(back).downscaled(max_edge)
    if is_reference(what) and re.match(r"\w+", what.strip()).group(0) in namespace:
        return Attachment.from_object(resolve(what, namespace), max_edge=max_edge)
    return Attachment.from_object(what, max_edge=max_edge)
