"""OpenAI's chat models over Chat Completions, the protocol every OpenAI-compatible server speaks
(Ollama, llama.cpp, LM Studio, vLLM).

The OpenAI models are registered under their ids; other servers are added with
`llm_notebook.add_openai_endpoint()` or listed in the user directory's `openai_endpoints.json`
(see `llm_notebook.endpoints`), which build their models with `chat_models()`. The model classes
are `openai_models.Chat` / `AsyncChat`; the wire format is `openai_chat`.
"""

from __future__ import annotations

from llm_notebook.plugins import hookimpl

from .openai_chat import AUDIO_FORMATS, IMAGE_TYPES, PDF
from .openai_models import chat_models

__all__ = ["OPENAI_MODELS", "chat_models", "register_models"]

#: (model id, attachment types, aliases) of the OpenAI chat models.
OPENAI_MODELS = (
    ("gpt-4o", IMAGE_TYPES | {PDF}, ("4o",)),
    ("gpt-4o-mini", IMAGE_TYPES | {PDF}, ("4o-mini",)),
    ("gpt-4.1", IMAGE_TYPES | {PDF}, ("4.1",)),
    ("gpt-4.1-mini", IMAGE_TYPES | {PDF}, ("4.1-mini",)),
    ("gpt-4.1-nano", IMAGE_TYPES | {PDF}, ("4.1-nano",)),
    ("gpt-4o-audio-preview", frozenset(AUDIO_FORMATS), ("4o-audio",)),
    ("gpt-4-turbo", IMAGE_TYPES, ("4-turbo",)),
    ("gpt-3.5-turbo", frozenset(), ("3.5",)),
)


@hookimpl
def register_models(register):
    for model_id, types, aliases in OPENAI_MODELS:
        register(*chat_models(model_id, attachment_types=types, supports_schema=True,
                              supports_tools=True,
                              description=f"OpenAI {model_id} (Chat Completions)"),
                 aliases=aliases)
