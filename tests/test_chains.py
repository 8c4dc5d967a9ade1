"""Tool chains as llm defines them: calls run, results go back, hooks, cancels, errors as text,
JSON results, async tools at once, the round limit, usage summed and every call's duration kept."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

import llm_notebook
from llm_notebook import AsyncModel, CancelToolCall, Model, Tool, ToolCall, Toolbox, runner


def _planned_calls(prompt):
    """The calls a scripted model makes: `call NAME {json}; ...` in the first prompt's text."""
    text = prompt.prompt or ""
    calls = []
    for piece in text.split(";"):
        piece = piece.strip()
        if piece.startswith("call "):
            name, _, arguments = piece[5:].partition(" ")
            calls.append((name, json.loads(arguments or "{}")))
    return calls


class Scripted(Model):
    """Asks for the calls its prompt lists; once it has tool results, says what they were."""

    model_id = "scripted"
    supports_tools = True

    def execute(self, prompt, stream, response, conversation):
        if prompt.tool_results:
            yield "results: " + ", ".join(f"{r.name}={r.output}" for r in prompt.tool_results)
            response.set_usage(input=5, output=3)
            return
        for number, (name, arguments) in enumerate(_planned_calls(prompt)):
            response.add_tool_call(ToolCall(name=name, arguments=arguments,
                                            tool_call_id=f"call-{number}"))
        response.set_usage(input=10, output=2)
        yield "" if _planned_calls(prompt) else "no calls"


class AsyncScripted(AsyncModel):
    model_id = "scripted"
    supports_tools = True

    async def execute(self, prompt, stream, response, conversation):
        for chunk in Scripted.execute(self, prompt, stream, response, conversation):
            yield chunk


def upper(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


def test_a_chain_runs_the_calls_and_sends_the_results_back():
    chain = Scripted().chain('call upper {"text": "panda"}', tools=[upper])
    assert chain.text() == "results: upper=PANDA"
    assert [r.status for r in chain.responses_so_far()] == ["done", "done"]
    [result] = chain.tool_results
    assert result.tool_call_id == "call-0" and result.duration_ms is not None
    assert chain.usage() == llm_notebook.Usage(input=15, output=5)
    second = chain.responses_so_far()[1]
    assert [m.role for m in second.prompt.messages] == ["user", "assistant", "tool"]


def test_errors_cancels_unknown_tools_and_json_results_reach_the_model_as_text():
    def broken(x: int) -> int:
        raise ValueError("no such row")

    def table(n: int) -> dict:
        return {"rows": n, "cols": [1, 2]}

    def before(tool, call):
        if call.name == "upper":
            raise CancelToolCall("the user said no")

    chain = Scripted().chain('call broken {"x": 1}; call table {"n": 3}; call upper {"text": "a"};'
                             ' call nowhere {}', tools=[broken, table, upper], before_call=before)
    text = chain.text()
    outputs = {r.name: r.output for r in chain.tool_results}
    assert outputs == {"broken": "Error: no such row", "table": '{"rows": 3, "cols": [1, 2]}',
                       "upper": "Cancelled: the user said no",
                       "nowhere": "Error: there is no tool called 'nowhere'"}
    assert "table=" in text and all(r.exception is None for r in chain.tool_results
                                    if r.name == "table")


def test_after_call_sees_every_result_and_toolboxes_prepare_once():
    class Counter(Toolbox):
        def __init__(self):
            self.prepared = 0
            self.count = 0

        def prepare(self):
            self.prepared += 1

        def bump(self, by: int = 1) -> int:
            self.count += by
            return self.count

    box, seen = Counter(), []
    chain = Scripted().chain('call Counter_bump {"by": 2}; call Counter_bump {}', tools=[box],
                             after_call=lambda tool, call, result: seen.append(result.output))
    assert chain.text() == "results: Counter_bump=2, Counter_bump=3"
    assert seen == ["2", "3"] and box.prepared == 1


def test_the_chain_stops_at_its_limit_and_says_so():
    class Greedy(Model):
        model_id = "greedy"
        supports_tools = True

        def execute(self, prompt, stream, response, conversation):
            response.add_tool_call(ToolCall(name="upper", arguments={"text": "again"}))
            yield "."

    chain = Greedy().chain("go", tools=[upper], chain_limit=3)
    assert chain.text() == "...."
    assert len(chain.tool_results) == 3 and "chain_limit=3" in chain.stopped


def test_async_tools_run_at_once_in_an_async_chain():
    both = threading.Barrier(2, timeout=10)  # passes only if the two calls overlap

    async def left() -> str:
        await asyncio.to_thread(both.wait)
        return "L"

    def right() -> str:  # a sync tool: a worker thread, so it does not block the loop
        both.wait()
        return "R"

    chain = AsyncScripted().chain("call left {}; call right {}", tools=[left, right])
    assert runner.run(chain.text(), timeout=30) == "results: left=L, right=R"


def test_async_hooks_and_async_tools_in_a_sync_chain():
    async def slow_upper(text: str) -> str:
        await asyncio.sleep(0)
        return text.upper()

    assert Scripted().chain('call slow_upper {"text": "x"}', tools=[slow_upper]).text() == \
        "results: slow_upper=X"

    async def async_before(tool, call):
        return None

    with pytest.raises(TypeError, match="async before_call"):
        Scripted().chain('call upper {"text": "x"}', tools=[upper],
                         before_call=async_before).text()


def test_response_execute_tool_calls_and_reply():
    response = Scripted().prompt('call upper {"text": "reply"}', tools=[upper])
    [call] = response.tool_calls()
    [result] = response.execute_tool_calls()
    assert result.output == "REPLY" and result.tool_call_id == call.tool_call_id
    assert response.reply().text() == "results: upper=REPLY"


def test_a_tool_receives_its_call_when_it_asks_for_it():
    def keyed(name: str, llm_tool_call: ToolCall) -> str:
        return f"{name}@{llm_tool_call.tool_call_id}"

    assert Tool.function(keyed).input_schema["required"] == ["name"]
    chain = Scripted().chain('call keyed {"name": "n"}', tools=[keyed])
    assert chain.text() == "results: keyed=n@call-0"


def test_streaming_a_chain_yields_every_round_and_conversations_carry_their_tools():
    model = Scripted()
    chunks = list(model.chain('call upper {"text": "s"}', tools=[upper]))
    assert "".join(chunks) == "results: upper=S"
    conversation = model.conversation(tools=[upper])
    assert conversation.chain('call upper {"text": "c"}').text() == "results: upper=C"
    assert len(conversation.responses) == 2
