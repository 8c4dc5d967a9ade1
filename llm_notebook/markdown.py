"""Model output made safe to render as Markdown, whole or half-streamed.

Model output is data. Whatever it holds, the Markdown returned here contains no raw HTML, loads no
image from a server unless `settings.remote_images` allows it, and links only to http(s), mailto
or relative addresses; code keeps its content. The text is parsed once with markdown-it
(CommonMark with GFM tables and strikethrough, HTML off, so that a tag is text), written back
from the tokens in a form other Markdown renderers read alike (markdown_writer), and kept clear of
JupyterLab's cuts for LaTeX (markdown_math).

A half-streamed answer is rendered again and again as it grows: its finished blocks are kept, so
each render parses only the block still being written.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

# markdown-it and the writer load on first use: the notebook extension imports this module as
# it loads, and need not pay for them then.
if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.rules_inline import StateInline

    from .markdown_writer import WrittenBlock

__all__ = ["escape_inline", "safe_markdown"]

# Deeper nesting than this is shown as plain text: markdown-it drops what lies below its limit.
MAX_NESTING = 50
STREAMS_KEPT = 8
_CONTINUABLE = frozenset({"bullet_list_open", "ordered_list_open"})


def _recording(rule: Callable[[StateInline, bool], bool]) -> Callable[[StateInline, bool], bool]:
    """`rule`, noting on the first token it makes where in the source that token starts and ends."""

    def recorded(state: StateInline, silent: bool) -> bool:
        start, count, pending = state.pos, len(state.tokens), bool(state.pending)
        if not rule(state, silent):
            return False
        first = count + pending  # pushing flushes pending text into a token first
        if not silent and first < len(state.tokens):
            token = state.tokens[first]
            token.meta["span"] = (start, state.pos)
            if token.type == "link_open":
                token.meta["label_end"] = state.md.helpers.parseLinkLabel(state, start, True)
        return True

    return recorded


@functools.cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt
    from markdown_it.rules_inline import autolink, backtick, image, link

    parser = MarkdownIt("commonmark", {"html": False, "maxNesting": MAX_NESTING})
    parser.enable(["table", "strikethrough"])
    for name, rule in (("backticks", backtick), ("link", link), ("image", image),
                       ("autolink", autolink)):
        parser.inline.ruler.at(name, _recording(rule))
    return parser


class _Streams:
    """The finished part of recent half-streamed answers: a prefix of the source ending where its
    last block starts, and the Markdown of the blocks before it, per set of options."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: list[tuple[tuple[bool, bool], str, str]] = []

    def finished_part(self, source: str, options: tuple[bool, bool]) -> tuple[str, str]:
        with self._lock:
            best = ("", "")
            for kept_options, prefix, markdown in self._kept:
                if kept_options == options and len(prefix) > len(best[0]) \
                        and source.startswith(prefix):
                    best = (prefix, markdown)
            return best

    def keep(self, options: tuple[bool, bool], prefix: str, markdown: str,
             replacing: str) -> None:
        with self._lock:
            self._kept = [entry for entry in self._kept
                          if not (entry[0] == options and entry[1] in (replacing, prefix))]
            self._kept.append((options, prefix, markdown))
            del self._kept[:-STREAMS_KEPT]

    def forget(self, options: tuple[bool, bool], prefix: str) -> None:
        if not prefix:
            return
        with self._lock:
            self._kept = [entry for entry in self._kept if entry[:2] != (options, prefix)]


_streams = _Streams()


def safe_markdown(text: str, *, partial: bool = False, remote_images: bool | None = None,
                  hard_breaks: bool = False) -> str:
    """Markdown that shows model output `text` as the model meant it, but with no HTML.

    Every fence is closed, so a half-streamed answer cannot swallow what is shown after it;
    `partial` says the text will grow (its finished blocks are kept for the next render).
    Images load only from data: URIs unless `remote_images` (default: `settings.remote_images`);
    others become links. `hard_breaks` keeps every line break.
    """
    if remote_images is None:
        from .settings import settings

        remote_images = settings.remote_images
    options = (bool(remote_images), hard_breaks)
    source = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    prefix, finished = _streams.finished_part(source, options)
    written = _written(source[len(prefix):], options)
    if written is not None and written[1] and prefix:
        # the new text defines a link reference, which can change the blocks before it
        prefix, finished = "", ""
        written = _written(source, options)
    if written is None:
        return _plain_lines(text)
    groups, has_references = written
    markdown = [group.markdown for group in groups]
    tail = source[len(prefix):]
    if not partial:
        _streams.forget(options, prefix)
    elif not has_references and (done := _finished_blocks(tail, groups)):
        cut = _line_offset(tail, groups[done].line)
        _streams.keep(options, prefix + tail[:cut], _joined([finished, *markdown[:done]]), prefix)
    written_out = _joined([finished, *markdown])
    if groups and groups[-1].last_kind in ("fence", "code_block"):
        return written_out  # the code holds the spaces the text ends with
    # spaces and line breaks at the end of text change nothing shown: kept, it reads as written
    return written_out + source[len(source.rstrip()):]


class _Group:
    """Top-level blocks with no blank line between them in the source, written as one: the line
    where the first starts, the token type of the last, and their safe Markdown."""

    __slots__ = ("line", "last_kind", "markdown")

    def __init__(self, line: int, last_kind: str, markdown: str) -> None:
        self.line, self.last_kind, self.markdown = line, last_kind, markdown


def _finished_blocks(source: str, groups: list[_Group]) -> int:
    """How many leading groups no further text can change: those before a group that follows a
    blank line and a group not ending in a list (a list can go on after blank lines, and a block
    right under another can still turn out to continue it)."""
    lines = source.split("\n")
    for index in range(len(groups) - 1, 0, -1):
        line = groups[index].line
        if groups[index - 1].last_kind not in _CONTINUABLE and not lines[line - 1].strip():
            return index
    return 0


def _written(source: str, options: tuple[bool, bool]) -> tuple[list[_Group], bool] | None:
    """The top-level blocks of `source` as safe Markdown, in groups apart by blank lines as in
    the source, and whether it defines link references; None when it nests too deep."""
    env: dict = {}
    tokens = _parser().parse(source, env)
    if any(token.level >= MAX_NESTING - 1 for token in tokens):
        return None
    from .markdown_math import keep_math_whole
    from .markdown_writer import MarkdownWriter, WrittenBlock, starts_with_empty_item, unmark

    remote_images, hard_breaks = options
    lines = source.split("\n")
    runs: list[list[WrittenBlock]] = []
    writer = MarkdownWriter(remote_images=remote_images, hard_breaks=hard_breaks)
    for block in writer.blocks(tokens):
        if (runs and runs[-1][-1].end == block.line and lines[block.line - 1].strip()
                and not starts_with_empty_item(block.marked.split("\n", 1)[0])):
            runs[-1].append(block)  # right under the one before in the source: so in ours
        else:
            runs.append([block])
    groups = []
    for run in runs:
        joined = WrittenBlock(run[-1].kind, run[0].line, run[-1].end,
                              "\n".join(b.marked for b in run),
                              [f for b in run for f in b.fences], [s for b in run for s in b.spans])
        markdown = keep_math_whole(*unmark(joined))
        if markdown is None:
            return None
        groups.append(_Group(joined.line, joined.kind, markdown))
    return groups, bool(env.get("references"))


def escape_inline(text: str) -> str:
    """Markdown that shows `text` literally on one line, also inside a table cell: for strings
    from servers or users (model ids, error messages, table cells)."""
    from .markdown_writer import escape_inline as escaped

    return escaped(text)


def _plain_lines(text: str) -> str:
    """The text as lines of plain text, for what cannot be parsed safely."""
    return "\\\n".join(escape_inline(line) for line in text.split("\n"))


def _joined(blocks: list[str]) -> str:
    return "\n\n".join(block for block in blocks if block)


def _line_offset(text: str, line: int) -> int:
    offset = 0
    for _ in range(line):
        offset = text.index("\n", offset) + 1
    return offset
