"""Copy and Insert below for the code blocks of an answer, under the answer.

Insert below adds a code cell under the one showing the widget (not run); it needs a frontend
that lets widgets reach the notebook (JupyterLab, Notebook 7), and elsewhere only Copy shows.
A restored widget keeps both: its code is in its own state.
"""

from __future__ import annotations

from typing import Any

import traitlets

from .saved import SavedWidget, module_source, style_source


#: Fences that hold prose, not code (such as a quoted prompt): nothing to run or insert.
PROSE_LANGUAGES = frozenset({"text", "txt", "plaintext", "plain"})


def code_blocks(markdown: str) -> list[dict[str, str]]:
    """The fenced and indented code blocks of `markdown`, in order: {"language", "code"}.
    Fences marked as prose (```text) are left out."""
    from markdown_it import MarkdownIt

    blocks = []
    for token in MarkdownIt("commonmark").parse(markdown or ""):
        if token.type in ("fence", "code_block") and token.content.strip():
            language = token.info.split()[0] if token.info.strip() else ""
            if language.lower() in PROSE_LANGUAGES:
                continue
            blocks.append({"language": language, "code": token.content.rstrip("\n")})
    return blocks


class CodeActions(SavedWidget):
    """One row per code block: its language, first line, Copy and Insert below."""

    _esm = module_source("code_actions.js")
    _css = style_source("code_actions.css")
    kind = "code actions"
    text_copy = False

    blocks = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: This widget's model id, by which the front-end finds the cell showing it.
    key = traitlets.Unicode("").tag(sync=True)

    def __init__(self, blocks: list[dict[str, str]], **kwargs: Any) -> None:
        super().__init__(blocks=blocks, **kwargs)
        self.key = self.model_id

    @property
    def note(self) -> str:
        count = len(self.blocks)
        return (f"Code actions (a widget): Copy and Insert below for the {count} code "
                f"block{'s' if count != 1 else ''} above")


def code_actions(text: str) -> CodeActions | None:
    """For an answer's Markdown with code blocks, a widget with "Copy" and "Insert below" per
    block; None when `text` has no code block."""
    blocks = code_blocks(text)
    return CodeActions(blocks) if blocks else None
