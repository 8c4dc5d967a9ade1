"""Tables as text: Markdown for notebooks, with an aligned plain-text twin for terminals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .markdown import escape_inline

_GAP = 2
_NARROWEST = 8


def _cell(value: Any) -> str:
    """A cell shown as it is: its text may be a model id, a server's words or a user's."""
    return escape_inline(str(value))


def _shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _fitted(cells: list[list[str]], width: int | None, uncut: Sequence[int]) -> list[list[str]]:
    """`cells` with the widest columns but `uncut` ones cut (cells ending in "…") until a line
    fits `width`."""
    if width is None:
        return cells
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    least = [widths[i] if i in uncut else max(_NARROWEST, len(header))
             for i, header in enumerate(cells[0])]
    while sum(widths) + _GAP * (len(widths) - 1) > width:
        cuttable = [i for i, w in enumerate(widths) if w > least[i]]
        if not cuttable:
            break  # nothing left to cut without losing a header
        widths[max(cuttable, key=widths.__getitem__)] -= 1
    return [[_shortened(value, w) for value, w in zip(row, widths)] for row in cells]


def table_data(headers: Sequence[str], rows: Sequence[Sequence[Any]], *,
               plain_width: int | None = None, uncut: Sequence[int] = (0,)) -> dict[str, str]:
    """A table as Markdown, with an aligned plain-text twin for terminals and saved text.

    With `plain_width`, the plain text's widest columns (never those in `uncut`: by default the
    first, which names the row) are cut to make its lines fit; the Markdown keeps every cell.
    """
    cells = [[str(h) for h in headers]] + [[str(v).replace("\n", " ") for v in row] for row in rows]
    cells = _fitted(cells, plain_width, uncut)
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    plain = "\n".join((" " * _GAP).join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
                      for row in cells)
    markdown = "\n".join(["| " + " | ".join(_cell(h) for h in headers) + " |",
                          # ":---": headers left-aligned like their cells (Lab centres plain ones)
                          "| " + " | ".join(":---" for _ in headers) + " |"]
                         + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows])
    return {"text/plain": plain, "text/markdown": markdown}
