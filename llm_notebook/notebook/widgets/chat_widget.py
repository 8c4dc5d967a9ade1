"""The chat widget: a conversation with any registered model, streamed without blocking the kernel.

Requests run on the package's runner loop; chunks reach the widget through a throttled view
(the same one the magics stream with), and each finished answer is recorded in the session's
usage account, as the magics record theirs.
"""

from __future__ import annotations

import asyncio
import html
import threading
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from ... import runner, settings
from ...markdown import safe_markdown
from ...responses import Usage
from ...usage import SessionUsage
from .. import render
from .chat_input import ChatInput
from .outputs import SavedAsText, TextFallback, markdown_output, show_markdown

WAITING = "_…_"


@dataclass
class Turn:
    """One exchange: the message sent and the answer (`status` as the response's)."""

    prompt: str
    model: str
    attachments: list[Any] = field(default_factory=list)
    status: str = "pending"
    error: str | None = None
    usage: Usage | None = None
    duration_ms: int = 0
    response: Any = field(default=None, repr=False)

    @property
    def text(self) -> str:
        """The answer's text, as its response keeps it."""
        return self.response.text_so_far() if self.response is not None else ""

    def asked_markdown(self) -> str:
        """The message as typed (line breaks kept: Markdown would join the lines), attachments."""
        asked = (safe_markdown(self.prompt).replace("\n", "  \n") if self.prompt
                 else "_(attachments only)_")
        return asked + (f"\n\n{_attachments_note(self.attachments)}" if self.attachments else "")

    def markdown(self) -> str:
        """The exchange as Markdown, as a saved notebook shows it."""
        parts = [f"**You**\n\n{self.asked_markdown()}"]
        if self.response is not None:
            answer = render.Answer(self.response).data()["text/markdown"]
            parts.append(f"**{self.model}**\n\n{answer or '_(no text)_'}")
        if self.error:
            parts.append(_error_markdown(self.error))
        return "\n\n".join(parts)

    def plain(self) -> str:
        lines = [f"You: {self.prompt}"]
        if self.response is not None:
            lines.append(f"{self.model}: {self.text}")
        if self.error:
            lines.append(f"Error: {self.error}")
        return "\n".join(lines)


def _attachments_note(attachments: list[Any]) -> str:
    described = []
    for attachment in attachments:
        size = attachment.size()
        described.append(f"`{attachment.resolve_type()}`" + (f" ({size:,} bytes)" if size else ""))
    return "_Attached:_ " + ", ".join(described)


def _error_markdown(message: str) -> str:
    return f"**Error:** {safe_markdown(message)}"


def pick_model(name: Any = None):
    """A model object from an id, an alias, a model, or None (the default model).

    The sync model when there is one, else the async one: both stream through the runner.
    """
    if hasattr(name, "model_id"):
        return name
    from ...plugins import registry

    entry = registry.entry(name)
    return entry.model or entry.async_model


def model_ids() -> list[str]:
    from ...plugins import get_models_with_aliases

    return [entry.model_id for entry in get_models_with_aliases()]


class _OutputView(render.ResponseView):
    """Streams one answer into an Output widget (one trait update per render)."""

    def __init__(self, response: Any, output: widgets.Output) -> None:
        super().__init__(response, render.Throttle())
        self.output = output

    def _send(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.output.outputs = (markdown_output(data, metadata),)


def _notebook() -> tuple[dict[str, Any], Any]:
    """The user namespace and the @plot history of the running IPython, if any."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return {}, None
    magics = getattr(shell, "_llm_notebook_magics", None)
    return shell.user_ns, getattr(magics, "plots", None)


class Chat(SavedAsText, widgets.VBox):
    """A chat with a model: `send()`, `stop()`, `wait()`, `model`, `conversation`, `history`.

    Displayed, it shows the conversation as Markdown, a message box (Enter sends, Shift+Enter
    adds a line), Send and Stop, a model menu, attachments (upload, or a variable name or
    @plot) and a usage footer. A second output keeps the conversation as Markdown for saved
    notebooks, where widgets are not rendered.
    """

    def __init__(self, model: Any = None, *, system: str | None = None,
                 conversation: Any = None, **options: Any) -> None:
        super().__init__()
        self.system = system
        #: Model options sent with every message, e.g. temperature (checked when sending).
        self.options = options
        #: This conversation's usage, by model (the footer); the session's account gets it too.
        self.usage = SessionUsage()
        self._turns: list[Turn] = []
        self._idle = threading.Event()
        self._idle.set()
        self._busy_lock = threading.Lock()
        self._handle: runner.Handle | None = None
        self._syncing_menu = False
        self._conversation = (conversation if conversation is not None
                              else pick_model(model).conversation())

        self._messages = widgets.VBox()
        self._messages.add_class("llm-chat-messages")
        self.input = ChatInput()
        self.send_button = widgets.Button(description="Send", button_style="primary",
                                          icon="paper-plane", tooltip="Send (Enter)")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True,
                                          tooltip="Stop the answer; the part received is kept")
        self.model_menu = widgets.Dropdown(description="Model", layout=widgets.Layout(width="auto"))
        self.upload = widgets.FileUpload(multiple=True, description="Upload")
        self.attach_field = widgets.Text(placeholder="variable name or @plot", description="Attach")
        self.status = widgets.HTML()
        self.footer = widgets.HTML()
        for widget, name in ((self, "llm-chat"), (self.status, "llm-chat-status"),
                             (self.footer, "llm-chat-footer")):
            widget.add_class(name)
        self.children = [
            self._messages, self.input,
            widgets.HBox([self.send_button, self.stop_button, self.model_menu, self.status]),
            widgets.HBox([self.upload, self.attach_field]),
            self.footer,
        ]
        self.fallback = TextFallback()

        self.input.on_submit(self._send_from_controls)
        self.send_button.on_click(lambda _: self._send_from_controls())
        self.stop_button.on_click(lambda _: self.stop())
        self._sync_model_menu()
        self.model_menu.observe(self._on_model_menu, "value")
        if model is not None and conversation is not None:
            self.model = model
        for response in self._conversation.responses:
            self._add_earlier(response)
        self._refresh_record()

    # -- public API ---------------------------------------------------------------------------
    @property
    def conversation(self):
        """The conversation the next message goes into (a new object after a model switch)."""
        return self._conversation

    @property
    def history(self) -> list[Turn]:
        return list(self._turns)

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    @property
    def model(self):
        return self._conversation.model

    @model.setter
    def model(self, name: Any) -> None:
        """Talk to another model from now on; the conversation so far goes with it."""
        model = pick_model(name)
        if model.model_id == self.model.model_id and model is self.model:
            return
        if self.busy:
            self._notice("Wait for the answer (or press Stop) before switching model")
            self._sync_model_menu()
            return
        conversation = model.conversation(name=self._conversation.name)
        conversation.responses.extend(self._conversation.responses)
        self._conversation = conversation
        self._sync_model_menu()
        self._notice(f"Now talking to {model.model_id}; the conversation so far goes with it")

    def send(self, text: str, attachments: list[Any] | None = None) -> Turn | None:
        """Send a message; returns at once with its Turn, which fills in as the answer streams.

        `attachments`: objects `Attachment.from_object` accepts, or strings naming a variable,
        `@plot`, a file or a URL. Errors (a bad attachment, an unknown option, a missing key)
        are shown in the chat and recorded in the Turn; None when nothing was sent because an
        answer is still streaming or the message is empty.
        """
        text = (text or "").strip()
        with self._busy_lock:
            if self.busy:
                self._notice("Still answering: wait for it, or press Stop")
                return None
            if not text and not attachments:
                self._notice("Write a message (or attach something) first")
                return None
            self._idle.clear()
        turn = Turn(prompt=text, model=self.model.model_id)
        try:
            turn.attachments = [self._attachment(item) for item in attachments or ()]
            turn.response = self._conversation.prompt(text or None, attachments=turn.attachments,
                                                      system=self.system, **self.options)
        except Exception as exc:  # shown in the chat: a user's mistake, never a traceback
            turn.status, turn.error = "error", _one_line(exc)
            self._turns.append(turn)
            self._add_message("You", turn.asked_markdown(), "llm-chat-user")
            self._add_message("", _error_markdown(turn.error), "llm-chat-error")
            self._refresh_record()
            self._idle.set()
            return turn
        self._turns.append(turn)
        self._add_message("You", turn.asked_markdown(), "llm-chat-user")
        view = _OutputView(turn.response, self._add_message(turn.model, WAITING, "llm-chat-answer"))
        self._set_busy(True)
        turn.status = "running"
        self._handle = runner.submit(self._stream(turn, view))
        # Finishing hangs on the handle, not the coroutine: a Stop that comes before the
        # coroutine starts cancels it without running any of it.
        self._handle.add_done_callback(lambda _: self._finish(turn, view))
        return turn

    def stop(self) -> None:
        """Stop the answer streaming now; the part received so far is kept (and recorded)."""
        if self._handle is not None:
            self._handle.cancel()

    def transcript(self) -> list[tuple[str, str]]:
        """What the chat shows, message by message: ("user" | "answer" | "error", Markdown)."""
        shown = []
        for message in self._messages.children:
            kind = next(c for c in message._dom_classes if c.startswith("llm-chat-"))
            outputs = message.children[-1].outputs
            shown.append((kind.removeprefix("llm-chat-"),
                          outputs[0]["data"]["text/markdown"] if outputs else ""))
        return shown

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no answer is streaming; False if `timeout` seconds passed first."""
        return self._idle.wait(timeout)

    # -- streaming (on the runner loop) ---------------------------------------------------------
    async def _stream(self, turn: Turn, view: _OutputView) -> None:
        try:
            await runner.consume(turn.response, view.add)
        except asyncio.CancelledError:
            pass  # Stop: the response keeps its partial text, marked interrupted
        except Exception as exc:  # the response records model failures; this is anything else
            turn.error = _one_line(exc)

    def _finish(self, turn: Turn, view: _OutputView) -> None:
        """On the runner thread (or at once, if already done), after the stream ended."""
        try:
            if turn.response.status == "pending":  # stopped before the model was called
                turn.status = "interrupted"
                show_markdown(view.output, "_[stopped before the answer began]_")
                return
            if not turn.response.finished:
                turn.response.interrupt()
            summary = turn.response.to_dict()
            turn.status = summary["status"]
            turn.usage, turn.duration_ms = Usage(**summary["usage"]), summary["duration_ms"]
            if turn.status == "error":
                turn.error = turn.response.error
            elif turn.error is not None:
                turn.status = "error"
            view.finish(render.Answer(turn.response))
            self.usage.record(summary)
            if turn.error:
                self._add_message("", _error_markdown(turn.error), "llm-chat-error")
            self._refresh_record()
        finally:
            self._set_busy(False)
            self._idle.set()

    # -- controls -------------------------------------------------------------------------------
    def _send_from_controls(self, text: str | None = None) -> None:
        """Send `text` (default: the message box's) with the attach controls; clear them once sent.

        A message that is not sent goes back into the box (Enter empties it in the browser).
        """
        text = self.input.value if text is None else text
        pending: list[Any] = [bytes(item["content"]) for item in self.upload.value]
        if self.attach_field.value.strip():
            pending.append(self.attach_field.value.strip())
        turn = self.send(text, pending)
        if turn is not None and turn.response is not None:
            self.input.value = ""
            self.attach_field.value = ""
            self.upload.value = ()
        else:
            self.input.value = text

    def _on_model_menu(self, change: dict[str, Any]) -> None:
        if self._syncing_menu or change["new"] in (None, self.model.model_id):
            return
        try:
            self.model = change["new"]
        except Exception as exc:  # e.g. the model was unregistered since the menu was filled
            self._add_message("", _error_markdown(_one_line(exc)), "llm-chat-error")
            self._sync_model_menu()

    def _sync_model_menu(self) -> None:
        ids = model_ids()
        if self.model.model_id not in ids:
            ids.append(self.model.model_id)
        self._syncing_menu = True
        try:
            self.model_menu.options = ids
            self.model_menu.value = self.model.model_id
        finally:
            self._syncing_menu = False

    def _attachment(self, item: Any):
        if isinstance(item, str):
            from ...references import resolve_attachment

            namespace, plots = _notebook()
            return resolve_attachment(item, namespace, plots, settings.max_image_edge)
        from ...attachments import Attachment

        return Attachment.from_object(item)

    def _set_busy(self, busy: bool) -> None:
        self.send_button.disabled = busy
        self.model_menu.disabled = busy
        self.stop_button.disabled = not busy
        self.status.value = (f"<i>{html.escape(self.model.model_id)} is answering…</i>"
                             if busy else "")

    def _notice(self, message: str) -> None:
        self.status.value = f"<i>{html.escape(message)}</i>"

    # -- the transcript -------------------------------------------------------------------------
    def _add_message(self, who: str, markdown: str, css_class: str) -> widgets.Output:
        output = widgets.Output()
        show_markdown(output, markdown)
        parts = [widgets.HTML(f"<b>{html.escape(who)}</b>"), output] if who else [output]
        message = widgets.VBox(parts)
        message.add_class(css_class)
        self._messages.children = (*self._messages.children, message)
        return output

    def _add_earlier(self, response: Any) -> None:
        """A turn of a conversation the chat was given: shown, counted, not recorded again."""
        summary = response.to_dict()
        turn = Turn(prompt=summary["prompt"] or "", model=summary["model"],
                    attachments=list(response.attachments), status=summary["status"],
                    usage=Usage(**summary["usage"]), duration_ms=summary["duration_ms"],
                    response=response)
        self._turns.append(turn)
        self._add_message("You", turn.asked_markdown(), "llm-chat-user")
        answer = self._add_message(turn.model, "", "llm-chat-answer")
        answer.outputs = (markdown_output(*render.Answer(response)._repr_mimebundle_()),)
        self.usage.record(summary)

    def _refresh_record(self) -> None:
        """The footer and the saved-notebook Markdown, after each exchange."""
        footer = usage_line(self.usage)
        self.footer.value = f"<small>{html.escape(footer)}</small>"
        turns = list(self._turns)
        markdown = "\n\n---\n\n".join(turn.markdown() for turn in turns)
        plain = "\n\n".join(turn.plain() for turn in turns)
        self.fallback.update(f"{markdown}\n\n_{footer}_" if turns else f"_{footer}_",
                              f"{plain}\n\n{footer}" if turns else footer)

    @property
    def note(self) -> str:
        return f"Chat with {self.model.model_id} (a widget): the conversation follows as text"


def usage_line(usage: SessionUsage) -> str:
    """`Usage: 2 responses · 30 input · 80 output tokens · 1.20 s (markov 1, echo 1)`."""
    entries = usage.by_model()
    if not entries:
        return "Usage: no responses yet"
    _, responses, input, output, _, duration, _ = usage.totals().row()
    line = (f"Usage: {responses} response{'s' if responses != '1' else ''} · {input} input · "
            f"{output} output tokens · {duration}")
    if len(entries) > 1:
        line += " (" + ", ".join(f"{entry.model} {entry.responses}" for entry in entries) + ")"
    return line


def _one_line(exc: BaseException) -> str:
    from ...errors import LLMNotebookError

    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, LLMNotebookError):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
