"""Messages and their parts, and the events a model's execute() yields while it answers.

These are the value types of the `llm` library's structured-message API, with the same names and
fields, so a plugin that builds requests from `prompt.messages` or yields `StreamEvent`s ports by
changing its import. They are plain values: two parts with the same content are equal.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AttachmentPart", "Message", "Part", "ReasoningPart", "StreamEvent", "TextPart",
           "ToolCallPart", "ToolResultPart", "assistant", "normalize_parts", "system",
           "tool_message", "user"]

#: The `type` values of StreamEvent.
EVENT_TYPES = ("text", "reasoning", "tool_call_name", "tool_call_args", "tool_result")


def _with_metadata(data: dict[str, Any], part: Any) -> dict[str, Any]:
    if part.provider_metadata:
        data["provider_metadata"] = part.provider_metadata
    return data


def attachment_to_dict(attachment: Any) -> dict[str, Any]:
    """An attachment as JSON-safe data (its bytes base64-encoded only when it holds them)."""
    data: dict[str, Any] = {}
    for name in ("type", "url", "path"):
        if getattr(attachment, name, None):
            data[name] = getattr(attachment, name)
    if getattr(attachment, "content", None):
        data["content"] = base64.b64encode(attachment.content).decode("ascii")
    return data


def attachment_from_dict(data: dict[str, Any]) -> Any:
    from .attachments import Attachment

    content = data.get("content")
    return Attachment(type=data.get("type"), path=data.get("path"), url=data.get("url"),
                      content=base64.b64decode(content) if isinstance(content, str) else None)


@dataclass
class Part:
    """A piece of a message; the role belongs to the message that holds it."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Part:
        kind = data.get("type")
        metadata = data.get("provider_metadata")
        if kind == "text":
            return TextPart(text=data["text"], provider_metadata=metadata)
        if kind == "reasoning":
            return ReasoningPart(text=data["text"], redacted=data.get("redacted", False),
                                 provider_metadata=metadata)
        if kind == "tool_call":
            return ToolCallPart(name=data["name"], arguments=data.get("arguments") or {},
                                tool_call_id=data.get("tool_call_id"),
                                server_executed=data.get("server_executed", False),
                                provider_metadata=metadata)
        if kind == "tool_result":
            return ToolResultPart(name=data["name"], output=data.get("output", ""),
                                  tool_call_id=data.get("tool_call_id"),
                                  server_executed=data.get("server_executed", False),
                                  exception=data.get("exception"),
                                  attachments=[attachment_from_dict(a)
                                               for a in data.get("attachments", [])],
                                  provider_metadata=metadata)
        if kind == "attachment":
            held = data.get("attachment")
            return AttachmentPart(attachment=attachment_from_dict(held) if held else None,
                                  provider_metadata=metadata)
        raise ValueError(f"Unknown part type {kind!r}: expected text, reasoning, tool_call, "
                         "tool_result or attachment")


@dataclass
class TextPart(Part):
    text: str = ""
    provider_metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _with_metadata({"type": "text", "text": self.text}, self)


@dataclass
class ReasoningPart(Part):
    """The model's reasoning ("thinking"); `redacted` marks reasoning the provider withheld."""

    text: str = ""
    redacted: bool = False
    provider_metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "reasoning", "text": self.text}
        if self.redacted:
            data["redacted"] = True
        return _with_metadata(data, self)


@dataclass
class ToolCallPart(Part):
    """The model asking for a tool call; `server_executed` when the provider ran it itself."""

    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    tool_call_id: str | None = None
    server_executed: bool = False
    provider_metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "tool_call", "name": self.name, "arguments": self.arguments}
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.server_executed:
            data["server_executed"] = True
        return _with_metadata(data, self)


@dataclass
class ToolResultPart(Part):
    """What a tool returned (or the error it raised, in `exception`)."""

    name: str = ""
    output: str = ""
    tool_call_id: str | None = None
    server_executed: bool = False
    attachments: list[Any] = field(default_factory=list)
    exception: str | None = None
    provider_metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "tool_result", "name": self.name, "output": self.output}
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.server_executed:
            data["server_executed"] = True
        if self.exception is not None:
            data["exception"] = self.exception
        if self.attachments:
            data["attachments"] = [attachment_to_dict(a) for a in self.attachments]
        return _with_metadata(data, self)


@dataclass
class AttachmentPart(Part):
    attachment: Any = None
    provider_metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "attachment"}
        if self.attachment is not None:
            data["attachment"] = attachment_to_dict(self.attachment)
        return _with_metadata(data, self)


@dataclass
class Message:
    """One turn of the input chain: a role ("system", "user", "assistant", "tool") and its parts."""

    role: str
    parts: list[Part] = field(default_factory=list)
    provider_metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "parts": [p.to_dict() for p in self.parts]}
        return _with_metadata(data, self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Message:
        return Message(role=data["role"], parts=[Part.from_dict(p) for p in data.get("parts", [])],
                       provider_metadata=data.get("provider_metadata"))

    @property
    def text(self) -> str:
        """The message's text parts joined (reasoning and tool parts left out)."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


def normalize_parts(items: Any) -> list[Part]:
    """Parts from strings (text), attachments, parts, or lists of those."""
    from .attachments import Attachment

    parts: list[Part] = []
    for item in items:
        if isinstance(item, Part):
            parts.append(item)
        elif isinstance(item, str):
            parts.append(TextPart(text=item))
        elif isinstance(item, Attachment):
            parts.append(AttachmentPart(attachment=item))
        elif isinstance(item, (list, tuple)):
            parts.extend(normalize_parts(item))
        else:
            raise TypeError(f"Cannot make a message part of {type(item).__name__}: give text, "
                            "an Attachment or a Part")
    return parts


def _message(role: str, items: tuple[Any, ...], provider_metadata: dict[str, Any] | None) -> Message:
    return Message(role=role, parts=normalize_parts(items), provider_metadata=provider_metadata)


def system(*items: Any, provider_metadata: dict[str, Any] | None = None) -> Message:
    return _message("system", items, provider_metadata)


def user(*items: Any, provider_metadata: dict[str, Any] | None = None) -> Message:
    return _message("user", items, provider_metadata)


def assistant(*items: Any, provider_metadata: dict[str, Any] | None = None) -> Message:
    return _message("assistant", items, provider_metadata)


def tool_message(*items: Any, provider_metadata: dict[str, Any] | None = None) -> Message:
    return _message("tool", items, provider_metadata)


@dataclass
class StreamEvent:
    """One piece of an answer as it streams: text, reasoning, a tool call's name or arguments, or a
    tool's result. The response groups events into parts (see `transcript.Transcript`)."""

    type: str
    chunk: str
    part_index: int | None = None
    tool_call_id: str | None = None
    server_executed: bool = False
    tool_name: str | None = None
    redacted: bool = False
    provider_metadata: dict[str, Any] | None = None
    message_index: int = 0
