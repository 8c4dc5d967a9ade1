"""`Chat` and `AsyncChat`: Chat Completions models with llm's names and constructor, so plugins that
subclass llm's OpenAI models (llm-llamafile and the like) port by changing their import.

    Chat(model_id, key=None, model_name=None, api_base=None, headers=None, can_stream=True,
         vision=False, audio=False, reasoning=False, supports_schema=False, supports_tools=False,
         allows_system_prompt=True, ...)

Given an `api_base`, a model never receives the user's stored OpenAI key: it sends the key it was
given, else none (as in llm).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field

from llm_notebook.errors import ModelError
from llm_notebook.http import Request
from llm_notebook.http_models import AsyncHTTPModel, HTTPModel
from llm_notebook.models import Options

from .openai_chat import (AUDIO_FORMATS, IMAGE_TYPES, PDF, SCHEMA_STYLES, ChatStream,
                          build_messages, read_answer, response_format, tool_definitions)
from .openai_embeddings import OpenAIEmbeddingModel  # noqa: F401  (llm's module has it here)

OPENAI_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "OPENAI_BASE_URL"
OPENAI_KEY_HINT = ("Set another with llm_notebook.set_key('openai', ...) or the OPENAI_API_KEY "
                   "environment variable, or pass key=... to prompt().")
_PASSED_AS_IS = ("temperature", "max_tokens", "top_p", "stop", "seed", "frequency_penalty",
                 "presence_penalty", "logit_bias", "tool_choice")
_NOT_GIVEN: Any = object()


class ChatOptions(Options):
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature, 0 to 2")
    max_tokens: int | None = Field(None, gt=0, description="Most tokens to generate")
    top_p: float | None = Field(None, ge=0, le=1, description="Nucleus sampling mass, 0 to 1")
    stop: str | list[str] | None = Field(None, description="Stop at this string (or any of these)")
    seed: int | None = Field(None, description="Seed for repeatable sampling, where supported")
    frequency_penalty: float | None = Field(None, ge=-2, le=2, description="-2 to 2")
    presence_penalty: float | None = Field(None, ge=-2, le=2, description="-2 to 2")
    logit_bias: dict[str, int] | None = Field(None, description="Token id -> bias, -100 to 100")
    json_object: bool | None = Field(None, description="Answer with a JSON object")
    tool_choice: str | dict[str, Any] | None = Field(
        None, description="With tools: 'auto', 'required', 'none', or a function to call")
    extra_body: dict[str, Any] | None = Field(
        None, description="More request fields a server understands, e.g. {'top_k': 40}")


class ReasoningChatOptions(ChatOptions):
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = Field(
        None, description="How hard a reasoning model thinks: minimal, low, medium or high")


class _Shared:
    """What the sync and async Chat models share: llm's constructor and the request."""

    needs_key: str | None = "openai"
    key_env_var: str | None = "OPENAI_API_KEY"
    Options = ChatOptions

    def __init__(self, model_id: str, key: str | None = None, model_name: str | None = None,
                 api_base: str | None = None, api_type: str | None = None,
                 api_version: str | None = None, api_engine: str | None = None,
                 headers: dict[str, str] | None = None, can_stream: bool = True,
                 vision: bool = False, audio: bool = False, reasoning: bool = False,
                 verbosity: bool = False, image_detail_original: bool = False,
                 service_tier: bool = False, supports_schema: bool = False,
                 supports_tools: bool = False, allows_system_prompt: bool = True, *,
                 attachment_types=None, needs_key: Any = _NOT_GIVEN,
                 key_env_var: Any = _NOT_GIVEN, description: str | None = None,
                 key_hint: str = "", schema_style: str = "json_schema") -> None:
        if schema_style not in SCHEMA_STYLES:
            raise ValueError(f"schema_style must be one of {', '.join(SCHEMA_STYLES)}, not "
                             f"{schema_style!r}")
        self.model_id = model_id
        self.model_name = model_name
        if key is not None:
            self.key = key
        self.api_base = api_base
        self.api_type, self.api_version, self.api_engine = api_type, api_version, api_engine
        self.headers = dict(headers or {})
        self.can_stream = can_stream
        self.vision = vision
        self.allows_system_prompt = allows_system_prompt
        self.supports_schema = supports_schema
        self.supports_tools = supports_tools
        self.schema_style = schema_style
        if reasoning:
            self.Options = ReasoningChatOptions
        types = set(attachment_types or ())
        if vision:
            types |= IMAGE_TYPES | {PDF}
        if audio:
            types |= set(AUDIO_FORMATS)
        self.attachment_types = types
        if api_base:  # another server never gets the user's OpenAI key
            self.needs_key = self.key_env_var = None
        if needs_key is not _NOT_GIVEN:
            self.needs_key = needs_key
        if key_env_var is not _NOT_GIVEN:
            self.key_env_var = key_env_var
        self.description = description
        self._key_hint = key_hint or (OPENAI_KEY_HINT if self.needs_key == "openai" else "")

    @property
    def base_url(self) -> str:
        """`api_base` when given, else `$OPENAI_BASE_URL` (read on each prompt), else OpenAI's."""
        return (self.api_base or os.environ.get(BASE_URL_ENV) or OPENAI_BASE_URL).rstrip("/")

    def build_body(self, prompt, stream: bool) -> dict[str, Any]:
        if prompt.system and not self.allows_system_prompt:
            raise ModelError(f"Model {self.model_id!r} takes no system prompt: leave out system=")
        options = prompt.options
        body: dict[str, Any] = {"model": self.model_name or self.model_id,
                                "messages": build_messages(prompt), "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        for name in (*_PASSED_AS_IS, "reasoning_effort"):
            value = getattr(options, name, None)
            if value is not None:
                body[name] = value
        if options.json_object:
            body["response_format"] = {"type": "json_object"}
        if prompt.schema is not None:
            body["response_format"] = response_format(prompt.schema, self.schema_style)
        tool_definitions(self, prompt, body)
        body.update(options.extra_body or {})
        return body

    def build_request(self, prompt, stream, conversation, key) -> Request:
        headers = dict(self.headers)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return Request(f"{self.base_url}/chat/completions", self.build_body(prompt, stream),
                       headers=headers, secret=key, model_name=self.model_name or self.model_id,
                       key_hint=self._key_hint)

    def read_answer(self, body, response, request: Request) -> list[Any]:
        return read_answer(body, response, request)

    def stream_reader(self, response, request: Request) -> ChatStream:
        return ChatStream(response, request)


class Chat(_Shared, HTTPModel):
    """A sync Chat Completions model."""


class AsyncChat(_Shared, AsyncHTTPModel):
    """An async Chat Completions model."""


def chat_models(model_id: str, *, base_url: str | None = None, api_key: str | None = None,
                **kwargs: Any) -> tuple[Chat, AsyncChat]:
    """The sync and async models of one id, for `register()`."""
    return (Chat(model_id, key=api_key, api_base=base_url, **kwargs),
            AsyncChat(model_id, key=api_key, api_base=base_url, **kwargs))
