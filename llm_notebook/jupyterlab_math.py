"""Where JupyterLab will lift text out as LaTeX before it renders Markdown.

JupyterLab cuts math (`$...$`, `$$...$$`, `\\\\(...\\\\)`, `\\\\[...\\\\]`,
`\\begin{x}...\\end{x}`) out of Markdown before parsing it, and puts it back HTML-escaped into
the result. It spares only code spans on one line and fences that start a line. A cut that begins
in one code block and ends in another, or outside code, changes what the rest parses as, and code
can come out as HTML. `math_regions` finds the cuts as JupyterLab 4 does (its regular expressions
follow JavaScript's rules for `^`, `$`, `\\s` and case), so that safe_markdown can keep each one
wholly inside or wholly outside code.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_LINE_START = r"(?:^|(?<=[\r\u2028\u2029]))"
_LINE_END = r"(?=[\r\u2028\u2029]|$)"
#: What `\s` matches in a JavaScript regular expression, as a character class body.
JS_WHITESPACE = " \t\n\v\f\r\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_FENCE = re.compile(_LINE_START + r"(`{3,}|~{3,})[^`\n]*\n.*?" + _LINE_START + r"\1`*" + _LINE_END,
                    re.M | re.S)
_SPAN = re.compile(r"(?:" + _LINE_START + r"|[^\\])(`+)[^\n]*?[^`\n]\1(?!`)", re.M)
_SPLIT = re.compile(r"(\$\$?|\\(?:begin|end)\{[a-z]*\*?\}|\\[{}$]|[{}]|(?:\n[" + JS_WHITESPACE
                    + r"]*)+|@@\d+@@|\\\\[()\[\]])", re.I | re.A)
_PARAGRAPH_BREAK = re.compile(r"\n[^\n\r\u2028\u2029]*\n")
_STARTS = re.compile(r"\$|\\\\[(\[]|\\begin\{")


class Region(NamedTuple):
    """A cut: its opening delimiter at `start` (`start_length` long), its closing one at `stop`."""

    start: int
    start_length: int
    stop: int
    stop_length: int


def _protected(text: str) -> str:
    """`text` with the `$` signs JupyterLab hides in fences and code spans blanked out."""
    if "`" not in text and "~~~" not in text:
        return text
    chars = None
    for pattern in (_FENCE, _SPAN):
        for match in pattern.finditer(text):
            if "$" in match[0]:
                chars = chars or list(text)
                for index in range(match.start(), match.end()):
                    if chars[index] == "$":
                        chars[index] = "\x01"
    return "".join(chars) if chars else text


def math_regions(text: str) -> list[Region]:
    """The cuts JupyterLab would make in Markdown `text`, in order."""
    if not _STARTS.search(text):
        return []
    blocks = _SPLIT.split(_protected(text))
    offsets = [0]
    for block in blocks:
        offsets.append(offsets[-1] + len(block))
    regions: list[Region] = []

    def cut(first: int, last: int) -> None:
        regions.append(Region(offsets[first], len(blocks[first]), offsets[last], len(blocks[last])))

    start = end = last = None
    braces = 0
    index = 1
    while index < len(blocks):
        block = blocks[index]
        if block[0] == "@":
            pass
        elif start is not None:
            if block == end:
                if braces:
                    last = index
                else:
                    cut(start, index)
                    start = end = last = None
            elif _PARAGRAPH_BREAK.search(block):
                if last is not None:
                    index = last
                    cut(start, index)
                start = end = last = None
                braces = 0
            elif block == "{":
                braces += 1
            elif block == "}" and braces:
                braces -= 1
        elif block in ("$", "$$"):
            start, end, braces = index, block, 0
        elif block in ("\\\\(", "\\\\["):
            start, end, braces = index, "\\\\)" if block[-1] == "(" else "\\\\]", 0
        elif block[1:6] == "begin":
            start, end, braces = index, "\\end" + block[6:], 0
        index += 2
    if start is not None and last is not None:
        cut(start, last)
    return regions
