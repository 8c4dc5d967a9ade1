"""HTML for the widgets, made in the kernel from the package's safe Markdown.

A widget draws itself from its state, also where no Markdown renderer of the notebook is at
hand (a restored widget, another frontend), so the kernel sends HTML. The Markdown comes from
`safe_markdown` (model and user text, in which any tag is text) and from the package itself
(the collapsed thinking section), so raw HTML in it is the package's own; code blocks are
highlighted with Pygments in classes the widgets colour from the notebook's theme.
"""

from __future__ import annotations

import functools
import html
from typing import Any


def _highlight(code: str, language: str, _attrs: Any) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    if not language:
        return ""  # markdown-it escapes it
    try:
        lexer = get_lexer_by_name(language)
    except ClassNotFound:
        return ""
    return highlight(code, lexer, HtmlFormatter(nowrap=True))


@functools.cache
def _parser():
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": True, "highlight": _highlight})
    parser.enable(["table", "strikethrough"])
    return parser


def markdown_html(markdown: str) -> str:
    """The HTML of Markdown made by `safe_markdown` and the package (see the module's note)."""
    return _parser().render(markdown)


def plain_html(text: str) -> str:
    """Text shown as it is, line breaks kept."""
    return "<p>" + html.escape(text).replace("\n", "<br>") + "</p>"
