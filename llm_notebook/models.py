"""The plugin API: model base classes, options and conversations.

A plugin subclasses `Model` (sync, `def execute`) and/or `AsyncModel` (`async def execute`),
or their `KeyModel` variants whose execute() also receives the resolved `key`.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .attachments import Attachment
from .errors import (AttachmentError, LLMNotebookError, OptionsError,
                     UnknownModelError)
from . import observers  # noqa: F401  (every finished response is logged and counted)
from .keys import Secret
from .model_keys import key_for
from .parts import Message, TextPart
from .responses import AsyncResponse, Prompt, Response, Usage, new_id
from .tools import partition_tools as _partition_tools  # noqa: F401  (plugins import it from here)

__all__ = [
    "AsyncConversation", "AsyncKeyModel", "AsyncModel", "AsyncResponse", "Conversation",
    "KeyModel", "Model", "Options", "Prompt", "Response", "Usage",
]


class CapabilityError(LLMNotebookError, ValueError):
    """A prompt asks for something the model does not do (tools, schemas)."""


class Options(BaseModel):
    """Base for a model's options; unknown options are rejected before any request."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def _options_error(model_id: str, options_class: type[Options], exc: ValidationError) -> OptionsError:
    known = ", ".join(sorted(options_class.model_fields)) or "none"
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error.get("loc", ())) or "?"
        if error.get("type") == "extra_forbidden":
            problems.append(f"unknown option {name!r} (options of {model_id!r}: {known})")
        else:
            problems.append(f"option {name!r}: {error.get('msg')} (got {error.get('input')!r})")
    return OptionsError(f"Invalid options for model {model_id!r}: " + "; ".join(problems))


class _KeyAttribute:
    """`model.key`, kept as a `Secret` so that reprs and verbose tracebacks never show it."""

    def __get__(self, model: Any, owner: type | None = None) -> Secret | None:
        if model is None:
            return None
        return model.__dict__.get("_llm_notebook_key")

    def __set__(self, model: Any, value: str | None) -> None:
        model.__dict__["_llm_notebook_key"] = None if value is None else Secret(value)


class _BaseModel:
    """What sync and async models share: identity, validation, keys and conversations."""

    model_id: str = ""
    model_name: str | None = None
    description: str | None = None
    can_stream: bool = True
    attachment_types: set[str] = set()
    needs_key: str | None = None
    key_env_var: str | None = None
    key = _KeyAttribute()
    supports_schema: bool = False
    supports_tools: bool = False
    supports_conversation: bool = True
    _takes_key: ClassVar[bool] = False
    _response_class: ClassVar[type] = Response
    _conversation_class: ClassVar[type]

    class Options(Options):
        pass

    @property
    def supported_server_side_tools(self) -> tuple[type, ...]:
        """The ServerSideTool classes this model accepts (none unless a plugin says so)."""
        return ()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id!r}>"

    def __str__(self) -> str:
        kind = "async " if isinstance(self, AsyncModel) else ""
        return f"{kind}model {self.model_id}"

    def validate_options(self, options: dict[str, Any]) -> Options:
        """The model's Options built from `options`, or OptionsError naming the bad one."""
        try:
            return self.Options(**options)
        except ValidationError as exc:
            raise _options_error(self.model_id, self.Options, exc) from None

    def validate_attachments(self, attachments: Iterable[Any] | None) -> list[Attachment]:
        """Attachments as `Attachment`s, each of a type the model accepts. One attachment given
        alone (a path, a URL, an image, bytes) counts as a list of one."""
        if attachments is None:
            attachments = ()
        elif not isinstance(attachments, (list, tuple, set, frozenset, types.GeneratorType)):
            attachments = [attachments]
        result = []
        for item in attachments:
            attachment = item if isinstance(item, Attachment) else Attachment.from_object(item)
            kind = attachment.load().resolve_type()
            if kind not in self.attachment_types:
                accepted = ", ".join(sorted(self.attachment_types)) or "none"
                raise AttachmentError(
                    f"Model {self.model_id!r} does not accept attachments of type {kind}; "
                    f"it accepts: {accepted}")
            result.append(attachment)
        return result

    def get_key(self, explicit_key: str | None = None) -> str | None:
        """The key to use: argument, `self.key`, stored key `needs_key`, then `key_env_var`.

        Called with no argument from this model's own execute(), the argument is the key
        given to `prompt(key=...)`.
        """
        return key_for(self, explicit_key, call="prompt")

    def _check_capabilities(self, prompt: Prompt) -> None:
        """Tools and schemas go only to models that declare them, before any request."""
        if prompt.schema is not None and not self.supports_schema:
            raise CapabilityError(f"Model {self.model_id!r} does not support schemas: leave out "
                                  "schema=, or use a model with structured output")
        functions, _ = _partition_tools(self, prompt.tools)
        if functions and not self.supports_tools:
            raise CapabilityError(f"Model {self.model_id!r} does not support tools: leave out "
                                  "tools=, or use a model that calls them")

    def _make_response(self, prompt: str | None = None, *, conversation: _BaseConversation | None,
                       attachments: Iterable[Any] | None = None, system: str | None = None,
                       schema: Any = None, tools: Iterable[Any] | None = None,
                       tool_results: list[Any] | None = None, messages: list[Any] | None = None,
                       hide_reasoning: bool = False, fragments: list[str] | None = None,
                       system_fragments: list[str] | None = None, stream: bool = True,
                       key: str | None = None, **options: Any):
        for given, what in ((prompt, "prompt"), (system, "system")):
            if given is not None and not isinstance(given, str):
                raise TypeError(f"The {what} must be text (a str) or None, not a "
                                f"{type(given).__name__}: write {what}=str(...) to send its "
                                "text")
        validated_options = self.validate_options(options)
        checked = self.validate_attachments(attachments)
        resolved_key = self.get_key(key)
        if messages is None and conversation is not None:
            messages = conversation.input_messages(prompt, attachments=checked, system=system,
                                          tool_results=tool_results, fragments=fragments,
                                          system_fragments=system_fragments)
        request = Prompt(prompt, self, attachments=checked, system=system,
                         options=validated_options, schema=schema, tools=tools,
                         tool_results=tool_results, messages=messages,
                         hide_reasoning=hide_reasoning, fragments=fragments,
                         system_fragments=system_fragments)
        self._check_capabilities(request)
        return self._response_class(request, self, stream=stream and self.can_stream,
                                    conversation=conversation, key=resolved_key)

    def prompt(self, prompt: str | None = None, *, attachments: Iterable[Any] | None = None,
               system: str | None = None, schema: Any = None, tools: Iterable[Any] | None = None,
               tool_results: list[Any] | None = None, messages: list[Any] | None = None,
               hide_reasoning: bool = False, fragments: list[str] | None = None,
               system_fragments: list[str] | None = None, stream: bool = True,
               key: str | None = None, **options: Any):
        """Prepare a response; options, attachments, tools, schema and key are checked now, the
        model runs lazily. `messages` (llm's structured input) replaces the text arguments as
        the chain the model is sent."""
        return self._make_response(
            prompt, conversation=None, attachments=attachments, system=system, schema=schema,
            tools=tools, tool_results=tool_results, messages=messages,
            hide_reasoning=hide_reasoning, fragments=fragments, system_fragments=system_fragments,
            stream=stream, key=key, **options)

    def conversation(self, name: str | None = None, *, tools: Iterable[Any] | None = None,
                     before_call: Any = None, after_call: Any = None,
                     chain_limit: int | None = None):
        """A new conversation: prompts through it see the earlier turns. `tools` and the hooks
        are what its `chain()` calls use when they give none of their own."""
        return self._conversation_class(model=self, name=name, tools=tools,
                                        before_call=before_call, after_call=after_call,
                                        chain_limit=chain_limit)

    def chain(self, prompt: str | None = None, *, tools: Iterable[Any] | None = None,
              before_call: Any = None, after_call: Any = None, chain_limit: int | None = None,
              **arguments: Any):
        """Prompt with tools and keep going: the calls the model asks for run, their results go
        back, until it answers without calls or `chain_limit` rounds (10) have run. Takes the
        arguments of `prompt()`; returns a ChainResponse (AsyncChainResponse for async models)."""
        return self.conversation().chain(prompt, tools=tools, before_call=before_call,
                                         after_call=after_call, chain_limit=chain_limit,
                                         **arguments)


class Model(_BaseModel):
    """A sync model: implement `execute(self, prompt, stream, response, conversation)` yielding text."""

    def execute(self, prompt: Prompt, stream: bool, response: Response,
                conversation: Conversation | None):
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")


class KeyModel(Model):
    """A sync model whose execute() also receives the resolved `key`."""

    _takes_key = True

    def execute(self, prompt: Prompt, stream: bool, response: Response,
                conversation: Conversation | None, key: str | None):
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")


class AsyncModel(_BaseModel):
    """An async model: implement `async def execute(...)` as an async generator of text."""

    _response_class = AsyncResponse

    async def execute(self, prompt: Prompt, stream: bool, response: AsyncResponse,
                      conversation: AsyncConversation | None):
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")
        yield ""  # pragma: no cover - makes this an async generator


class AsyncKeyModel(AsyncModel):
    """An async model whose execute() also receives the resolved `key`."""

    _takes_key = True

    async def execute(self, prompt: Prompt, stream: bool, response: AsyncResponse,
                      conversation: AsyncConversation | None, key: str | None):
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")
        yield ""  # pragma: no cover - makes this an async generator


class _BaseConversation:
    """Earlier turns of one exchange; finished (and interrupted) responses join `responses`.

    A conversation holds a model id. When its model was the registered one, each prompt goes to
    the model registered under that id now, so re-running the cell that registers a model takes
    effect in conversations already under way; a model that was never registered stays as given.
    """

    def __init__(self, model: _BaseModel, name: str | None = None, id: str | None = None,
                 responses: list | None = None, *, tools: Iterable[Any] | None = None,
                 before_call: Any = None, after_call: Any = None,
                 chain_limit: int | None = None) -> None:
        self.model_id = model.model_id
        self.name = name
        self.id = id or new_id()
        self.responses: list = list(responses or [])
        self.tools = list(tools or [])
        self.before_call, self.after_call, self.chain_limit = before_call, after_call, chain_limit
        self._given = model
        self._follows_registry = _registered(model) is model

    @property
    def model(self) -> _BaseModel:
        """The model the next prompt goes to."""
        if self._follows_registry:
            current = _registered(self._given)
            if current is not None:
                return current
        return self._given

    def prompt(self, prompt: str | None = None, **arguments: Any):
        """A prompt that carries the earlier turns; takes the arguments of `model.prompt()`."""
        return self.model._make_response(prompt, conversation=self, **arguments)

    def chain(self, prompt: str | None = None, *, tools: Iterable[Any] | None = None,
              before_call: Any = None, after_call: Any = None, chain_limit: int | None = None,
              **arguments: Any):
        """`model.chain()` within this conversation (its tools and hooks unless given)."""
        from .chains import AsyncChainResponse, ChainResponse

        kind = AsyncChainResponse if isinstance(self, AsyncConversation) else ChainResponse
        return kind(self, prompt, tools=self.tools if tools is None else tools,
                    before_call=before_call or self.before_call,
                    after_call=after_call or self.after_call,
                    chain_limit=self.chain_limit if chain_limit is None else chain_limit,
                    arguments=arguments)

    def input_messages(self, prompt: str | None, *, attachments: list[Any], system: str | None,
              tool_results: list[Any] | None = None, fragments: list[str] | None = None,
              system_fragments: list[str] | None = None) -> list[Message]:
        """The complete input chain of the next turn: the system prompt (this one, else the
        latest earlier one), every earlier turn's input and answer, then this turn's input."""
        turn = Prompt(prompt, self._given, attachments=attachments, system=system,
                      tool_results=tool_results, fragments=fragments,
                      system_fragments=system_fragments, options=self._given.Options())
        system_text = turn.system or next(
            (r.prompt.system for r in reversed(self.responses) if r.prompt.system), None)
        messages = [Message(role="system", parts=[TextPart(text=system_text)])] if system_text else []
        for response in list(self.responses):
            messages += response.prompt.turn_messages() + response.messages
        return messages + turn.turn_messages()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.id} model={self.model_id!r} "
                f"turns={len(self.responses)}>")


def _registered(model: _BaseModel) -> _BaseModel | None:
    """The model registered now under `model`'s id, of the same kind (sync or async), if any."""
    from .plugins import registry

    try:
        entry = registry.entry(model.model_id)
    except UnknownModelError:
        return None
    return entry.async_model if isinstance(model, AsyncModel) else entry.model


class Conversation(_BaseConversation):
    """A conversation with a sync model."""


class AsyncConversation(_BaseConversation):
    """A conversation with an async model."""


Model._conversation_class = Conversation
AsyncModel._conversation_class = AsyncConversation
