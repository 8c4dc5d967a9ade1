"""What a Markdown text parses to, read the way a notebook frontend reads it.

`frontend` parses as JupyterLab effectively does (CommonMark, GFM tables and strikethrough, raw
HTML passed through, no linkify); `source_view` parses with HTML off, which is how model output is
meant to show: a tag as text. The helpers below pull out what the tests compare.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from markdown_it import MarkdownIt
from markdown_it.token import Token

frontend = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
source_view = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_BACKTICKS = re.compile(r"`+")


def all_tokens(markdown: str, parser: MarkdownIt = frontend) -> Iterator[Token]:
    for token in parser.parse(markdown):
        yield token
        for child in token.children or []:
            yield child
            yield from child.children or []


def html_tokens(markdown: str) -> list[str]:
    """The raw HTML the frontend would pass through."""
    return [token.content for token in all_tokens(markdown) if token.type.startswith("html")]


def code_blocks(markdown: str, parser: MarkdownIt = frontend) -> list[str]:
    """The content of each code block; a block cut off by the end of the text counts as ending
    with its last line."""
    contents = [token.content for token in parser.parse(markdown)
                if token.type in ("fence", "code_block")]
    return [content if content.endswith("\n") or not content else content + "\n"
            for content in contents]


def code_spans(markdown: str, parser: MarkdownIt = frontend) -> list[str]:
    """The text of each code span, split where it holds backticks (safe_markdown writes a span
    with backticks as several spans with the backticks between them)."""
    return [piece for token in all_tokens(markdown, parser) if token.type == "code_inline"
            for piece in _BACKTICKS.split(token.content) if piece]


def open_fence_at_end(markdown: str) -> bool:
    """Whether text appended after `markdown` would land inside a code block."""
    probe = "end-of-answer-probe"
    blocks = code_blocks(markdown + "\n\n" + probe)
    return any(probe in block for block in blocks)


def rendered(markdown: str) -> str:
    return frontend.render(markdown)
