"""What `-a X` names: `@plot` / `@plot-N`, a variable or attribute path, a file, or a URL.

Shared by the magics and the chat widget; it needs no IPython, only a namespace (a notebook's
user namespace) and, for `@plot`, a history of displayed images. Spaces around a name are never
part of it.
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Any, Protocol

from .errors import AttachmentError
from .interpolate import InterpolationError, is_reference, resolve

PLOT_REFERENCE = re.compile(r"@plot(?:-(\d+))?")
#: Variable names offered for a name that is neither a variable nor a file.
CLOSE_NAMES = 3


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

    name = what.strip()
    back = parse_plot_reference(name)
    if back is not None:
        if plots is None:
            raise AttachmentError(f"{name} needs %load_ext llm_notebook first: the images "
                                  "displayed from then on can be attached")
        return plots.attachment(back).downscaled(max_edge)
    if is_reference(name):
        root = re.match(r"\w+", name).group(0)
        if root in namespace:
            try:
                value = _variable(name, root, namespace)
            except AttachmentError:
                if not os.path.isfile(name):  # `plot.png` is the file when `plot` has no .png
                    raise
            else:
                return Attachment.from_object(value, max_edge=max_edge)
        elif not os.path.lexists(name):
            raise _neither(name, root, namespace)
    return Attachment.from_object(name, max_edge=max_edge)


def _variable(name: str, root: str, namespace: dict[str, Any]) -> Any:
    if root.startswith("_"):
        raise AttachmentError(f"-a {name}: variables starting with _ are not attached (write "
                              "Out[3] for an earlier output)")
    try:
        return resolve(name, namespace)
    except InterpolationError as exc:  # its message names a {reference} in a prompt
        reason = str(exc).removeprefix(f"{{{name}}}").lstrip(": ")
        raise AttachmentError(f"-a {name}: {reason}") from None


def _neither(name: str, root: str, namespace: dict[str, Any]) -> AttachmentError:
    """Says what was tried for `name`, and which defined variables are spelled like it."""
    defined = [key for key in namespace if isinstance(key, str) and not key.startswith("_")]
    close = difflib.get_close_matches(root, defined, n=CLOSE_NAMES)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return AttachmentError(
        f"{name!r} is neither a variable nor a file: no variable {root!r} is defined{hint}, and "
        f"there is no file {os.path.abspath(name)}. Define it, or give an existing file path, "
        "a URL or @plot")
