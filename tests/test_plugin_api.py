"""The current llm plugin contract: prompt.messages as the complete input chain, StreamEvents
grouped into parts, tool calls, schemas as dicts and the resolved model, as the reference page
(llm-advanced-model-plugins-current.md) describes them."""

from __future__ import annotations

import base64
import json
from typing import Annotated
import pytest
from pydantic import BaseModel, Field

import llm_notebook
from llm_notebook import AsyncModel, Model
from llm_notebook.models import CapabilityError
from llm_notebook.parts import (AttachmentPart, Message, ReasoningPart, StreamEvent, TextPart,
                                ToolCallPart, ToolResultPart)
from llm_notebook.tools import Tool, ToolCall, ToolResult, Toolbox

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
                       "AAAABJRU5ErkJggg==")  # a valid 1x1 PNG


class Recorder(Model):
    """Keeps the messages it was sent; answers with events: reasoning, text, a tool call."""

    model_id = "recorder"
    supports_tools = True
    supports_schema = True
    attachment_types = {"image/png"}

    def __init__(self) -> None:
        self.seen: list[list[Message]] = []

    def execute(self, prompt, stream, response, conversation):
        self.seen.append(prompt.messages)
        yield StreamEvent(type="reasoning", chunk="thinking ")
        yield StreamEvent(type="reasoning", chunk="hard", provider_metadata={"p": {"sig": "s1"}})
        yield "Answer "
        yield StreamEvent(type="text", chunk="number %d" % len(self.seen))
        yield StreamEvent(type="tool_call_name", chunk="lookup", tool_call_id="call-1")
        yield StreamEvent(type="tool_call_args", chunk='{"q": ', tool_call_id="call-1")
        yield StreamEvent(type="tool_call_args", chunk='"x"}', tool_call_id="call-1")
        response.add_tool_call(ToolCall(name="lookup", arguments={"q": "x"}, tool_call_id="call-1"))
        response.set_resolved_model("recorder-2026-11")


def test_stream_events_become_parts_and_only_text_is_the_answer():
    response = Recorder().prompt("hi")
    assert response.text() == "Answer number 1"
    assert response.parts_so_far() == [
        ReasoningPart(text="thinking hard", provider_metadata={"p": {"sig": "s1"}}),
        TextPart(text="Answer number 1"),
        ToolCallPart(name="lookup", arguments={"q": "x"}, tool_call_id="call-1")]
    assert [call.tool_call_id for call in response.tool_calls()] == ["call-1"]
    assert response.resolved_model == "recorder-2026-11"
    record = response.to_dict()
    assert record["resolved_model"] == "recorder-2026-11"
    assert record["parts"][0] == {"type": "reasoning", "text": "thinking hard",
                                  "provider_metadata": {"p": {"sig": "s1"}}}
    assert record["tool_calls"] == [{"name": "lookup", "arguments": {"q": "x"},
                                     "tool_call_id": "call-1"}]


def test_prompt_messages_is_the_current_turn_built_from_the_arguments():
    model = Recorder()
    model.prompt("look", system="be brief", attachments=[PNG],
                 tool_results=[ToolResult(name="lookup", output="42", tool_call_id="call-0")]).text()
    [messages] = model.seen
    assert [m.role for m in messages] == ["system", "tool", "user"]
    assert messages[0].parts == [TextPart(text="be brief")]
    assert messages[1].parts == [ToolResultPart(name="lookup", output="42", tool_call_id="call-0")]
    assert isinstance(messages[2].parts[0], TextPart) and isinstance(messages[2].parts[1], AttachmentPart)
    assert messages[2].parts[1].attachment.content_bytes() == PNG


def test_a_conversation_passes_the_complete_chain_with_earlier_answers_parts():
    model = Recorder()
    conversation = model.conversation()
    conversation.prompt("first", system="sys").text()
    conversation.prompt("second").text()
    chain = model.seen[1]
    assert [m.role for m in chain] == ["system", "user", "assistant", "user"]
    assert chain[0].parts == [TextPart(text="sys")]
    assert chain[1].text == "first" and chain[3].text == "second"
    assert chain[2].parts == [
        ReasoningPart(text="thinking hard", provider_metadata={"p": {"sig": "s1"}}),
        TextPart(text="Answer number 1"),
        ToolCallPart(name="lookup", arguments={"q": "x"}, tool_call_id="call-1")]


def test_explicit_messages_are_authoritative():
    model = Recorder()
    chain = [llm_notebook.parts.user("earlier"), llm_notebook.parts.assistant("reply"),
             llm_notebook.parts.user("now")]
    model.prompt(messages=chain).text()
    assert model.seen[0] == chain


def test_parallel_tool_calls_interleaved_by_id_make_one_part_each():
    class Parallel(Model):
        model_id = "parallel"

        def execute(self, prompt, stream, response, conversation):
            yield StreamEvent("text", "let me ", part_index=0)
            yield StreamEvent("tool_call_name", "a", tool_call_id="1")
            yield StreamEvent("tool_call_name", "b", tool_call_id="2")
            yield StreamEvent("tool_call_args", '{"x": 1}', tool_call_id="2")
            yield StreamEvent("tool_call_args", '{"y": 2}', tool_call_id="1")
            yield StreamEvent("text", "check", part_index=0)  # the same text part as before

    response = Parallel().prompt("go")
    assert response.text() == "let me check"
    parts = response.parts_so_far()
    assert parts[0] == TextPart(text="let me check")
    assert [(p.name, p.arguments) for p in parts[1:]] == [("a", {"y": 2}), ("b", {"x": 1})]


def test_async_models_yield_events_too():
    class AsyncThinker(AsyncModel):
        model_id = "async-thinker"

        async def execute(self, prompt, stream, response, conversation):
            yield StreamEvent(type="reasoning", chunk="hmm")
            yield StreamEvent(type="text", chunk="ok")

    from llm_notebook import runner

    response = AsyncThinker().prompt("x")
    assert runner.run(response.text()) == "ok"
    assert response.parts_so_far()[0] == ReasoningPart(text="hmm")
    with pytest.raises(ValueError):
        AsyncThinker().prompt("y").tool_calls_or_raise()


class Person(BaseModel):
    name: str
    age: int


def test_schema_is_always_a_dict_and_tools_become_tool_objects():
    model = Recorder()

    def lookup(q: str, limit: int = 3) -> str:
        """Find things."""
        return q

    class Box(Toolbox):
        def count(self, text: str) -> int:
            return len(text)

    for given in (Person, Person.model_json_schema(), "name, age int"):
        response = model.prompt("x", schema=given, tools=[lookup, Box()])
        assert isinstance(response.prompt.schema, dict)
        assert response.prompt.schema["properties"]["age"]["type"] == "integer"
    tools = response.prompt.tools
    assert [t.name for t in tools] == ["lookup", "Box_count"]
    assert tools[0].description == "Find things."
    assert tools[0].input_schema["required"] == ["q"]
    assert tools[0].input_schema["properties"]["limit"] == {"default": 3, "type": "integer"}
    assert isinstance(tools[1], Tool) and tools[1].implementation("abc") == 3


def test_tools_and_schemas_go_only_to_models_that_declare_them():
    echo = llm_notebook.get_model("markov")
    with pytest.raises(CapabilityError, match="does not support tools"):
        echo.prompt("x", tools=[lambda: None.__class__] and [Tool(name="t")])
    with pytest.raises(CapabilityError, match="does not support schemas"):
        echo.prompt("x", schema="name")


def test_seed_page_plugins_that_walk_conversation_responses_still_work():
    class Old(Model):
        model_id = "old-style"

        def execute(self, prompt, stream, response, conversation):
            history = [(r.prompt.prompt, r.text()) for r in conversation.responses] if conversation else []
            yield f"{len(history)} earlier: {history}"

    conversation = Old().conversation()
    conversation.prompt("one").text()
    assert conversation.prompt("two").text() == f"1 earlier: {[('one', '0 earlier: []')]}"


def test_annotated_constraints_and_descriptions_reach_the_tool_schema():
    def pick(n: Annotated[int, Field(ge=1, le=50, description="how many rows")] = 5) -> int:
        """Pick rows."""
        return n

    assert Tool.function(pick).input_schema["properties"]["n"] == {
        "default": 5, "description": "how many rows", "maximum": 50, "minimum": 1,
        "type": "integer"}


def test_a_key_echoed_into_parts_is_masked_in_parts_and_the_record():
    class Echoes(llm_notebook.KeyModel):
        model_id = "echoes-key"
        needs_key = "echoes"
        supports_tools = True

        def execute(self, prompt, stream, response, conversation, key):
            yield StreamEvent(type="reasoning", chunk=f"the key is {key}")
            yield StreamEvent("tool_call_name", "f", tool_call_id="1")
            yield StreamEvent("tool_call_args", json.dumps({"k": key}), tool_call_id="1")
            yield f"text {key}"

    key = "sk-canary-0123456789abcdef"
    response = Echoes().prompt("x", key=key)
    response.text()
    assert key not in repr(response.parts_so_far()) and key not in json.dumps(response.to_dict())
    assert response.parts_so_far()[0].text == "the key is ***"


def test_endpoint_models_take_tools_and_schemas_in_their_servers_style():
    [plain] = llm_notebook.add_openai_endpoint("http://127.0.0.1:9/v1", name="plainbox",
                                              models=["m1"])
    [cpp] = llm_notebook.add_openai_endpoint("http://127.0.0.1:9/v1", name="cppbox",
                                            models=["m2"], schema_style="json_object")
    assert llm_notebook.get_model(plain).supports_tools and llm_notebook.get_model(plain).supports_schema
    assert llm_notebook.get_model(plain).schema_style == "json_schema"
    assert llm_notebook.get_model(cpp).schema_style == "json_object"
