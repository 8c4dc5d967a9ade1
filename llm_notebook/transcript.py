"""The transcript of one answer: what execute() yielded, kept once, read by every view.

Plain strings are the answer's text (the fast path: thousands of small chunks). `StreamEvent`s are
grouped into parts by the `llm` library's documented rules: consecutive events of one family (text,
reasoning) make one part; tool-call events group by `tool_call_id`, even interleaved; each tool
result is a part of its own; an explicit `part_index` overrides the grouping.
"""

from __future__ import annotations

import json
from typing import Any

from .parts import (EVENT_TYPES, Message, Part, ReasoningPart, StreamEvent, TextPart, ToolCallPart,
                    ToolResultPart)

_FAMILY = {"text": "text", "reasoning": "reasoning", "tool_call_name": "tool_call",
           "tool_call_args": "tool_call", "tool_result": "tool_result"}


class _Slot:
    """The events of one part so far."""

    __slots__ = ("family", "chunks", "name", "tool_call_id", "server_executed", "tool_name",
                 "redacted", "provider_metadata", "message_index")

    def __init__(self, family: str, message_index: int) -> None:
        self.family = family
        self.chunks: list[str] = []
        self.name = ""
        self.tool_call_id: str | None = None
        self.server_executed = False
        self.tool_name: str | None = None
        self.redacted = False
        self.provider_metadata: dict[str, Any] | None = None
        self.message_index = message_index

    def take(self, event: StreamEvent) -> None:
        if event.type == "tool_call_name":
            self.name += event.chunk or ""
        elif event.chunk:
            self.chunks.append(event.chunk)
        self.tool_call_id = self.tool_call_id or event.tool_call_id
        self.server_executed = self.server_executed or bool(event.server_executed)
        self.tool_name = self.tool_name or event.tool_name
        self.redacted = self.redacted or bool(event.redacted)
        if event.provider_metadata:  # last non-None wins, key by key
            self.provider_metadata = {**(self.provider_metadata or {}), **event.provider_metadata}

    def part(self) -> Part:
        text = "".join(self.chunks)
        metadata = self.provider_metadata
        if self.family == "text":
            return TextPart(text=text, provider_metadata=metadata)
        if self.family == "reasoning":
            return ReasoningPart(text=text, redacted=self.redacted, provider_metadata=metadata)
        if self.family == "tool_call":
            return ToolCallPart(name=self.name, arguments=tool_arguments(text),
                                tool_call_id=self.tool_call_id,
                                server_executed=self.server_executed, provider_metadata=metadata)
        return ToolResultPart(name=self.tool_name or self.name, output=text,
                              tool_call_id=self.tool_call_id, server_executed=self.server_executed,
                              provider_metadata=metadata)


def tool_arguments(text: str) -> dict[str, Any]:
    """A tool call's arguments from the JSON the model streamed; text that is not a JSON object is
    kept under "_invalid_json", so the call can be answered with an error instead of lost."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"_invalid_json": text}
    return value if isinstance(value, dict) else {"_invalid_json": text}


def as_event(chunk: Any) -> StreamEvent | None:
    """`chunk` as a StreamEvent when it is one (ours, or any object shaped like one)."""
    if isinstance(chunk, StreamEvent):
        return chunk
    kind = getattr(chunk, "type", None)
    if kind in EVENT_TYPES and isinstance(getattr(chunk, "chunk", None), (str, type(None))):
        return StreamEvent(**{name: getattr(chunk, name) for name in
                              ("type", "chunk", "part_index", "tool_call_id", "server_executed",
                               "tool_name", "redacted", "provider_metadata", "message_index")
                              if hasattr(chunk, name)})
    return None


class Transcript:
    """Text and parts of one answer, appended by the thread that runs the model."""

    def __init__(self) -> None:
        #: The answer's visible text, chunk by chunk (text events and plain strings).
        self.chunks: list[str] = []
        self._joined = ""
        self._joined_count = 0
        self._slots: dict[int, _Slot] = {}  # by part index, in the order first seen
        self._tool_slots: dict[str, int] = {}
        self._open_text: _Slot | None = None  # the text part that plain strings extend
        self._last_index: int | None = None
        self._last_family: str | None = None
        self._last_message = 0
        self._top_index = -1

    # -- appending (one thread) ------------------------------------------------------------
    def add_text(self, text: str) -> None:
        """A plain string from execute(): more of the answer's text."""
        slot = self._open_text
        if slot is None:
            slot = self._open_text = self._new_slot("text", 0)
        slot.chunks.append(text)
        self.chunks.append(text)

    def add_event(self, event: StreamEvent) -> str:
        """Group one event into its part; returns the visible text it adds ("" for others)."""
        family = _FAMILY.get(event.type)
        if family is None:
            raise ValueError(f"Unknown StreamEvent type {event.type!r}: expected one of "
                             f"{', '.join(EVENT_TYPES)}")
        slot = self._slot_for(event, family)
        slot.take(event)
        if family == "text" and event.chunk:
            self.chunks.append(event.chunk)
            return event.chunk
        return ""

    def _new_slot(self, family: str, message_index: int, index: int | None = None) -> _Slot:
        if index is None:
            index = self._top_index + 1
        self._top_index = max(self._top_index, index)
        slot = self._slots.get(index)
        if slot is None:
            slot = self._slots[index] = _Slot(family, message_index)
        elif slot.family != family:
            raise ValueError(f"StreamEvent part_index={index} mixes {slot.family} with {family}: "
                             "give a different content type its own part_index")
        self._last_index, self._last_family = index, family
        self._last_message = message_index
        self._open_text = slot if family == "text" else None
        return slot

    def _slot_for(self, event: StreamEvent, family: str) -> _Slot:
        message = event.message_index or 0
        if event.part_index is not None:
            slot = self._new_slot(family, message, event.part_index)
            if family == "tool_call" and event.tool_call_id:
                self._tool_slots[event.tool_call_id] = event.part_index
            return slot
        continues = message == self._last_message and self._last_index is not None
        if family == "tool_call":
            if event.tool_call_id:
                known = self._tool_slots.get(event.tool_call_id)
                if known is not None:
                    return self._new_slot(family, message, known)
                slot = self._new_slot(family, message)
                self._tool_slots[event.tool_call_id] = self._last_index
                return slot
            if event.type == "tool_call_args" and continues and self._last_family == "tool_call":
                return self._slots[self._last_index]  # arguments of the call just named
            return self._new_slot(family, message)
        if family != "tool_result" and continues and self._last_family == family:
            return self._slots[self._last_index]
        return self._new_slot(family, message)

    # -- reading (any thread) --------------------------------------------------------------
    def text(self) -> str:
        """The visible text so far (joined once per change, not once per read)."""
        count = len(self.chunks)
        if count != self._joined_count:
            self._joined, self._joined_count = "".join(self.chunks[:count]), count
        return self._joined

    def parts(self) -> list[Part]:
        """The parts so far, in the order first seen; withheld reasoning first, as llm puts it."""
        parts = [slot.part() for slot in list(self._slots.values())]
        hidden = [isinstance(p, ReasoningPart) and p.redacted and not p.text for p in parts]
        if not any(hidden):
            return parts
        return ([p for p, withheld in zip(parts, hidden) if withheld]
                + [p for p, withheld in zip(parts, hidden) if not withheld])

    def messages(self) -> list[Message]:
        """The answer as assistant messages (usually one; providers may send several)."""
        grouped: dict[int, list[Part]] = {}
        for slot in list(self._slots.values()):
            grouped.setdefault(slot.message_index, []).append(slot.part())
        return [Message(role="assistant", parts=parts) for parts in grouped.values()]

    def reasoning(self) -> str:
        return "".join("".join(slot.chunks) for slot in list(self._slots.values())
                       if slot.family == "reasoning")
