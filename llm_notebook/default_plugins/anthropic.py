"""Anthropic's Claude models over the Messages API, streamed or not."""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field

from llm_notebook.http import Request, decode_event, error_event
from llm_notebook.http_errors import malformed, server_message
from llm_notebook.http_models import (AsyncHTTPModel, HTTPModel, StreamReader, chat_messages,
                                      set_usage_from_counts, system_prompt)
from llm_notebook.models import Options
from llm_notebook.plugins import hookimpl

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
PDF = "application/pdf"
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


def _source(attachment) -> dict[str, Any]:
    if attachment.url and attachment.path is None and attachment.content is None:
        return {"type": "url", "url": attachment.url}
    return {"type": "base64", "media_type": attachment.resolve_type(),
            "data": attachment.base64_content()}


def content_blocks(text: str | None, attachments) -> str | list[dict[str, Any]]:
    """Attachments first (as Anthropic advises), then the text."""
    if not attachments:
        return text or ""
    blocks = [{"type": "document" if a.resolve_type() == PDF else "image", "source": _source(a)}
              for a in attachments]
    return blocks + ([{"type": "text", "text": text}] if text else [])


def record_usage(response, request: Request, usage: dict[str, Any] | None) -> None:
    """input/output tokens; cache creation and cache read tokens as details."""
    set_usage_from_counts(response, usage, request=request, input="input_tokens",
                          output="output_tokens")


class MessageStream(StreamReader):
    """Reads a streamed message: text deltas, usage from message_start and message_delta; the
    answer is done at message_stop."""

    def __init__(self, response, request: Request) -> None:
        super().__init__(response, request)
        self.usage: dict[str, Any] = {}
        self.message: dict[str, Any] = {}

    def feed(self, event) -> str | None:
        kind = event.event
        if kind == "ping" or not event.data:
            return None
        data = decode_event(event.data, self.request)
        if kind == "content_block_delta":
            delta = self.expect_object(data.get("delta"), "delta")
            text = delta.get("text") if delta.get("type") == "text_delta" else None
            if text is None or type(text) is str:
                return text
            raise self.malformed(event.data, "where the text should be a string")
        if kind == "message_start":
            self.message = dict(self.expect_object(data.get("message"), "message"))
            self.usage.update(self.expect_object(self.message.get("usage"), "message.usage"))
        elif kind == "message_delta":
            self.message.update(self.expect_object(data.get("delta"), "delta"))
            self.usage.update(self.expect_object(data.get("usage"), "usage"))
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            raise error_event(data)
        return None

    def end(self) -> None:
        if not self.done:
            raise self.incomplete()
        self.message["usage"] = self.usage
        self.response.response_json = self.message
        record_usage(self.response, self.request, self.usage)


class _Messages:
    """The Messages API wire format; mixed into the sync and async model classes."""

    Options = ClaudeOptions
    needs_key = "anthropic"
    key_env_var = "ANTHROPIC_API_KEY"
    attachment_types = IMAGE_TYPES | {PDF}

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.description = f"Anthropic {model_id} (Messages API)"

    @property
    def base_url(self) -> str:
        """`$ANTHROPIC_BASE_URL` (read on each prompt), else Anthropic's."""
        return (os.environ.get(BASE_URL_ENV) or ANTHROPIC_BASE_URL).rstrip("/")

    def build_body(self, prompt, stream: bool, conversation) -> dict[str, Any]:
        options = prompt.options
        body: dict[str, Any] = {"model": self.model_name or self.model_id,
                                "max_tokens": options.max_tokens,
                                "messages": chat_messages(prompt, conversation, content_blocks),
                                "stream": stream}
        system = system_prompt(prompt, conversation)
        if system:
            body["system"] = system
        for name in ("temperature", "top_p", "top_k", "stop_sequences"):
            value = getattr(options, name)
            if value is not None:
                body[name] = value
        return body

    def build_request(self, prompt, stream, conversation, key) -> Request:
        headers = {"anthropic-version": API_VERSION}
        if key:
            headers["x-api-key"] = key
        return Request(f"{self.base_url}/v1/messages", self.build_body(prompt, stream, conversation),
                       headers=headers, secret=key, model_name=self.model_name or self.model_id,
                       key_hint=KEY_HINT)

    def read_answer(self, body, response, request: Request) -> str:
        if not isinstance(body, dict) or not isinstance(body.get("content"), list):
            raise request.error(f"{request.url} answered without content: "
                                f"{server_message(body, str(body)[:200])}")
        texts = []
        for block in body["content"]:
            if type(block) is not dict:
                raise malformed(request, block, "where a content block should be an object")
            text = block.get("text") if block.get("type") == "text" else None
            if text is not None and type(text) is not str:
                raise malformed(request, block, "where the text should be a string")
            texts.append(text or "")
        response.response_json = body
        record_usage(response, request, body.get("usage"))
        return "".join(texts)

    def stream_reader(self, response, request: Request) -> MessageStream:
        return MessageStream(response, request)


class Claude(_Messages, HTTPModel):
    """A sync Claude model."""


class AsyncClaude(_Messages, AsyncHTTPModel):
    """An async Claude model."""


@hookimpl
def register_models(register):
    for model_id, aliases in CLAUDE_MODELS:
        register(Claude(model_id), AsyncClaude(model_id), aliases=aliases)
