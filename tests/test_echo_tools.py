"""echo follows a JSON block in its prompt: it asks for tool calls (round by round), answers
exactly, and answers schemas with values that fit them; sync and async alike."""

from __future__ import annotations

import asyncio
import json

import pytest

import llm_notebook
from llm_notebook import ToolCallPart, runner
from llm_notebook.schemas import json_schema_validator


def lookup(q: str) -> str:
    """Look q up."""
    return f"found {q}"


CALL = '{"tool_calls": [{"name": "lookup", "arguments": {"q": "panda"}}]}'


def test_echo_asks_for_the_calls_its_prompt_names_and_echoes_their_results():
    chain = llm_notebook.get_model("echo").chain(f"Find it. {CALL}", tools=[lookup])
    text = chain.text()
    [result] = chain.tool_results
    assert result.output == "found panda" and result.name == "lookup"
    first, second = chain.responses_so_far()
    [call] = first.tool_calls()
    assert (call.name, call.arguments) == ("lookup", {"q": "panda"})
    streamed = [p for p in first.parts_so_far() if isinstance(p, ToolCallPart)]
    assert [(p.name, p.arguments, p.tool_call_id) for p in streamed] == [
        ("lookup", {"q": "panda"}, call.tool_call_id)]
    assert second.tool_calls() == []
    assert "**Tool results** (1)" in second.text() and "> found panda" in second.text()
    assert text == first.text() + second.text()
    assert chain.usage().input > first.usage().input  # the result's words count as input


def test_rounds_follow_one_another_and_raw_is_the_final_answer():
    script = {"rounds": [[{"name": "lookup", "arguments": {"q": "a"}}],
                         [{"name": "lookup", "arguments": {"q": "b"}},
                          {"name": "lookup", "arguments": {"q": "c"}}]],
              "raw": "all found"}
    chain = llm_notebook.get_model("echo").chain(json.dumps(script), tools=[lookup])
    assert chain.text().endswith("all found")
    assert [r.output for r in chain.tool_results] == ["found a", "found b", "found c"]
    assert len(chain.responses_so_far()) == 3

    limited = llm_notebook.get_model("echo").chain(json.dumps(script), tools=[lookup],
                                                   chain_limit=1)
    limited.text()
    assert [r.output for r in limited.tool_results] == ["found a"]
    assert "chain_limit=1" in limited.stopped


def test_a_script_in_the_system_prompt_or_a_fence_counts_and_async_echo_does_the_same():
    model = llm_notebook.get_model("echo")
    chain = model.chain("Look it up", system=f"```json\n{CALL}\n```", tools=[lookup])
    assert chain.text().count("found panda") >= 1 and len(chain.tool_results) == 1

    async_chain = llm_notebook.get_async_model("echo").chain(f"go {CALL}", tools=[lookup])
    assert "found panda" in runner.run(async_chain.text(), timeout=30)
    assert [r.output for r in async_chain.tool_results] == ["found panda"]


def test_echo_answers_a_schema_with_a_value_that_fits_it():
    schema = {"type": "object", "properties": {
        "name": {"type": "string", "minLength": 8},
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "kind": {"enum": ["cat", "dog"]}, "born": {"type": "string", "format": "date"},
        "pet": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Pet"}]}},
        "required": ["name", "age"], "$defs": {"Pet": {"type": "object", "properties": {
            "legs": {"type": "number", "exclusiveMinimum": 0}}}}}
    model = llm_notebook.get_model("echo")
    value = json.loads(model.prompt("a person", schema=schema).text())
    json_schema_validator(schema)(value)  # raises when it does not fit
    assert value["kind"] == "cat" and len(value["tags"]) == 2 and value["pet"]["legs"] > 0
    assert json.loads(model.prompt("x", schema="name, count int").text()) == {"name": "name",
                                                                              "count": 0}
    raw = model.prompt('{"raw": {"name": 3}}', schema=schema).text()
    assert json.loads(raw) == {"name": 3}  # sent as it is, valid or not

    async def async_answer():
        return await llm_notebook.get_async_model("echo").prompt("p", schema=schema).text()

    json_schema_validator(schema)(json.loads(asyncio.run(async_answer())))


def test_a_script_that_does_not_fit_is_one_clear_error():
    with pytest.raises(llm_notebook.ModelError, match='each call is an object with a "name"'):
        llm_notebook.get_model("echo").prompt('{"tool_calls": [42]}').text()
    assert llm_notebook.get_model("markov").supports_tools is False
