"""The chat: a conversation with any registered model, streamed without blocking the kernel.

Requests run on the package's runner loop; chunks reach the widget through a throttled view
(the one the magics stream with). Every finished answer, a stopped one included, stays in the
conversation (the next model sees it) and counts in the chat's footer; the session's usage
account hears of it from the response itself.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ... import runner, settings
from ...responses import Usage
from ...prices import SessionCosts
from ...usage import SessionUsage
from .. import render
from . import chat_options
from .chat_view import ChatView
from .approval_widget import ApprovalQuestions
from .rendered import markdown_html
from .turns import Turn, error_markdown, estimated_usage, usage_line


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


class _LiveAnswer(render.ResponseView):
    """Streams one answer into the chat's `live` state (one trait update per render)."""

    def __init__(self, response: Any, view: ChatView) -> None:
        super().__init__(response, render.Throttle())
        self.view = view
        self.markdown = ""

    def _send(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.markdown = data.get("text/markdown", "")
        self.view.live = {"who": self.response.model.model_id, "html": markdown_html(self.markdown)}


class _LiveChain(render.ChainView):
    """Streams a chain (the rounds and the blocks of their calls) into the chat's `live` state."""

    def __init__(self, answer: Any, view: ChatView, who: str) -> None:
        super().__init__(answer, render.Throttle(), self._show_live)
        self.view = view
        self.who = who
        self.markdown = ""

    def _show_live(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.markdown = data.get("text/markdown", "")
        self.view.live = {"who": self.who, "html": markdown_html(self.markdown)}


def _notebook() -> tuple[dict[str, Any], Any]:
    """The user namespace and the @plot history of the running IPython, if any."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return {}, None
    magics = getattr(shell, "_llm_notebook_magics", None)
    return shell.user_ns, getattr(magics, "plots", None)


class Chat:
    """A chat with a model: `send()`, `stop()`, `wait()`, `model`, `conversation`, `history`.

    Displayed, it shows the conversation as Markdown in its own scroll area, a message box
    (Enter sends, Shift+Enter adds a line), Send and Stop, a model menu, attachments (upload, or
    a variable name or @plot), the model's options and a usage footer. `widget` is the widget
    itself, to place inside other widgets.

    With `tools` (functions, Toolbox instances, Tool objects) each message runs as a chain: the
    calls show as blocks while they run; `approve=True` asks before each (Allow, Deny, Allow
    all, in the chat), `chain_limit` caps the rounds.
    """

    def __init__(self, model: Any = None, *, system: str | None = None,
                 conversation: Any = None, tools: Any = None, approve: bool = False,
                 chain_limit: int | None = None, **options: Any) -> None:
        from ...tools import as_tools

        as_tools(tools)  # a name clash or a non-tool fails here, not at the first message
        self.system = system
        self.tools = list(tools) if tools else None
        self.approve = approve
        self.chain_limit = chain_limit
        #: This conversation's usage and cost, by model (the footer).
        self.usage = SessionUsage(costs=SessionCosts())
        self.widget = ChatView()
        self._options = dict(options)
        self._turns: list[Turn] = []
        self._shown: list[tuple[str, str]] = []  # (kind, Markdown) of each finished message
        self._estimated_tokens = 0
        self._idle = threading.Event()
        self._idle.set()
        self._busy_lock = threading.Lock()
        self._handle: Any = None
        self._live: _LiveAnswer | _LiveChain | None = None
        self._questions: ApprovalQuestions | None = None
        self._conversation = (conversation if conversation is not None
                              else pick_model(model).conversation())
        for name, handler in (("submit", self._on_submit), ("stop", lambda *_: self.stop()),
                              ("model", self._on_model_menu), ("option", self._on_option),
                              ("decide", self._on_decide)):
            self.widget.on_event(name, handler)
        if model is not None and conversation is not None:
            self.model = model
        self._show_model()
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
        """Talk to another model from now on; the conversation so far goes with it, and so do
        the options the new model takes (the others are dropped, with a note)."""
        model = pick_model(name)
        if model is self.model:
            return
        if self.busy:
            self._notice("Wait for the answer (or press Stop) before switching model")
            self._show_model()
            return
        conversation = model.conversation(name=self._conversation.name)
        conversation.responses.extend(self._conversation.responses)
        self._conversation = conversation
        self._options, dropped = chat_options.carried_over(model, self._options)
        self._show_model()
        note = f"Now talking to {model.model_id}; the conversation so far goes with it"
        if dropped:
            note += f". Dropped options {model.model_id} does not take: {', '.join(dropped)}"
        self._notice(note)

    @property
    def options(self) -> dict[str, Any]:
        """Model options sent with every message (checked by the model when sending)."""
        return self._options

    @options.setter
    def options(self, options: dict[str, Any]) -> None:
        self._options = dict(options)
        self._show_options()

    def set_option(self, name: str, value: Any) -> None:
        """What the options editor does: set `name` (text is read as the option's type; None or
        "" unsets it), checked by the model; a bad value is a note in the editor, not a change."""
        try:
            self._options = chat_options.edited(self.model, self._options, name, value)
        except Exception as exc:  # shown in the editor: a user's mistake, never a traceback
            self.widget.option_error = _one_line(exc)
        else:
            self.widget.option_error = ""
        self._show_options()

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
        self._turns.append(turn)
        try:
            turn.attachments = [self._attachment(item) for item in attachments or ()]
            if self.tools:
                return self._send_chain(turn, text)
            turn.response = self._conversation.prompt(text or None, **self._prompt_arguments(turn))
        except Exception as exc:  # shown in the chat: a user's mistake, never a traceback
            turn.status, turn.error = "error", _one_line(exc)
            self._show("user", "You", turn.asked_markdown())
            self._show("error", "", error_markdown(turn.error))
            self._refresh_record()
            self._idle.set()
            return turn
        self._show("user", "You", turn.asked_markdown())
        view = self._live = _LiveAnswer(turn.response, self.widget)
        self.widget.live = {"who": turn.model, "html": ""}
        self._set_busy(True)
        turn.status = "running"
        self._handle = runner.submit(self._stream(turn, view))
        # Finishing hangs on the handle, not the coroutine: a Stop that comes before the
        # coroutine starts cancels it without running any of it.
        self._handle.add_done_callback(lambda _: self._finish(turn, view))
        return turn

    def _send_chain(self, turn: Turn, text: str) -> Turn:
        """Send with tools: a chain on the runner, its blocks and questions shown in the chat."""
        from ...answers import ChainAnswer
        from ...tool_blocks import CallLog
        from ..approval import Approvals
        from ..chain_run import ChainHooks, ChainRun

        if not self.model.supports_tools:
            raise ValueError(f"{self.model.model_id} does not call tools: pick a model that "
                             "does, or make the chat without tools=")
        calls = CallLog()
        self._questions = ApprovalQuestions(self.widget, "approvals")
        approvals = Approvals(self._questions.ask) if self.approve else None
        chain = self._conversation.chain(
            text or None, tools=self.tools, chain_limit=self.chain_limit,
            **ChainHooks(calls, approvals).hooks_for(self.model), **self._prompt_arguments(turn))
        turn.chain_answer = answer = ChainAnswer(chain, calls)
        self._show("user", "You", turn.asked_markdown())
        view = self._live = _LiveChain(answer, self.widget, turn.model)
        calls.on_change = view.changed
        self.widget.live = {"who": turn.model, "html": ""}
        self._set_busy(True)
        turn.status = "running"
        self._handle = ChainRun(chain, answer, view,
                                on_stop=approvals.deny_open if approvals else None,
                                on_end=lambda ended, error: self._finish_chain(turn, view, error))
        return turn

    def submit(self, text: str, *, attach: str = "", files: tuple[bytes, ...] = ()) -> Turn | None:
        """What Enter in the message box does: send `text` with the attach field's reference and
        the uploaded files. Returns the Turn (None when nothing was sent)."""
        pending: list[Any] = list(files)
        if attach.strip():
            pending.append(attach.strip())
        return self.send(text, pending)

    def stop(self) -> None:
        """Stop the answer streaming now; the part received so far is kept (and recorded)."""
        if self._handle is not None:
            self._handle.cancel()

    def transcript(self) -> list[tuple[str, str]]:
        """What the chat shows, message by message: ("user" | "answer" | "error", Markdown),
        the answer streaming now last."""
        shown = list(self._shown)
        live = self._live
        if live is not None:
            shown.append(("answer", live.markdown))
        return shown

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no answer is streaming; False if `timeout` seconds passed first."""
        return self._idle.wait(timeout)

    def _ipython_display_(self) -> None:
        self.widget._ipython_display_()

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- sending --------------------------------------------------------------------------------
    def _prompt_arguments(self, turn: Turn) -> dict[str, Any]:
        """Everything a message sends besides its text (where tools will join)."""
        return {"attachments": turn.attachments, "system": self.system, **self._options}

    def _attachment(self, item: Any):
        if isinstance(item, str):
            from ...references import resolve_attachment

            namespace, plots = _notebook()
            return resolve_attachment(item, namespace, plots, settings.max_image_edge)
        from ...attachments import Attachment

        return Attachment.from_object(item)

    # -- streaming (on the runner loop) ---------------------------------------------------------
    async def _stream(self, turn: Turn, view: _LiveAnswer) -> None:
        try:
            await runner.consume(turn.response, view.add)
        except asyncio.CancelledError:
            pass  # Stop: the response keeps its partial text, marked interrupted
        except Exception as exc:  # the response records model failures; this is anything else
            turn.error = _one_line(exc)

    def _finish(self, turn: Turn, view: _LiveAnswer) -> None:
        """On the runner thread (or at once, if already done), after the stream ended."""
        try:
            response = turn.response
            if not response.finished:  # stopped before the model was called, or mid-stream
                response.interrupt()
            summary = response.to_dict()
            turn.status = summary["status"]
            turn.duration_ms = summary["duration_ms"]
            if turn.status == "error":
                turn.error = response.error
            elif turn.error is not None:
                turn.status = "error"
            self._count(turn, summary)
            answer = render.Answer(response)
            with self.widget.hold_sync():
                if answer.said_anything or turn.status == "done":
                    view.finish(answer)
                    self._show("answer", turn.model, view.markdown, partial=turn.partial)
                elif turn.status == "interrupted":
                    self._show("error", "", "_[stopped before the answer began]_")
                if turn.error:
                    self._show("error", "", error_markdown(turn.error))
                self.widget.live = {}
                self._live = None
                self._set_busy(False)
            self._refresh_record()
        finally:
            self._idle.set()

    def _finish_chain(self, turn: Turn, view: _LiveChain, error: BaseException | None) -> None:
        """On the runner, once a chain has ended (its view already shows the final answer)."""
        try:
            answer = turn.chain_answer
            turn.response = answer.response
            turn.status = answer.status if error is None else "error"
            turn.error = _one_line(error) if error is not None else None
            turn.duration_ms = answer.duration_ms()
            summary = answer.usage_summary()
            turn.usage = Usage(**summary["usage"])
            for response in answer.chain.responses_so_far():
                self.usage.costs.record(response)
            self.usage.record(summary)
            with self.widget.hold_sync():
                if answer.said_anything:
                    self._show("answer", turn.model, view.markdown, partial=turn.partial)
                if turn.error:
                    self._show("error", "", error_markdown(turn.error))
                self.widget.live = {}
                self.widget.approvals = []
                self._live = None
                self._set_busy(False)
            self._refresh_record()
        finally:
            self._idle.set()

    def _count(self, turn: Turn, summary: dict[str, Any]) -> None:
        """The turn's usage in the footer: what the model reported or, for an answer stopped
        before the model counted, an estimate (said to be one)."""
        usage = summary["usage"]
        if turn.status == "interrupted" and usage["input"] is None and usage["output"] is None:
            estimate = estimated_usage(turn.response)
            turn.usage, turn.usage_estimated = estimate, True
            self._estimated_tokens += estimate.input + estimate.output
            summary = {**summary, "usage": {"input": estimate.input, "output": estimate.output,
                                            "details": None}}
        else:
            turn.usage = Usage(**usage)
        self.usage.costs.record(turn.response)
        self.usage.record(summary)

    # -- front-end events -----------------------------------------------------------------------
    def _on_submit(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        text = content.get("text") if isinstance(content.get("text"), str) else ""
        attach = content.get("attach") if isinstance(content.get("attach"), str) else ""
        turn = self.submit(text, attach=attach, files=tuple(buffers))
        sent = turn is not None and turn.status != "error"
        self.widget.tell_front_end({"event": "submitted", "id": content.get("id"), "sent": sent})

    def _on_model_menu(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        name = content.get("id")
        if not isinstance(name, str) or name == self.model.model_id:
            return
        try:
            self.model = name
        except Exception as exc:  # e.g. the model was unregistered since the menu was filled
            self._show("error", "", error_markdown(_one_line(exc)))
            self._show_model()

    def _on_decide(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        """Allow / Deny / Allow all on a question of the message answering now."""
        if self._questions is not None:
            self._questions.on_decide(content)

    def _on_option(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        name = content.get("name")
        if isinstance(name, str):
            self.set_option(name, content.get("value"))

    # -- what the widget shows ------------------------------------------------------------------
    def _show(self, kind: str, who: str, markdown: str, *, partial: bool = False) -> None:
        self._shown.append((kind, markdown))
        self.widget.messages = [*self.widget.messages, {
            "kind": kind, "who": who, "html": markdown_html(markdown), "partial": partial}]

    def _show_model(self) -> None:
        ids = model_ids()
        if self.model.model_id not in ids:
            ids.append(self.model.model_id)
        with self.widget.hold_sync():
            self.widget.model_choices = ids
            self.widget.current_model = self.model.model_id
            self._show_options()

    def _show_options(self) -> None:
        self.widget.option_fields = chat_options.option_fields(self.model, self._options)

    def _set_busy(self, busy: bool) -> None:
        self.widget.busy = busy
        self.widget.notice = f"{self.model.model_id} is answering…" if busy else ""

    def _notice(self, message: str) -> None:
        self.widget.notice = message

    def _add_earlier(self, response: Any) -> None:
        """A turn of a conversation the chat was given: shown, counted, not recorded again."""
        summary = response.to_dict()
        turn = Turn(prompt=summary["prompt"] or "", model=summary["model"],
                    attachments=list(response.attachments), status=summary["status"],
                    usage=Usage(**summary["usage"]), duration_ms=summary["duration_ms"],
                    response=response)
        self._turns.append(turn)
        self._show("user", "You", turn.asked_markdown())
        self._show("answer", turn.model, turn.answer_markdown(), partial=turn.partial)
        self.usage.costs.record(response)
        self.usage.record(summary)

    def _refresh_record(self) -> None:
        """The footer and the saved-notebook Markdown, after each exchange."""
        footer = usage_line(self.usage, estimated=self._estimated_tokens)
        self.widget.footer = footer
        turns = list(self._turns)
        markdown = "\n\n---\n\n".join(turn.markdown() for turn in turns)
        plain = "\n\n".join(turn.plain() for turn in turns)
        self.widget.show_text_copy(f"{markdown}\n\n_{footer}_" if turns else f"_{footer}_",
                                   f"{plain}\n\n{footer}" if turns else footer)


def _one_line(exc: BaseException) -> str:
    from ...errors import LLMNotebookError

    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, LLMNotebookError):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
