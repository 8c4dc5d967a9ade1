"""The chat's message box: a multi-line input where Enter sends and Shift+Enter adds a line.

ipywidgets' Textarea never tells the kernel which key was pressed, so it cannot tell Enter from
Shift+Enter; this small front-end (an anywidget: plain ES module, no build step) can.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

_CSS = """
.llm-chat-input {
  width: 100%; box-sizing: border-box; resize: vertical; min-height: 3.2em;
  font-family: var(--jp-ui-font-family, sans-serif); font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color0, #000); background: var(--jp-layout-color0, #fff);
  border: 1px solid var(--jp-border-color1, #bbb); border-radius: 3px; padding: 6px;
}
.llm-chat-input:focus { outline: 1px solid var(--jp-brand-color1, #1976d2); }
"""


class ChatInput(anywidget.AnyWidget):
    """The message text as `value`; `on_submit(callback)` hears Enter."""

    _esm = Path(__file__).with_name("chat_input.js")
    _css = _CSS
    value = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("Message (Enter sends, Shift+Enter adds a line)").tag(sync=True)
    rows = traitlets.Int(3).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._submit_callbacks: list[Callable[[str], Any]] = []
        self.on_msg(self._on_message)

    def on_submit(self, callback: Callable[[str], Any]) -> None:
        """Call `callback(text)` when the message `text` is submitted (Enter in the browser)."""
        self._submit_callbacks.append(callback)

    def submit(self, text: str | None = None) -> None:
        """What pressing Enter in the browser does; `text` defaults to the box's `value`."""
        text = self.value if text is None else text
        for callback in self._submit_callbacks:
            callback(text)

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            text = content.get("value")
            self.submit(text if isinstance(text, str) else None)
