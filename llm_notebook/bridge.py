"""The llm bridge: the models `llm` and its plugins register, served through this registry,
unported: sync and async, with their options, attachments, streamed events, usage, resolved
model, tool calls and conversations, and logged in this package's log like any answer.

Off unless asked for (`settings.llm_bridge = True` or `LLM_NOTEBOOK_LLM_BRIDGE=1`, with the
`jupyter-llm-notebook[llm]` extra installed). `llm` is imported on the first lookup that needs
it (a name no plugin of ours registered, an `llm/` name, a listing), never when the package or
the magics load. An id that one of our models already has stays ours; `llm/ID` reaches llm's.

Keys: ours first (the key given, one stored with `set_key`, the environment variable), then the
key stored with `llm keys set`.
"""

from __future__ import annotations

import os
import threading
import warnings
import weakref
from typing import Any

from .errors import NeedsKeyException
from .keys import Secret
from .models import AsyncKeyModel, KeyModel

ENABLE_ENV = "LLM_NOTEBOOK_LLM_BRIDGE"
PREFIX = "llm/"

_lock = threading.Lock()
_loaded: weakref.WeakSet = weakref.WeakSet()  # the registries llm's models were added to


def enabled() -> bool:
    """Whether the user opted in (the setting, else the environment variable)."""
    from .settings import settings

    chosen = settings.llm_bridge
    if chosen is not None:
        return bool(chosen)
    return os.environ.get(ENABLE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def fallback(registry, name: str | None) -> bool:
    """Register llm's models in `registry` for a lookup it could not answer (once); True if any
    were added."""
    if not enabled() or registry in _loaded:
        return False
    with _lock:
        if registry in _loaded:
            return False
        _loaded.add(registry)
        return _register_llm_models(registry)


def _register_llm_models(registry) -> bool:
    from .plugins import PluginWarning

    try:
        import llm
    except ImportError:
        warnings.warn("The llm bridge is on but llm is not installed: pip install "
                      "'jupyter-llm-notebook[llm]'", PluginWarning, stacklevel=5)
        return False
    try:
        entries = llm.get_models_with_aliases()
    except Exception as exc:  # a broken llm plugin must not break our models
        warnings.warn(f"The llm bridge could not list llm's models: {type(exc).__name__}: {exc}",
                      PluginWarning, stacklevel=5)
        return False
    for entry in entries:
        llm_id = (entry.model or entry.async_model).model_id
        ours = registry.has_model(llm_id)
        model_id = PREFIX + llm_id if ours else llm_id
        aliases = [a for a in entry.aliases if not registry.has_model(a)]
        if not ours:
            aliases.insert(0, PREFIX + llm_id)
        registry.register(BridgedModel(entry.model, model_id) if entry.model else None,
                          BridgedAsyncModel(entry.async_model, model_id)
                          if entry.async_model else None, aliases=aliases)
    return bool(entries)


# -- requests: ours to llm's -------------------------------------------------------------------
def _llm_arguments(prompt, stream: bool, key: str | None) -> dict[str, Any]:
    import llm

    arguments: dict[str, Any] = dict(prompt.options.model_dump(exclude_unset=True))
    arguments.update(system=prompt.system, stream=stream, key=key,
                     hide_reasoning=prompt.hide_reasoning,
                     attachments=[llm.Attachment(type=a.type, path=a.path, url=a.url,
                                                 content=a.content) for a in prompt.attachments])
    if prompt.schema is not None:
        arguments["schema"] = prompt.schema
    if prompt.tools:
        arguments["tools"] = [llm.Tool(name=t.name, description=t.description,
                                       input_schema=t.input_schema, implementation=t.implementation)
                              for t in prompt.tools]
    if prompt.tool_results:
        arguments["tool_results"] = [llm.ToolResult(name=r.name, output=r.output,
                                                    tool_call_id=r.tool_call_id)
                                     for r in prompt.tool_results]
    return arguments


#: Our conversations and the llm conversations that carry the same turns for llm's plugins.
_conversations: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _target(model, conversation):
    """What to prompt: the llm model, or its conversation standing for ours."""
    if conversation is None:
        return model.llm_model
    with _lock:
        theirs = _conversations.get(conversation)
        if theirs is None:
            theirs = _conversations[conversation] = model.llm_model.conversation()
    return theirs


def _record(response, llm_response, usage, tool_calls) -> None:
    from .tools import ToolCall

    response.set_usage(input=usage.input, output=usage.output, details=usage.details)
    if getattr(llm_response, "resolved_model", None):
        response.set_resolved_model(llm_response.resolved_model)
    for call in tool_calls:
        response.add_tool_call(ToolCall(name=call.name, arguments=call.arguments,
                                        tool_call_id=call.tool_call_id))


class _Bridged:
    """What the sync and async bridged models share: llm's model's description, and keys."""

    def __init__(self, llm_model, model_id: str) -> None:
        self.llm_model = llm_model
        self.model_id = model_id
        self.model_name = getattr(llm_model, "model_name", None)
        self.Options = llm_model.Options
        self.attachment_types = set(llm_model.attachment_types or ())
        self.can_stream = llm_model.can_stream
        self.supports_schema = bool(getattr(llm_model, "supports_schema", False))
        self.supports_tools = bool(getattr(llm_model, "supports_tools", False))
        self.needs_key = getattr(llm_model, "needs_key", None)
        self.key_env_var = getattr(llm_model, "key_env_var", None)
        self.description = f"{llm_model} (through llm)"

    def get_key(self, explicit_key: str | None = None) -> str | None:
        """Our key first; else the one stored with `llm keys set`."""
        try:
            return super().get_key(explicit_key)
        except NeedsKeyException:
            import llm

            stored = llm.get_key(alias=self.needs_key)
            if not stored:
                raise
            return Secret(stored)


class BridgedModel(_Bridged, KeyModel):
    """A sync llm model, answering through its own execute()."""

    def execute(self, prompt, stream, response, conversation, key):
        answer = _target(self, conversation).prompt(prompt.prompt,
                                                     **_llm_arguments(prompt, stream, key))
        yield from answer.stream_events()
        _record(response, answer, answer.usage(), answer.tool_calls())
        response.response_json = answer.json()


class BridgedAsyncModel(_Bridged, AsyncKeyModel):
    """An async llm model, answering through its own execute()."""

    async def execute(self, prompt, stream, response, conversation, key):
        answer = _target(self, conversation).prompt(prompt.prompt,
                                                     **_llm_arguments(prompt, stream, key))
        async for event in answer.astream_events():
            yield event
        _record(response, answer, await answer.usage(), await answer.tool_calls())
        response.response_json = await answer.json()
