"""Making model output safe to render as Markdown, whole or half-streamed."""

from __future__ import annotations

import re

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def _escape_html(line: str) -> str:
    """Escape `<` outside inline code, so no raw HTML is ever rendered."""
    out, last = [], 0
    for match in _INLINE_CODE.finditer(line):
        out.append(line[last:match.start()].replace("<", "&lt;"))
        out.append(match.group(0))
        last = match.end()
    out.append(line[last:].replace("<", "&lt;"))
    return "".join(out)


def _scan(text: str) -> tuple[list[tuple[str, bool]], str | None]:
    """Each line tagged with whether it is code, and the fence left open at the end."""
    tagged, fence = [], None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if fence is None:
            tagged.append((line, bool(match)))
            fence = match.group(1) if match else None
            continue
        tagged.append((line, True))
        if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                and not match.group(2).strip():
            fence = None
    return tagged, fence


def safe_markdown(text: str, *, partial: bool = False) -> str:
    """Markdown for display: HTML escaped outside code; a partial answer's open fence closed."""
    tagged, fence = _scan(text)
    result = "\n".join(line if code else _escape_html(line) for line, code in tagged)
    if partial and fence:
        result += "\n" + fence
    return result
