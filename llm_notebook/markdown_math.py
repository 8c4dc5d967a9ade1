"""Markdown changed so that JupyterLab's cuts for LaTeX cannot turn code into HTML.

JupyterLab lifts math out of Markdown before parsing it (see jupyterlab_math). A cut that starts
in code and ends outside it, or that spans two blocks, leaves text that parses differently: the
rest of a code block can come out as HTML. `keep_math_whole` changes a written block until every
cut lies within one code block, code span, link or block of text, escaping delimiters in text
where it can; math wholly inside text still renders as math.
"""

from __future__ import annotations

import bisect
import re

from .jupyterlab_math import math_regions
from .markdown_writer import Construct, code_spans, escape_inline

_BACKSLASHES = re.compile(r"\\*")
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def keep_math_whole(text: str, constructs: list[Construct]) -> str | None:
    """`text` changed until every cut JupyterLab makes for math lies within one code block, code
    span, link or block of text: a delimiter in text is escaped; between two code blocks a blank
    line ends the cut, or where none can (in a blockquote) the first block becomes code spans.

    Each round escapes a delimiter or settles a block for good, so the rounds are bounded; None
    if they ran out all the same."""
    for _ in range(text.count("$") + text.count("\\") + 2 * len(constructs) + 1):
        regions = math_regions(text)
        if not regions:
            return text
        starts = [construct.start for construct in constructs]
        for region in regions:
            opening = _innermost(constructs, starts, region.start)
            closing = _innermost(constructs, starts, region.stop)
            if opening is not closing:
                break
        else:
            return text
        if not _is_code(opening):
            text = _escape_delimiter(text, constructs, region.start, region.start_length)
        elif not _is_code(closing):
            text = _escape_delimiter(text, constructs, region.stop, region.stop_length)
        elif opening.kind == "fence" and not opening.fence.in_quote:
            text = _edit(text, constructs, opening.end, opening.end, "\n")
        elif opening.kind == "fence":
            text = _fence_as_spans(text, constructs, opening)
        else:
            text = _edit(text, constructs, opening.start, opening.end,
                         escape_inline(opening.content))
    return None


def _is_code(construct: Construct | None) -> bool:
    return construct is not None and construct.kind in ("fence", "span")


def _innermost(constructs: list[Construct], starts: list[int], position: int) -> Construct | None:
    index = bisect.bisect_right(starts, position) - 1
    while index >= 0:
        construct = constructs[index]
        if construct.end > position:
            return construct
        index -= 1
    return None


def _escape_delimiter(text: str, constructs: list[Construct], at: int, length: int) -> str:
    """Make the math delimiter at `at` plain text showing the same characters."""
    delimiter = text[at:at + length]
    if delimiter[0] == "$":
        return _edit(text, constructs, at, at + length, "\\$" * length)
    # a backslash delimiter: its run of backslashes is written as entities
    start = at
    while start > 0 and text[start - 1] == "\\":
        start -= 1
    end = _BACKSLASHES.match(text, start).end()
    count = len(text[start:end])
    escapes_next = count % 2 == 1 and text[end:end + 1] in _PUNCTUATION
    odd = "\\" if escapes_next else "&#92;" * (count % 2)
    return _edit(text, constructs, start, end, "&#92;" * (count // 2) + odd)


def _fence_as_spans(text: str, constructs: list[Construct], fence: Construct) -> str:
    """The fenced block as one code span per line, which JupyterLab's math finder respects."""
    closer = text.rfind("\n", 0, fence.end) + 1
    prefix = text[closer:fence.end - len(fence.fence.fence)]
    lines = [code_spans(line) if line else "` `" for line in fence.fence.lines] or ["` `"]
    return _edit(text, constructs, fence.start, fence.end, ("\\\n" + prefix).join(lines))


def _edit(text: str, constructs: list[Construct], start: int, end: int, new: str) -> str:
    """`text` with [start, end) replaced by `new`: constructs within it are dropped, those after
    it move, and those around it stretch."""
    shift = len(new) - (end - start)
    kept = []
    for construct in constructs:
        if start < end and start <= construct.start and construct.end <= end:
            continue
        if construct.start >= end:
            construct.start += shift
        if construct.end > start and construct.end >= end:
            construct.end += shift
        kept.append(construct)
    constructs[:] = kept
    return text[:start] + new + text[end:]
