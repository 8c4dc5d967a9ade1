"""What a chat shows, as synced state, and what its front-end asks for, as events.

The front-end (chat.js) draws the transcript, the message box, the controls and the options
editor from this state alone, so a restored widget shows the saved conversation. The message
box belongs to the front-end: on Enter it sends the text in a `submit` event and clears the box
only when the kernel answers that the message was sent, so an error leaves the text in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import traitlets

from .saved import SavedWidget, module_source, style_source

Handler = Callable[[dict[str, Any], list[bytes]], Any]


class ChatView(SavedWidget):
    """The chat's widget. `on_event(name, handler)` hears the front-end's requests:
    `submit` (text, attach, files with their bytes as buffers), `stop`, `model`, `option`,
    `decide` (an approval question answered)."""

    _esm = module_source("chat.js")
    _css = style_source("chat.css")
    kind = "chat"

    #: Finished messages: {"kind": "user" | "answer" | "error", "who", "html", "partial"}.
    messages = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: The answer streaming now ({"who", "html"}), or {} when none is.
    live = traitlets.Dict().tag(sync=True)
    #: Approval questions of the answer streaming now (see approvals.js).
    approvals = traitlets.List(traitlets.Dict()).tag(sync=True)
    model_choices = traitlets.List(traitlets.Unicode()).tag(sync=True)
    current_model = traitlets.Unicode("").tag(sync=True)
    #: The options editor: see chat_options.option_fields.
    option_fields = traitlets.List(traitlets.Dict()).tag(sync=True)
    option_error = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)
    footer = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("Message (Enter sends, Shift+Enter adds a line)").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handlers: dict[str, Handler] = {}
        self.on_msg(self._on_front_end_message)

    @property
    def note(self) -> str:
        return f"Chat with {self.current_model} (a widget): the conversation follows as text"

    def on_event(self, name: str, handler: Handler) -> None:
        self._handlers[name] = handler

    def tell_front_end(self, content: dict[str, Any]) -> None:
        """A message to the front-end (the answer to a `submit`)."""
        self.send(content)

    def _on_front_end_message(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        handler = self._handlers.get(content.get("event"))
        if handler is not None:
            handler(content, [bytes(buffer) for buffer in buffers or ()])
