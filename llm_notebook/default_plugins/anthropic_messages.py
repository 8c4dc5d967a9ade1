"""Anthropic's Messages API wire format: requests built from `prompt.messages`, answers read into
text, thinking (with its signature) and tool-use events.

Thinking blocks carry a signature that must come back unchanged on the next request; it is kept
in the reasoning part's provider metadata (`{"anthropic": {"signature": ...}}`), as is the data of
redacted thinking and the raw blocks of server-side tools.
"""

from __future__ import annotations

import json
from typing import Any

from llm_notebook.http import Request, decode_event, error_event
from llm_notebook.http_errors import malformed, server_message
from llm_notebook.http_models import StreamReader, set_usage_from_counts
from llm_notebook.parts import (AttachmentPart, ReasoningPart, StreamEvent, TextPart, ToolCallPart,
                                ToolResultPart)

PROVIDER = "anthropic"
PDF = "application/pdf"
#: The forced tool a schema travels in: its input is the answer.
SCHEMA_TOOL = "json_answer"


# -- requests -------------------------------------------------------------------------------------
def _source(attachment) -> dict[str, Any]:
    if attachment.is_url_only():
        return {"type": "url", "url": attachment.url}
    return {"type": "base64", "media_type": attachment.resolve_type(),
            "data": attachment.base64_content()}


def attachment_block(attachment) -> dict[str, Any]:
    kind = "document" if attachment.resolve_type() == PDF else "image"
    return {"type": kind, "source": _source(attachment)}


def _metadata(part) -> dict[str, Any]:
    return (part.provider_metadata or {}).get(PROVIDER) or {}


def _reasoning_block(part: ReasoningPart) -> dict[str, Any] | None:
    metadata = _metadata(part)
    if part.redacted:
        data = metadata.get("redacted_data")
        return {"type": "redacted_thinking", "data": data} if data else None
    if not part.text:
        return None
    block = {"type": "thinking", "thinking": part.text}
    if metadata.get("signature"):
        block["signature"] = metadata["signature"]
    return block


def _tool_result_block(part: ToolResultPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id}
    content: list[dict[str, Any]] = [{"type": "text", "text": part.output}] if part.output else []
    content += [attachment_block(a) for a in part.attachments or ()]
    block["content"] = content if len(content) != 1 or content[0]["type"] != "text" else part.output
    if part.exception is not None:
        block["is_error"] = True
        block["content"] = part.output or part.exception
    return block


def _blocks(message) -> list[dict[str, Any]]:
    """One message's parts as content blocks; attachments before the text (as Anthropic advises
    for user turns)."""
    attachments, blocks = [], []
    for part in message.parts:
        if isinstance(part, TextPart) and part.text:
            blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, AttachmentPart) and part.attachment is not None:
            attachments.append(attachment_block(part.attachment))
        elif isinstance(part, ReasoningPart):
            block = _reasoning_block(part)
            if block:
                blocks.append(block)
        elif isinstance(part, ToolCallPart):
            raw = _metadata(part).get("block")
            blocks.append(raw if part.server_executed and raw else
                          {"type": "tool_use", "id": part.tool_call_id, "name": part.name,
                           "input": part.arguments})
        elif isinstance(part, ToolResultPart):
            raw = _metadata(part).get("block")
            if part.server_executed:
                if raw:
                    blocks.append(raw)
            else:
                blocks.append(_tool_result_block(part))
    return attachments + blocks


def build_messages(prompt) -> tuple[str | None, list[dict[str, Any]]]:
    """(system prompt, messages) from `prompt.messages`. Tool results go in user turns, and turns
    of one role in a row are merged, as the API wants them to alternate; a turn of text alone is
    sent as a plain string."""
    system = [m.text for m in prompt.messages if m.role == "system" and m.text]
    messages: list[dict[str, Any]] = []
    for message in prompt.messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += blocks
        else:
            messages.append({"role": role, "content": blocks})
    for message in messages:
        content = message["content"]
        if all(block["type"] == "text" for block in content):
            message["content"] = "".join(block["text"] for block in content)
    return ("\n\n".join(system) if system else None), messages


def tool_definitions(model, prompt, body: dict[str, Any]) -> None:
    """Function tools, server-side tools' specs, and a schema as a forced tool."""
    from llm_notebook.tools import partition_tools

    functions, server_side = partition_tools(model, prompt.tools)
    tools = [{"name": tool.name, "description": tool.description or "",
              "input_schema": tool.input_schema or {"type": "object", "properties": {}}}
             for tool in functions]
    tools += [tool.tool_spec(model) for tool in server_side]
    if prompt.schema is not None:
        tools.append({"name": SCHEMA_TOOL, "description": "Answer with JSON of this schema",
                      "input_schema": prompt.schema})
        body["tool_choice"] = {"type": "tool", "name": SCHEMA_TOOL}
    if tools:
        body["tools"] = tools
    for tool in server_side:
        tool.prepare_request(model, body)


# -- answers --------------------------------------------------------------------------------------
def record_usage(response, request: Request, usage: dict[str, Any] | None) -> None:
    """input/output tokens; cache creation and cache read tokens as details."""
    set_usage_from_counts(response, usage, request=request, input="input_tokens",
                          output="output_tokens")


class _Blocks:
    """The content blocks of one answer, as events: shared by the stream and the whole answer.

    Thinking events carry the block's index as their part index, so two thinking blocks in a row
    stay two parts, each with its own signature."""

    def __init__(self, response, schema: bool) -> None:
        self.response = response
        self.schema = schema
        self.open: dict[int, dict[str, Any]] = {}

    def start(self, index: int, block: dict[str, Any]) -> list[Any]:
        kind = block.get("type")
        self.open[index] = state = {"type": kind, "block": block, "json": ""}
        if kind == "thinking":
            return self.thinking(index, block.get("thinking") or "", block.get("signature"))
        if kind == "redacted_thinking":
            return [StreamEvent(type="reasoning", chunk="", redacted=True, part_index=index,
                                provider_metadata={PROVIDER: {"redacted_data": block.get("data")}})]
        if kind == "text":
            return [block["text"]] if block.get("text") else []
        if kind in ("tool_use", "server_tool_use"):
            state["id"], state["name"] = block.get("id"), block.get("name") or ""
            if self._is_schema(state):
                return []
            return [StreamEvent(type="tool_call_name", chunk=state["name"],
                                tool_call_id=state["id"],
                                server_executed=kind == "server_tool_use")]
        if kind and kind.endswith("_tool_result"):
            return [StreamEvent(type="tool_result", chunk=json.dumps(block.get("content")),
                                tool_call_id=block.get("tool_use_id"), server_executed=True,
                                tool_name=kind.removesuffix("_tool_result"),
                                provider_metadata={PROVIDER: {"block": block}})]
        return []

    def _is_schema(self, state: dict[str, Any]) -> bool:
        return self.schema and state["type"] == "tool_use" and state["name"] == SCHEMA_TOOL

    def thinking(self, index: int, text: str, signature: str | None) -> list[Any]:
        metadata = {PROVIDER: {"signature": signature}} if signature else None
        if not text and metadata is None:
            return []
        return [StreamEvent(type="reasoning", chunk=text, part_index=index,
                            provider_metadata=metadata)]

    def delta(self, index: int, delta: dict[str, Any]) -> list[Any]:
        kind = delta.get("type")
        if kind == "text_delta":
            return [delta.get("text") or ""]
        if kind == "thinking_delta":
            return self.thinking(index, delta.get("thinking") or "", None)
        if kind == "signature_delta":
            return self.thinking(index, "", delta.get("signature"))
        state = self.open.get(index)
        if kind == "input_json_delta" and state is not None:
            piece = delta.get("partial_json") or ""
            state["json"] += piece
            if not piece:
                return []
            if self._is_schema(state):
                return [piece]  # the schema's answer is the text
            return [StreamEvent(type="tool_call_args", chunk=piece, tool_call_id=state["id"],
                                server_executed=state["type"] == "server_tool_use")]
        return []

    def stop(self, index: int) -> None:
        """A tool-use block ends: the call is handed to the response to run."""
        from llm_notebook.tools import ToolCall
        from llm_notebook.transcript import tool_arguments

        state = self.open.pop(index, None)
        if state is None or state["type"] != "tool_use" or self._is_schema(state):
            return
        self.response.add_tool_call(ToolCall(name=state["name"],
                                             arguments=tool_arguments(state["json"]),
                                             tool_call_id=state["id"]))

    def whole(self, index: int, block: dict[str, Any]) -> list[Any]:
        """A block of a whole answer: its start and its content at once."""
        kind = block.get("type")
        if kind in ("tool_use", "server_tool_use"):
            events = self.start(index, {**block, "input": {}})
            events += self.delta(index, {"type": "input_json_delta",
                                         "partial_json": json.dumps(block.get("input") or {})})
        else:
            events = self.start(index, block)
        self.stop(index)
        return events


def _one_or_many(events: list[Any]) -> Any:
    if not events:
        return None
    return events[0] if len(events) == 1 else events


def read_answer(body, response, request: Request, *, schema: bool) -> list[Any]:
    """A whole message: thinking, text, tool uses, usage, the model that answered."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise request.error(f"{request.url} answered without content: "
                            f"{server_message(body, str(body)[:200])}")
    blocks = _Blocks(response, schema)
    events: list[Any] = []
    for index, block in enumerate(body["content"]):
        if type(block) is not dict:
            raise malformed(request, block, "where a content block should be an object")
        if block.get("type") == "text" and type(block.get("text")) is not str:
            raise malformed(request, block, "where the text should be a string")
        events += blocks.whole(index, block)
    response.response_json = body
    if type(body.get("model")) is str:
        response.set_resolved_model(body["model"])
    record_usage(response, request, body.get("usage"))
    return events


class MessageStream(StreamReader):
    """Reads a streamed message: content blocks and their deltas, usage from message_start and
    message_delta; the answer is done at message_stop."""

    def __init__(self, response, request: Request, *, schema: bool) -> None:
        super().__init__(response, request)
        self.usage: dict[str, Any] = {}
        self.message: dict[str, Any] = {}
        self.blocks = _Blocks(response, schema)

    def feed(self, event) -> Any:
        kind = event.event
        if kind == "ping" or not event.data:
            return None
        data = decode_event(event.data, self.request)
        if kind == "content_block_delta":
            delta = self.expect_object(data.get("delta"), "delta")
            if delta.get("type") == "text_delta":  # the common case
                text = delta.get("text")
                if text is None or type(text) is str:
                    return text
                raise self.malformed(event.data, "where the text should be a string")
            return _one_or_many(self.blocks.delta(data.get("index"), delta))
        if kind == "content_block_start":
            block = self.expect_object(data.get("content_block"), "content_block")
            return _one_or_many(self.blocks.start(data.get("index"), block))
        if kind == "content_block_stop":
            self.blocks.stop(data.get("index"))
        elif kind == "message_start":
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
        if type(self.message.get("model")) is str:
            self.response.set_resolved_model(self.message["model"])
        record_usage(self.response, self.request, self.usage)
