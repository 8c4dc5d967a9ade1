"""llm_notebook: large language models as first-class citizens of Jupyter notebooks.

Names are imported on first use, so `import llm_notebook` stays light (no pydantic, httpx,
pillow or IPython until something needs them).
"""

from __future__ import annotations

import importlib
from typing import Any

from .settings import settings  # light; bound here so the submodule never shadows the object

__version__ = "0.1.0"

_EXPORTS = {
    "errors": ("LLMNotebookError", "ModelError", "NeedsKeyException", "UnknownModelError",
               "AsyncOnlyModelError", "OptionsError", "AttachmentError"),
    "models": ("Model", "AsyncModel", "KeyModel", "AsyncKeyModel", "Options", "Conversation",
               "AsyncConversation", "CapabilityError"),
    "responses": ("Prompt", "Response", "AsyncResponse", "Usage", "Status"),
    "parts": ("Message", "StreamEvent", "TextPart", "ReasoningPart", "AttachmentPart",
              "ToolCallPart", "ToolResultPart"),
    "tools": ("Tool", "Toolbox", "ToolCall", "ToolResult", "ToolOutput", "ServerSideTool",
              "CancelToolCall"),
    "schemas": ("schema_dsl", "SchemaError"),
    "structured": ("parse_structured", "typed_frame", "feedback_prompt", "StructuredOutputError"),
    "attachments": ("Attachment",),
    "plugins": ("hookimpl", "register", "get_model", "get_async_model", "get_models",
                "get_async_models", "get_models_with_aliases", "set_alias", "remove_alias",
                "get_default_model", "set_default_model", "AliasError", "get_tools",
                "get_embedding_model", "get_embedding_models", "get_embedding_models_with_aliases",
                "register_embedding_model"),
    "embeddings": ("EmbeddingModel", "EmbeddingInputError"),
    "vectors": ("embed", "set_default_embedding_model", "get_default_embedding_model",
                "EmbedInterrupted", "EmbedFailed"),
    "chains": ("ChainResponse", "AsyncChainResponse"),
    "prices": ("set_price",),
    "request_preview": ("preview", "Preview"),
    "keys": ("set_key", "delete_key", "stored_key_names", "get_key", "Secret", "InvalidKeyError"),
    "paths": ("user_dir", "UserFileError"),
    "log": ("logs",),
    "endpoints": ("add_openai_endpoint",),
    "batch": ("map", "last_map", "MapInterrupted"),
    "jobs": ("batches", "BatchJob"),
    "interpolate": ("InterpolationError",),
    "usage": ("session_usage", "SessionUsage"),
    "conversations": ("Conversations", "conversation"),
    "comparison": ("compare", "Comparison"),
    "answers": ("Answer",),
    "notebook.background": ("in_background", "wait_for_background", "BackgroundAnswer"),
    "notebook.widgets": ("chat", "model_picker", "usage_view"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
#: Reached as attributes (`llm_notebook.map`) but left out of `from llm_notebook import *`,
#: which would shadow the builtin of the same name.
_NOT_STARRED = {"map"}
#: Submodules that plugins written for `llm` reach as attributes (`llm.parts.StreamEvent`).
_SUBMODULES = {"parts", "tools", "schemas", "models", "responses", "default_plugins",
               "runner", "plugins", "keys", "utils", "embeddings", "attachments", "errors",
               "cache", "prices", "budget"}
#: `llm_notebook.batch` is the module `map` lives in, and, called, `batch(job_id)` reattaches to
#: a provider batch job: an attribute cannot be both a submodule and a function, so the module
#: takes the call (see `batch`).
_CALLABLE_SUBMODULES = {"batch"}

__all__ = sorted((set(_WHERE) - _NOT_STARRED) | _CALLABLE_SUBMODULES) + [
    "settings", "load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES or name in _CALLABLE_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_notebook' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext llm_notebook`: register the magics."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook.magics import unload_ipython_extension as unload

    unload(ipython)
