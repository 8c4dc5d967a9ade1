"""How many input tokens a prompt holds, before it is sent: the model's own count, or an estimate.

A model may implement the optional method

    def count_tokens(self, prompt) -> int          # or `async def` on an async model

which returns the input tokens the provider would bill for `prompt` (a `Prompt`: its messages,
attachments, tools and schema), for instance from the provider's token-counting endpoint. It is
called only when someone asks for a count (`llm_notebook.preview`), never for a budget check, and
it must not run the model. If it is missing or fails, the count is an estimate, labelled as one.
"""

from __future__ import annotations

import inspect
import io
import json
import math
from dataclasses import dataclass
from typing import Any

from .parts import AttachmentPart, TextPart, ToolResultPart

#: An estimate's rules of thumb: characters per token of English text and code, the tokens a
#: message's framing costs, and image tokens as (width × height) / 750, as Anthropic documents.
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
PIXELS_PER_TOKEN = 750
#: A PDF's bytes per token, roughly (a page of ~50 KB holds ~1,500 tokens of text).
PDF_BYTES_PER_TOKEN = 33


@dataclass(frozen=True)
class TokenCount:
    """`count` input tokens; `exact` when the model counted them, else an estimate (`how`)."""

    count: int
    exact: bool
    how: str

    def __str__(self) -> str:
        return f"{self.count:,}" if self.exact else f"~{self.count:,}"


def count_input_tokens(prompt: Any) -> TokenCount:
    """The model's own count when it has `count_tokens`, else `estimate_input_tokens`."""
    counter = getattr(prompt.model, "count_tokens", None)
    if counter is not None:
        try:
            counted = counter(prompt)
            if inspect.isawaitable(counted):
                from . import runner

                counted = runner.run(counted)
            if type(counted) is int and counted >= 0:
                return TokenCount(counted, True, f"counted by {prompt.model.model_id}")
            problem = f"count_tokens returned {counted!r}"
        except Exception as exc:  # a count is an extra: the estimate stands in for it
            problem = f"count_tokens failed: {type(exc).__name__}: {exc}"
        return TokenCount(estimate_input_tokens(prompt), False, f"estimated ({problem})")
    return TokenCount(estimate_input_tokens(prompt), False,
                      f"estimated: {prompt.model.model_id} cannot count tokens")


def estimate_input_tokens(prompt: Any) -> int:
    """A rough count from the text's length, images' sizes and other attachments' bytes."""
    characters = 0
    tokens = 0
    for message in prompt.messages:
        tokens += TOKENS_PER_MESSAGE
        for part in message.parts:
            if isinstance(part, TextPart):
                characters += len(part.text)
            elif isinstance(part, AttachmentPart) and part.attachment is not None:
                tokens += attachment_tokens(part.attachment)
            elif isinstance(part, ToolResultPart):
                characters += len(part.output or "")
                tokens += sum(attachment_tokens(a) for a in part.attachments)
            else:
                characters += len(json.dumps(part.to_dict(), default=str))
    for tool in prompt.tools:
        characters += len(json.dumps({"name": tool.name, "description": tool.description,
                                      "input_schema": tool.input_schema}, default=str))
    if prompt.schema:
        characters += len(json.dumps(prompt.schema, default=str))
    return tokens + math.ceil(characters / CHARS_PER_TOKEN)


def attachment_tokens(attachment: Any) -> int:
    kind = attachment.type or ""
    size = attachment.size() or 0
    if kind.startswith("image/"):
        width, height = image_size(attachment)
        if width:
            return math.ceil(width * height / PIXELS_PER_TOKEN)
    if kind.startswith("text/") or kind in ("application/json", "text/csv"):
        return math.ceil(size / CHARS_PER_TOKEN)
    if kind == "application/pdf":
        return math.ceil(size / PDF_BYTES_PER_TOKEN)
    return math.ceil(size / CHARS_PER_TOKEN)


def image_size(attachment: Any) -> tuple[int, int]:
    """(width, height) in pixels, (0, 0) when it cannot be read without fetching it."""
    if attachment.content is None and not attachment.path:
        return 0, 0
    key = attachment.id()
    size = _image_sizes.get(key)
    if size is None:  # by content hash: a map sends the same image with every row
        size = _image_sizes[key] = _read_image_size(attachment.content_bytes())
    return size


_image_sizes: dict[str, tuple[int, int]] = {}


def _read_image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            return image.size
    except Exception:  # not an image PIL knows (SVG): no size, the byte count stands in
        return 0, 0
