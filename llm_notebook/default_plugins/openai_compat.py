"""OpenAI Chat Completions, and every server that speaks it (Ollama, llama.cpp, LM Studio, vLLM).

The OpenAI models are registered under their ids; other servers are added with
`llm_notebook.add_openai_endpoint()` or listed in the user directory's `openai_endpoints.json`
(see `llm_notebook.endpoints`), which build their models with `chat_models()`.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Any

from pydantic import Field

from llm_notebook.http import Request, decode_event, error_event
from llm_notebook.http_errors import malformed, server_message
from llm_notebook.http_models import (AsyncHTTPModel, HTTPModel, StreamReader, chat_messages,
                                      set_usage_from_counts, system_prompt)
from llm_notebook.models import Options
from llm_notebook.plugins import hookimpl

OPENAI_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "OPENAI_BASE_URL"
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
AUDIO_FORMATS = {"audio/wav": "wav", "audio/mpeg": "mp3"}
PDF = "application/pdf"

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
_PASSED_AS_IS = ("temperature", "max_tokens", "top_p", "stop", "seed", "frequency_penalty",
                 "presence_penalty")


class ChatOptions(Options):
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature, 0 to 2")
    max_tokens: int | None = Field(None, gt=0, description="Most tokens to generate")
    top_p: float | None = Field(None, ge=0, le=1, description="Nucleus sampling mass, 0 to 1")
    stop: str | list[str] | None = Field(None, description="Stop at this string (or any of these)")
    seed: int | None = Field(None, description="Seed for repeatable sampling, where supported")
    frequency_penalty: float | None = Field(None, ge=-2, le=2, description="-2 to 2")
    presence_penalty: float | None = Field(None, ge=-2, le=2, description="-2 to 2")
    json_object: bool | None = Field(None, description="Answer with a JSON object")
    extra_body: dict[str, Any] | None = Field(
        None, description="More request fields a server understands, e.g. {'top_k': 40}")


def attachment_part(attachment) -> dict[str, Any]:
    """One attachment as a Chat Completions content part."""
    kind = attachment.resolve_type()
    if kind in AUDIO_FORMATS:
        return {"type": "input_audio",
                "input_audio": {"data": attachment.base64_content(), "format": AUDIO_FORMATS[kind]}}
    if kind == PDF:
        name = PurePosixPath(attachment.path or attachment.url or "document.pdf").name
        return {"type": "file", "file": {"filename": name, "file_data":
                f"data:{PDF};base64,{attachment.base64_content()}"}}
    url = attachment.url or f"data:{kind};base64,{attachment.base64_content()}"
    return {"type": "image_url", "image_url": {"url": url}}


def user_content(text: str | None, attachments) -> str | list[dict[str, Any]]:
    if not attachments:
        return text or ""
    parts = [{"type": "text", "text": text}] if text else []
    return parts + [attachment_part(a) for a in attachments]


def build_messages(prompt, conversation) -> list[dict[str, Any]]:
    """System prompt, earlier turns (with their attachments), then this prompt."""
    system = system_prompt(prompt, conversation)
    messages = [{"role": "system", "content": system}] if system else []
    return messages + chat_messages(prompt, conversation, user_content)


def record_usage(response, request: Request, usage: dict[str, Any] | None) -> None:
    """prompt/completion tokens as input/output; the other non-zero counts as details."""
    set_usage_from_counts(response, usage, request=request, input="prompt_tokens",
                          output="completion_tokens", ignored=("total_tokens",))


class ChatStream(StreamReader):
    """Reads a streamed chat completion: content deltas, the finish reason, usage, `[DONE]`.

    The answer is done at `[DONE]`, or once both the finish reason and the usage have come
    (servers that send no `[DONE]` end there)."""

    def __init__(self, response, request: Request) -> None:
        super().__init__(response, request)
        self.finish_reason = None
        self.usage = None
        self.last: dict[str, Any] = {}

    def feed(self, event) -> str | None:
        data = event.data
        if data == "[DONE]":
            self.done = True
            return None
        chunk = decode_event(data, self.request)
        self.last = chunk
        try:
            usage = chunk.get("usage")
            if usage:
                self.usage = self.expect_object(usage, "usage")
                self.done = self.finish_reason is not None
            choices = chunk.get("choices")
            if choices:
                choice = choices[0]
                if choice.get("finish_reason"):
                    self.finish_reason = choice["finish_reason"]
                    self.done = self.usage is not None
                delta = choice.get("delta")
                if delta:
                    content = delta.get("content")
                    if content is None or type(content) is str:
                        return content
                    raise self.malformed(data, "where the content should be a string")
            elif "error" in chunk:
                raise error_event(chunk)
        except (AttributeError, TypeError, LookupError):  # a field of the wrong type
            raise self.malformed(data, "where a chat completion chunk belongs") from None
        return None

    def end(self) -> None:
        if not self.done and self.finish_reason is None:
            raise self.incomplete()
        self.response.response_json = {"id": self.last.get("id"), "model": self.last.get("model"),
                                       "finish_reason": self.finish_reason, "usage": self.usage}
        record_usage(self.response, self.request, self.usage)


class _Chat:
    """The Chat Completions wire format; mixed into the sync and async model classes."""

    Options = ChatOptions

    def __init__(self, model_id: str, *, base_url: str | None = None,
                 attachment_types=frozenset(), needs_key: str | None = None,
                 key_env_var: str | None = None, api_key: str | None = None,
                 model_name: str | None = None, description: str | None = None,
                 key_hint: str = "") -> None:
        self.model_id = model_id
        self.model_name = model_name
        self._base_url = base_url
        self.attachment_types = set(attachment_types)
        self.needs_key = needs_key
        self.key_env_var = key_env_var
        self.key = api_key
        self.description = description
        self._key_hint = key_hint

    @property
    def base_url(self) -> str:
        """Given at creation, else `$OPENAI_BASE_URL` (read on each prompt), else OpenAI's."""
        return (self._base_url or os.environ.get(BASE_URL_ENV) or OPENAI_BASE_URL).rstrip("/")

    def build_body(self, prompt, stream: bool, conversation) -> dict[str, Any]:
        options = prompt.options
        body: dict[str, Any] = {"model": self.model_name or self.model_id,
                                "messages": build_messages(prompt, conversation), "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        for name in _PASSED_AS_IS:
            value = getattr(options, name)
            if value is not None:
                body[name] = value
        if options.json_object:
            body["response_format"] = {"type": "json_object"}
        body.update(options.extra_body or {})
        return body

    def build_request(self, prompt, stream, conversation, key) -> Request:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return Request(f"{self.base_url}/chat/completions",
                       self.build_body(prompt, stream, conversation), headers=headers, secret=key,
                       model_name=self.model_name or self.model_id, key_hint=self._key_hint)

    def read_answer(self, body, response, request: Request) -> str:
        try:
            message = body["choices"][0]["message"]
            content = message.get("content")
        except (LookupError, TypeError, AttributeError):
            raise request.error(f"{request.url} answered without a message: "
                                f"{server_message(body, str(body)[:200])}") from None
        if content is not None and type(content) is not str:
            raise malformed(request, message, "where the content should be a string")
        response.response_json = body
        record_usage(response, request, body.get("usage"))
        return content or ""

    def stream_reader(self, response, request: Request) -> ChatStream:
        return ChatStream(response, request)


class Chat(_Chat, HTTPModel):
    """A sync Chat Completions model."""


class AsyncChat(_Chat, AsyncHTTPModel):
    """An async Chat Completions model."""


def chat_models(model_id: str, **kwargs: Any) -> tuple[Chat, AsyncChat]:
    """The sync and async models of one id, for `register()`."""
    return Chat(model_id, **kwargs), AsyncChat(model_id, **kwargs)


OPENAI_KEY_HINT = ("Set another with llm_notebook.set_key('openai', ...) or the OPENAI_API_KEY "
                   "environment variable, or pass key=... to prompt().")


@hookimpl
def register_models(register):
    for model_id, types, aliases in OPENAI_MODELS:
        register(*chat_models(model_id, attachment_types=types, needs_key="openai",
                              key_env_var="OPENAI_API_KEY", key_hint=OPENAI_KEY_HINT,
                              description=f"OpenAI {model_id} (Chat Completions)"),
                 aliases=aliases)
