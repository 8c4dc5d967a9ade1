"""The Chat Completions wire format: requests built from `prompt.messages`, streamed and whole
answers read into text, reasoning and tool-call events.

Every server that speaks it is read the same way: reasoning arrives as `reasoning_content` deltas
(llama.cpp, vLLM, DeepSeek) or `reasoning` (vLLM's newer name, OpenRouter), and is sent back under
the field it came in; tool calls stream in pieces keyed by their index, their id on the first.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from llm_notebook.http import Request, decode_event, error_event
from llm_notebook.http_errors import malformed, server_message
from llm_notebook.http_models import StreamReader, set_usage_from_counts
from llm_notebook.parts import (AttachmentPart, ReasoningPart, StreamEvent, TextPart, ToolCallPart,
                                ToolResultPart)

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
AUDIO_FORMATS = {"audio/wav": "wav", "audio/mpeg": "mp3"}
PDF = "application/pdf"
#: Where reasoning is kept in the parts' provider metadata.
PROVIDER = "openai_compat"
REASONING_FIELDS = ("reasoning_content", "reasoning")
#: How a server takes a JSON schema for the answer: OpenAI's `json_schema` response format, or
#: llama.cpp's `json_object` with the schema beside it (its OpenAI-style server refuses the first).
SCHEMA_STYLES = ("json_schema", "json_object")


# -- requests -------------------------------------------------------------------------------------
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


def _content(parts) -> str | list[dict[str, Any]]:
    """Text and attachments as a message's content: a plain string when there is only text."""
    pieces = []
    for part in parts:
        if isinstance(part, TextPart) and part.text:
            pieces.append({"type": "text", "text": part.text})
        elif isinstance(part, AttachmentPart) and part.attachment is not None:
            pieces.append(attachment_part(part.attachment))
    if all(piece["type"] == "text" for piece in pieces):
        return "".join(piece["text"] for piece in pieces)
    return pieces


def _assistant(message, echo_reasoning: bool) -> dict[str, Any]:
    """An earlier answer: its text, its tool calls and (within a tool exchange) its reasoning,
    under the field the server sent it in."""
    out: dict[str, Any] = {"role": "assistant", "content": _content(message.parts)}
    calls = [part for part in message.parts
             if isinstance(part, ToolCallPart) and not part.server_executed]
    if calls:
        out["tool_calls"] = [{"id": call.tool_call_id, "type": "function",
                              "function": {"name": call.name,
                                           "arguments": json.dumps(call.arguments)}}
                             for call in calls]
        out["content"] = out["content"] or None
    reasoning = [part for part in message.parts if isinstance(part, ReasoningPart) and part.text]
    if echo_reasoning and reasoning:
        field = (reasoning[0].provider_metadata or {}).get(PROVIDER, {}).get("field")
        out[field if field in REASONING_FIELDS else REASONING_FIELDS[0]] = "".join(
            part.text for part in reasoning)
    return out


def _tool_results(message) -> list[dict[str, Any]]:
    """Tool results as `tool` messages; images they return follow in a user message, which is
    where the format takes images."""
    out, images = [], []
    for part in message.parts:
        if isinstance(part, ToolResultPart) and not part.server_executed:
            output = part.output if part.exception is None else f"Error: {part.exception}"
            out.append({"role": "tool", "tool_call_id": part.tool_call_id, "content": output})
            images += [attachment_part(a) for a in part.attachments or ()]
    if images:
        out.append({"role": "user", "content": images})
    return out


def build_messages(prompt) -> list[dict[str, Any]]:
    """`prompt.messages` (the whole chain, history included) as Chat Completions messages.

    Reasoning goes back only for answers after the last user message: a tool exchange still
    under way, where servers that think (DeepSeek, llama.cpp) need it; earlier reasoning is
    left out, as those servers ask."""
    chain = prompt.messages
    last_user = max((i for i, m in enumerate(chain) if m.role == "user"), default=-1)
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(chain):
        if message.role == "assistant":
            messages.append(_assistant(message, echo_reasoning=index > last_user))
        elif message.role == "tool":
            messages += _tool_results(message)
        elif message.role in ("system", "user"):
            messages.append({"role": message.role, "content": _content(message.parts)})
    return messages


def tool_definitions(model, prompt, body: dict[str, Any]) -> None:
    """Function tools as `tools`, server-side tools' specs beside them, each server-side tool then
    adding what else it needs to the body."""
    from llm_notebook.tools import partition_tools

    functions, server_side = partition_tools(model, prompt.tools)
    tools = [{"type": "function", "function": {
        "name": tool.name, "description": tool.description or "",
        "parameters": tool.input_schema or {"type": "object", "properties": {}}}}
        for tool in functions]
    tools += [tool.tool_spec(model) for tool in server_side]
    if tools:
        body["tools"] = tools
    for tool in server_side:
        tool.prepare_request(model, body)


def response_format(schema: dict[str, Any], style: str) -> dict[str, Any]:
    if style == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


# -- answers --------------------------------------------------------------------------------------
def record_usage(response, request: Request, usage: dict[str, Any] | None) -> None:
    """prompt/completion tokens as input/output; the other non-zero counts as details."""
    set_usage_from_counts(response, usage, request=request, input="prompt_tokens",
                          output="completion_tokens", ignored=("total_tokens",))


def _reasoning(holder: dict[str, Any]) -> StreamEvent | None:
    for field in REASONING_FIELDS:
        text = holder.get(field)
        if type(text) is str and text:
            return StreamEvent(type="reasoning", chunk=text,
                               provider_metadata={PROVIDER: {"field": field}})
    return None


class ToolCalls:
    """Tool calls as they arrive (streamed in pieces by index, or whole), as events; `add_to`
    hands each finished call to the response for the package to run."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.by_index: dict[Any, dict[str, Any]] = {}

    def events(self, deltas: Any, where: StreamReader | None = None) -> list[StreamEvent]:
        from llm_notebook.tools import new_tool_call_id

        if type(deltas) is not list:
            raise (where.malformed(deltas, "where tool_calls should be a list") if where else
                   TypeError("tool_calls should be a list"))
        events = []
        for position, delta in enumerate(deltas):
            function = delta.get("function") or {}
            index, given_id = delta.get("index", position), delta.get("id")
            call = self.by_index.get(index)
            # a new call, also where a server sends each call whole, every one at index 0
            if call is None or (given_id and given_id != call["id"]):
                call = {"id": given_id or new_tool_call_id(), "name": "", "arguments": ""}
                self.by_index[index] = call
                self.calls.append(call)
            name, arguments = function.get("name"), function.get("arguments")
            if isinstance(arguments, dict):  # a whole call from a server that sends objects
                arguments = json.dumps(arguments)
            if name:
                call["name"] += name
                events.append(StreamEvent(type="tool_call_name", chunk=name,
                                          tool_call_id=call["id"]))
            if arguments:
                call["arguments"] += arguments
                events.append(StreamEvent(type="tool_call_args", chunk=arguments,
                                          tool_call_id=call["id"]))
        return events

    def add_to(self, response) -> None:
        from llm_notebook.tools import ToolCall
        from llm_notebook.transcript import tool_arguments

        for call in self.calls:
            response.add_tool_call(ToolCall(name=call["name"],
                                            arguments=tool_arguments(call["arguments"]),
                                            tool_call_id=call["id"]))


def _one_or_many(events: list[Any]) -> Any:
    """What the wire loop hands on for one piece of the answer: the value, or a list of them."""
    if not events:
        return None
    return events[0] if len(events) == 1 else events


def read_answer(body, response, request: Request) -> list[Any]:
    """A whole (not streamed) answer: its reasoning, text and tool calls."""
    try:
        message = body["choices"][0]["message"]
        content = message.get("content")
    except (LookupError, TypeError, AttributeError):
        raise request.error(f"{request.url} answered without a message: "
                            f"{server_message(body, str(body)[:200])}") from None
    if content is not None and type(content) is not str:
        raise malformed(request, message, "where the content should be a string")
    response.response_json = body
    if type(body.get("model")) is str:
        response.set_resolved_model(body["model"])
    record_usage(response, request, body.get("usage"))
    reasoning = _reasoning(message)
    events: list[Any] = [reasoning] if reasoning else []
    if content:
        events.append(content)
    if message.get("tool_calls"):
        calls = ToolCalls()
        try:
            events += calls.events(message["tool_calls"])
        except (TypeError, AttributeError):
            raise malformed(request, message, "where tool calls belong") from None
        calls.add_to(response)
    return events


class ChatStream(StreamReader):
    """Reads a streamed chat completion: content, reasoning and tool-call deltas, the finish
    reason, usage, `[DONE]`.

    The answer is done at `[DONE]`, or once both the finish reason and the usage have come
    (servers that send no `[DONE]` end there)."""

    def __init__(self, response, request: Request) -> None:
        super().__init__(response, request)
        self.finish_reason = None
        self.usage = None
        self.last: dict[str, Any] = {}
        self.tool_calls = ToolCalls()

    def feed(self, event) -> Any:
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
                    if len(delta) == 1 and type(content) is str:  # the common case: only text
                        return content
                    return self._mixed(delta, content, data)
            elif "error" in chunk:
                raise error_event(chunk)
        except (AttributeError, TypeError, LookupError):  # a field of the wrong type
            raise self.malformed(data, "where a chat completion chunk belongs") from None
        return None

    def _mixed(self, delta: dict[str, Any], content: Any, data: str) -> Any:
        """A delta with more than text in it (a role, reasoning, tool calls)."""
        if content is not None and type(content) is not str:
            raise self.malformed(data, "where the content should be a string")
        reasoning = _reasoning(delta)
        events: list[Any] = [reasoning] if reasoning else []
        if content:
            events.append(content)
        if delta.get("tool_calls"):
            events += self.tool_calls.events(delta["tool_calls"], self)
        return _one_or_many(events)

    def end(self) -> None:
        if not self.done and self.finish_reason is None:
            raise self.incomplete()
        model = self.last.get("model")
        self.response.response_json = {"id": self.last.get("id"), "model": model,
                                       "finish_reason": self.finish_reason, "usage": self.usage}
        if type(model) is str and model:
            self.response.set_resolved_model(model)
        self.tool_calls.add_to(self.response)
        record_usage(self.response, self.request, self.usage)
