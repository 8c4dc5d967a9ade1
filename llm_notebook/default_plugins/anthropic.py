"""Anthropic's Claude models over the Messages API, streamed or not; the wire format is
`anthropic_messages`."""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field

from llm_notebook.http import Request
from llm_notebook.http_models import AsyncHTTPModel, HTTPModel
from llm_notebook.models import Options
from llm_notebook.plugins import hookimpl

from .anthropic_messages import (PDF, MessageStream, build_messages, read_answer,
                                 tool_definitions)

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
DEFAULT_THINKING_BUDGET = 2048
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
KEY_HINT = ("Set another with llm_notebook.set_key('anthropic', ...) or the ANTHROPIC_API_KEY "
            "environment variable, or pass key=... to prompt().")

#: (model id, aliases) of the Claude models.
CLAUDE_MODELS = (
    ("claude-opus-4-1", ("opus",)),
    ("claude-opus-4-0", ()),
    ("claude-sonnet-4-5", ("sonnet", "claude")),
    ("claude-sonnet-4-0", ()),
    ("claude-3-7-sonnet-latest", ("claude-3.7-sonnet",)),
    ("claude-haiku-4-5", ("haiku",)),
    ("claude-3-5-haiku-latest", ("claude-3.5-haiku",)),
)


class ClaudeOptions(Options):
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, gt=0, description="Most tokens to generate")
    temperature: float | None = Field(None, ge=0, le=1, description="Sampling temperature, 0 to 1")
    top_p: float | None = Field(None, ge=0, le=1, description="Nucleus sampling mass, 0 to 1")
    top_k: int | None = Field(None, gt=0, description="Sample from the k likeliest tokens only")
    stop_sequences: list[str] | None = Field(None, description="Stop at any of these strings")
    thinking: bool | None = Field(None, description="Think before answering (extended thinking)")
    thinking_budget: int | None = Field(None, ge=1024,
                                        description="Most tokens to think with (1024 or more)")
    tool_choice: str | dict[str, Any] | None = Field(
        None, description="With tools: 'auto', 'any', 'none', or a tool's name to call")


class _Messages:
    """The Messages API wire format; mixed into the sync and async model classes."""

    Options = ClaudeOptions
    needs_key = "anthropic"
    key_env_var = "ANTHROPIC_API_KEY"
    attachment_types = IMAGE_TYPES | {PDF}
    supports_schema = True
    supports_tools = True

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.description = f"Anthropic {model_id} (Messages API)"

    @property
    def base_url(self) -> str:
        """`$ANTHROPIC_BASE_URL` (read on each prompt), else Anthropic's."""
        return (os.environ.get(BASE_URL_ENV) or ANTHROPIC_BASE_URL).rstrip("/")

    def build_body(self, prompt, stream: bool) -> dict[str, Any]:
        options = prompt.options
        system, messages = build_messages(prompt)
        body: dict[str, Any] = {"model": self.model_name or self.model_id,
                                "max_tokens": options.max_tokens, "messages": messages,
                                "stream": stream}
        if system:
            body["system"] = system
        for name in ("temperature", "top_p", "top_k", "stop_sequences"):
            value = getattr(options, name)
            if value is not None:
                body[name] = value
        if options.thinking or options.thinking_budget:
            body["thinking"] = {"type": "enabled",
                                "budget_tokens": options.thinking_budget or DEFAULT_THINKING_BUDGET}
        tool_definitions(self, prompt, body)
        if options.tool_choice is not None:
            choice = options.tool_choice
            body["tool_choice"] = (choice if isinstance(choice, dict) else
                                   {"type": choice} if choice in ("auto", "any", "none") else
                                   {"type": "tool", "name": choice})
        return body

    def build_request(self, prompt, stream, conversation, key) -> Request:
        headers = {"anthropic-version": API_VERSION}
        if key:
            headers["x-api-key"] = key
        return Request(f"{self.base_url}/v1/messages", self.build_body(prompt, stream),
                       headers=headers, secret=key, model_name=self.model_name or self.model_id,
                       key_hint=KEY_HINT)

    def count_tokens(self, prompt) -> int:
        """The input tokens Anthropic would bill for `prompt`, from its token-counting endpoint
        (nothing is generated): what `llm_notebook.preview` shows."""
        from llm_notebook.http import get_json

        body = {k: v for k, v in self.build_body(prompt, stream=False).items()
                if k in ("model", "messages", "system", "tools", "tool_choice", "thinking")}
        key = self.get_key()
        request = self.build_request(prompt, False, None, key)
        request.url, request.body = f"{self.base_url}/v1/messages/count_tokens", body
        counted = get_json(request)
        tokens = counted.get("input_tokens") if isinstance(counted, dict) else None
        if type(tokens) is not int:
            raise request.error(f"{request.url} answered without input_tokens")
        return tokens

    def read_answer(self, body, response, request: Request) -> list[Any]:
        return read_answer(body, response, request, schema=response.prompt.schema is not None)

    def stream_reader(self, response, request: Request) -> MessageStream:
        return MessageStream(response, request, schema=response.prompt.schema is not None)


class Claude(_Messages, HTTPModel):
    """A sync Claude model."""


class AsyncClaude(_Messages, AsyncHTTPModel):
    """An async Claude model."""


@hookimpl
def register_models(register):
    for model_id, aliases in CLAUDE_MODELS:
        register(Claude(model_id), AsyncClaude(model_id), aliases=aliases)
