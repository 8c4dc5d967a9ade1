"""Markdown written back from markdown-it tokens, in a form that CommonMark renderers read alike.

Block structure comes out canonical: every fence closed and longer than any backtick run it holds,
indented code turned into fences, list items indented by their marker, blocks apart by blank lines
(tight lists excepted). Inline text is the source as written, with only the characters escaped that
could start HTML, a code span or a link where the parser saw plain text; code spans, links and
images are written anew from what the parser made of them. The result therefore renders like the
source parsed with HTML off, whichever CommonMark parser reads it.

The output carries markers (NUL, which markdown-it never leaves in parsed text, and a letter)
around fences, code spans and links, so that `unmark` can say where they are once nested blocks
have been indented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from .jupyterlab_math import JS_WHITESPACE

if TYPE_CHECKING:
    from markdown_it.token import Token

MARK = "\x00"
FENCE_OPEN, FENCE_CLOSE = MARK + "F", MARK + "f"
SPAN_OPEN, SPAN_CLOSE = MARK + "S", MARK + "s"
LINK_OPEN, LINK_CLOSE = MARK + "L", MARK + "l"
BLOCK_OPEN, BLOCK_CLOSE = MARK + "B", MARK + "b"
_OPENERS = {"F": "fence", "S": "span", "L": "link", "B": "block"}

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.\-]{1,40}")
_BACKTICKS = re.compile(r"`+")
_BACKTICK_RUNS = re.compile(r"(`+)")
# In source text the parser saw as text: escapes kept as they are; a `<` that could open a tag
# or an autolink becomes an entity; backticks, a `]` that could close a link, a `(` after one
# (marked unescapes brackets in a link's text) and a `!` just before a link get a backslash.
_GAP = re.compile(r"\\[!-/:-@\[-`{-~\n]|`|\](?=[(\[]|\Z)|(?<=\])\(|!\Z"
                  r"|<(?=[/!?]|\Z|[A-Za-z][A-Za-z0-9+.\-]{1,31}:"
                  r"|[A-Za-z][\w-]*(?:[/>" + JS_WHITESPACE + r"]|\Z))", re.A)
# Where marked (JupyterLab's renderer) would see a bare URL, which it extends to the next space
# or `<`, swallowing the backslash of an escape on the way.
_BARE_URL = re.compile(r"([hH][tT][tT][pP][sS]?|[fF][tT][pP])(?=://)|www(?=\.)")
_BARE_URL_RUN = re.compile(f"[^{JS_WHITESPACE}<]*")
_GAP_IN_TABLE = re.compile(_GAP.pattern + r"|\|")
_SOFT_BREAK = re.compile(r"(?<!\\)\n")
_INLINE_SPECIAL = re.compile(r"[\\`*_\[\]()<>!|~$&#+\-=\"]")
_ESCAPES = {"<": "&lt;"}  # an entity, which marked cannot take apart as it can a backslash
_LIST_START = re.compile(r"^(\d+)([.)])")
_EMPTY_ITEM = re.compile(r"[-*+]|\d+[.)]")
_LIST_MARKER = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])(?=[ \t]|$)")
_LINE_BREAK = re.compile(r"\r\n?|\n")
_UNDERLINE = re.compile(r" {0,3}[=\-]+[ \t]*")
_DELIMITER_ROW = re.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t])(#+)[ \t]*$")
_DEST_SPECIAL = re.compile(r"[\\()<>$\[\]`]")
_ALIGN = {"text-align:left": ":---", "text-align:right": "---:", "text-align:center": ":---:"}
_OTHER_BULLET = {"-": "*", "*": "-", "+": "-", ".": ")", ")": "."}


def escape_inline(text: str) -> str:
    """Markdown that shows `text` literally on one line, also inside a table cell.

    For strings from servers or users (model ids, error messages): Markdown punctuation is
    backslash-escaped, line breaks become spaces, and leading spaces stay text.
    """
    escaped = _INLINE_SPECIAL.sub(_escape, _LINE_BREAK.sub(" ", text))
    escaped = _LIST_START.sub(lambda m: m[1] + "\\" + m[2], escaped, count=1)
    escaped = _BARE_URL.sub(lambda m: m[0] + "\\", escaped)
    stripped = escaped.lstrip(" \t")
    if len(stripped) == len(escaped):
        return escaped
    return "".join(f"&#{ord(c)};" for c in escaped[:len(escaped) - len(stripped)]) + stripped


def code_spans(content: str, *, mark: bool = False) -> str:
    """Code spans showing `content`: one per stretch between backticks, the backticks between
    them as entities, since marked (JupyterLab's renderer) lets emphasis run on into a code span
    that holds a backtick. `mark` puts span markers around each."""
    out = []
    for piece in _BACKTICK_RUNS.split(content):
        if not piece:
            continue
        if piece[0] == "`":
            out.append("&#96;" * len(piece))
            continue
        # keep spaces at both ends, and a trailing backslash off the closing backtick (marked
        # would read the two as an escape and let emphasis run into the span)
        pad = (piece[0] == " " and piece[-1] == " " and piece.strip(" ") != "") or piece[-1] == "\\"
        span = f"` {piece} `" if pad else f"`{piece}`"
        out.append(SPAN_OPEN + span + SPAN_CLOSE if mark else span)
    return "".join(out)


def link_allowed(url: str) -> bool:
    """Links may lead to http(s), mailto and relative addresses; other schemes become text."""
    scheme = _SCHEME.match(url)
    return scheme is None or scheme[1].lower() in LINK_SCHEMES


def _destination(url: str) -> str:
    return _DEST_SPECIAL.sub(lambda m: "\\" + m[0], url).replace(" ", "%20").replace("|", "%7C")


def _title(title: str) -> str:
    return f' "{escape_inline(title)}"' if title else ""


def _plain_text(tokens: Sequence[Token]) -> str:
    """What an image's alt attribute shows: the text of its label, without markup."""
    parts = []
    for token in tokens:
        if token.type == "image":
            parts.append(_plain_text(token.children or []))
        elif token.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        else:
            parts.append(token.content)
    return "".join(parts)


def starts_with_empty_item(line: str) -> bool:
    """Whether a block's first line is an empty list item, which cannot interrupt a paragraph
    (its item held only a link reference definition)."""
    return _EMPTY_ITEM.fullmatch(line) is not None


def _marked_block(lines: list[str]) -> list[str]:
    """The lines of a block of text between block markers: JupyterLab's math must stay in one."""
    return [BLOCK_OPEN + lines[0], *lines[1:-1], lines[-1] + BLOCK_CLOSE] if len(lines) > 1 \
        else [BLOCK_OPEN + lines[0] + BLOCK_CLOSE]


def _closing_indexes(tokens: Sequence[Token]) -> dict[int, int]:
    closing, stack = {}, []
    for index, token in enumerate(tokens):
        if token.nesting == 1:
            stack.append(index)
        elif token.nesting == -1:
            closing[stack.pop()] = index
    return closing


@dataclass
class Fence:
    """A fenced code block as written: its content lines, fence string and whether it sits in a
    blockquote (where no blank line can separate it from what follows)."""

    lines: list[str]
    fence: str
    in_quote: bool


@dataclass
class Construct:
    """Where a fence, code span, link or block of text lies in the unmarked text (`end` is
    exclusive)."""

    kind: str
    start: int
    end: int
    fence: Fence | None = None
    content: str = ""


@dataclass
class WrittenBlock:
    """A top-level block: its token type, the source lines it spans (`end` exclusive), its
    Markdown with markers, and what the fence and span markers in it stand for (in order)."""

    kind: str
    line: int
    end: int
    marked: str
    fences: list[Fence]
    spans: list[str]


@dataclass
class MarkdownWriter:
    """Writes parsed documents back as Markdown."""

    remote_images: bool = False
    hard_breaks: bool = False
    _fences: list[Fence] = field(default_factory=list)
    _spans: list[str] = field(default_factory=list)
    _quote_depth: int = 0

    def blocks(self, tokens: Sequence[Token]) -> list[WrittenBlock]:
        """The top-level blocks of a document: none depends on another, so that a document that
        grows need only have its last block written again."""
        self._tokens = tokens
        self._closing = _closing_indexes(tokens)
        written, index, previous_list = [], 0, None
        while index < len(tokens):
            fences, spans = len(self._fences), len(self._spans)
            lines, end, previous_list = self._block(index, previous_list)
            if lines:
                written.append(WrittenBlock(tokens[index].type, *tokens[index].map,
                                            "\n".join(lines), self._fences[fences:],
                                            self._spans[spans:]))
            index = end + 1
        return written

    # blocks

    def _blocks(self, index: int, stop: int, *, loose: bool) -> list[str]:
        lines: list[str] = []
        previous_list = None
        while index < stop:
            block, index, previous_list = self._block(index, previous_list)
            if block:
                if lines and (loose or starts_with_empty_item(block[0])):
                    lines.append("")
                lines.extend(block)
            index += 1
        return lines

    def _block(self, index: int, previous_list: tuple[str, str] | None
               ) -> tuple[list[str], int, tuple[str, str] | None]:
        """The lines of the block opening at `index`, the index of its last token, and what list
        it is (two lists in a row must not merge)."""
        tokens = self._tokens
        token = tokens[index]
        end = self._closing.get(index, index)
        kind = token.type
        if kind == "paragraph_open":
            return _marked_block(self._paragraph(tokens[index + 1])), end, None
        if kind == "heading_open":
            return _marked_block(self._heading(token, tokens[index + 1])), end, None
        if kind == "table_open":
            return _marked_block(self._table(index, end)), end, None
        if kind in ("fence", "code_block"):
            return self._code(token), end, None
        if kind == "hr":
            return ["___"], end, None
        if kind == "blockquote_open":
            return self._quote(index + 1, end), end, None
        if kind in ("bullet_list_open", "ordered_list_open"):
            lines, this_list = self._list(index, end, previous_list)
            return lines, end, this_list
        return [], end, None

    def _paragraph(self, inline: Token) -> list[str]:
        lines = self._inline(inline).split("\n")
        # a line the source had as lazy continuation could underline a heading or a table header
        # once indented like the rest, and marked starts a list at a number in an item's text
        for number in range(1, len(lines)):
            line = lines[number]
            if _UNDERLINE.fullmatch(line) or _DELIMITER_ROW.fullmatch(line):
                at = re.search(r"[=\-]", line).start()
            elif marker := _LIST_MARKER.match(line):
                at = marker.end() - 1
            else:
                continue
            lines[number] = line[:at] + "\\" + line[at:]
        return lines

    def _heading(self, token: Token, inline: Token) -> list[str]:
        level = int(token.tag[1])
        if level <= 2 and "\n" in inline.content:
            return self._paragraph(inline) + ["===" if level == 1 else "---"]
        text = self._inline(inline).replace("\n", " ")
        closing = _CLOSING_HASHES.search(text)
        if closing:
            text = text[:closing.start(1)] + "\\" + text[closing.start(1):]
        return ["#" * level + (" " + text if text else "")]

    def _code(self, token: Token) -> list[str]:
        lines = token.content.split("\n")
        if lines[-1] == "":
            lines.pop()
        fence = "`" * max(3, max(map(len, _BACKTICKS.findall(token.content)), default=0) + 1)
        language = ""
        if token.type == "fence":
            from markdown_it.common.utils import unescapeAll

            words = unescapeAll(token.info).split()
            language = words[0] if words and _LANGUAGE.fullmatch(words[0]) else ""
        self._fences.append(Fence(lines, fence, self._quote_depth > 0))
        return [FENCE_OPEN + fence + language, *lines, fence + FENCE_CLOSE]

    def _quote(self, index: int, stop: int) -> list[str]:
        self._quote_depth += 1
        inner = self._blocks(index, stop, loose=True)
        self._quote_depth -= 1
        return [f"> {line}" if line else ">" for line in inner] or [">"]

    def _list(self, index: int, stop: int,
              previous: tuple[str, str] | None) -> tuple[list[str], tuple[str, str]]:
        tokens = self._tokens
        opening = tokens[index]
        tight = any(token.hidden for token in tokens[index:stop]
                    if token.type == "paragraph_open" and token.level == opening.level + 2)
        delimiter = opening.markup
        if previous == (opening.type, delimiter):  # two lists apart in the source: keep them apart
            delimiter = _OTHER_BULLET[delimiter]
        ordered = opening.type == "ordered_list_open"
        lines: list[str] = []
        item = index + 1
        while item < stop:
            item_end = self._closing[item]
            marker = tokens[item].info + delimiter if ordered else delimiter
            inner = self._blocks(item + 1, item_end, loose=not tight)
            if lines and not tight:
                lines.append("")
            lines.append(f"{marker} {inner[0]}" if inner else marker)
            indent = " " * (len(marker) + 1)
            lines.extend(indent + line if line else "" for line in inner[1:])
            item = item_end + 1
        return lines, (opening.type, delimiter)

    def _table(self, index: int, stop: int) -> list[str]:
        rows: list[list[str]] = []
        aligns: list[str] = []
        for token in self._tokens[index:stop]:
            if token.type == "tr_open":
                rows.append([])
            elif token.type == "th_open":
                aligns.append(_ALIGN.get(str(token.attrs.get("style", "")), "---"))
            elif token.type == "inline":
                rows[-1].append(self._inline(token, in_table=True))
        lines = ["| " + " | ".join(row) + " |" for row in rows]
        lines.insert(1, "| " + " | ".join(aligns) + " |")
        return lines

    # inline

    def _inline(self, inline: Token, *, in_table: bool = False) -> str:
        children = inline.children or []
        return self._run(inline.content, children, 0, len(children), 0, len(inline.content),
                         in_table)

    def _run(self, source: str, children: list[Token], first: int, last: int, start: int,
             stop: int, in_table: bool, in_link: bool = False) -> str:
        """The source from `start` to `stop`, whose tokens are children[first:last]."""
        out, position, index = [], start, first
        while index < last:
            token = children[index]
            span = token.meta.get("span")
            if span is None:
                index += 1
                continue
            out.append(self._gap(source[position:span[0]], in_table, token.type))
            position = span[1]
            if token.type == "code_inline":
                out.append(self._code_span(token.content, out, in_table))
            elif token.type == "image":
                out.append(self._image(token, source[span[0]:span[1]], in_link))
            elif in_link:  # an autolink in a link's text: links do not nest
                out.append(escape_inline(children[index + 1].content))
                index += 2
            else:
                close, depth = index + 1, 1
                while depth:  # an autolink may sit in the link's text
                    depth += {"link_open": 1, "link_close": -1}.get(children[close].type, 0)
                    close += 1
                out.append(self._link(source, children, index, close - 1, in_table))
                index = close - 1
            index += 1
        out.append(self._gap(source[position:stop], in_table, None))
        return "".join(out)

    def _gap(self, text: str, in_table: bool, before: str | None) -> str:
        """Source text the parser saw as text, `before` a token of that type (None: at the end)."""
        if not text:
            return text
        escaped = (_GAP_IN_TABLE if in_table else _GAP).sub(_escape_gap, text)
        if before == "code_inline" and escaped[-1] == "~" and not _escaped_last(escaped):
            # marked reads a run of tildes and backticks as one piece of text
            escaped = escaped[:-1] + "\\~"
        if _BARE_URL.search(escaped):
            escaped = _hide_bare_urls(escaped, followed=before is not None)
        return _SOFT_BREAK.sub("\\\n", escaped) if self.hard_breaks else escaped

    def _code_span(self, content: str, before: list[str], in_table: bool) -> str:
        if in_table:
            if re.search(r"(?<!\\)(?:\\\\)*\\\|", content):
                return escape_inline(content)  # no cell syntax keeps this one as code
            content = content.replace("|", "\\|")
        _entity_before_span(before)
        self._spans.extend(piece for piece in _BACKTICK_RUNS.split(content)
                          if piece and piece[0] != "`")
        return code_spans(content, mark=True)

    def _link(self, source: str, children: list[Token], opening: int, closing: int,
              in_table: bool) -> str:
        token = children[opening]
        start, end = token.meta["span"]
        href = str(token.attrs.get("href", ""))
        if not link_allowed(href):
            return escape_inline(source[start:end])
        if token.markup == "autolink":
            label = escape_inline(children[opening + 1].content)
        else:
            label = self._run(source, children, opening + 1, closing, start + 1,
                              token.meta["label_end"], in_table, in_link=True)
        title = _title(str(token.attrs.get("title", "")))
        return f"{LINK_OPEN}[{label}]({_destination(href)}{title}){LINK_CLOSE}"

    def _image(self, token: Token, source: str, in_link: bool) -> str:
        url = str(token.attrs.get("src", ""))
        alt = escape_inline(_plain_text(token.children or []))
        title = _title(str(token.attrs.get("title", "")))
        if url.startswith("data:image/") or (self.remote_images and link_allowed(url)):
            return f"{LINK_OPEN}![{alt}]({_destination(url)}{title}){LINK_CLOSE}"
        if not link_allowed(url):
            return escape_inline(source)
        label = f"image: {alt}" if alt else "image"
        if in_link:  # links do not nest: the address as text
            return f"{label} {escape_inline(f'({url})')}"
        return f"{LINK_OPEN}[{label}]({_destination(url)}{title}){LINK_CLOSE}"


def _entity_before_span(before: list[str]) -> None:
    """An escaped backslash or backtick just before a code span hides the span from JupyterLab's
    math finder and from marked's emphasis: write it as an entity instead."""
    for index in range(len(before) - 1, -1, -1):
        if before[index]:
            if before[index].endswith(("\\\\", "\\`")):
                before[index] = before[index][:-2] + f"&#{ord(before[index][-1])};"
            return


def _hide_bare_urls(text: str, followed: bool) -> str:
    """`text` with a backslash in each bare URL that marked would run on into an escape (taking
    its backslash), into math JupyterLab cuts out, or into what follows the text, so that marked
    sees no URL there."""
    out, last = [], 0
    for match in _BARE_URL.finditer(text):
        run_end = _BARE_URL_RUN.match(text, match.end()).end()
        run = text[match.end():run_end]
        if "\\" in run or "$" in run or (followed and run_end == len(text)):
            out += [text[last:match.end()], "\\"]
            last = match.end()
    return "".join(out) + text[last:]


def _escaped_last(text: str) -> bool:
    """Whether the last character of Markdown `text` is backslash-escaped."""
    return (len(text) - 1 - len(text[:-1].rstrip("\\"))) % 2 == 1


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES.get(match[0]) or "\\" + match[0]


def _escape_gap(match: re.Match[str]) -> str:
    return match[0] if match[0][0] == "\\" else _escape(match)


def unmark(block: WrittenBlock) -> tuple[str, list[Construct]]:
    """The block's text without markers, and where its constructs lie (in order of start)."""
    parts = block.marked.split(MARK)
    out, position = [parts[0]], len(parts[0])
    constructs: list[Construct] = []
    open_at: list[int] = []
    fences, spans = iter(block.fences), iter(block.spans)
    for part in parts[1:]:
        kind = part[0]
        if kind in _OPENERS:
            construct = Construct(_OPENERS[kind], position, -1)
            if kind == "F":
                construct.fence = next(fences)
            elif kind == "S":
                construct.content = next(spans)
            open_at.append(len(constructs))
            constructs.append(construct)
        else:
            constructs[open_at.pop()].end = position
        out.append(part[1:])
        position += len(part) - 1
    return "".join(out), constructs
