"""The chat with tools: each message runs as a chain whose calls show as blocks while they run;
with approve=True the chat asks (Allow, Deny, Allow all) through its own front-end messages; Stop
ends the chain and keeps what was done; the footer counts the whole chain.

echo makes the calls (a JSON block in the message); requests run on the real runner loop and a
front-end's message reaches the widget through its comm, as one from the browser does.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

import llm_notebook
from llm_notebook.usage import session_usage

ran: list[str] = []
release = threading.Event()


def lookup(q: str) -> str:
    """Look q up."""
    ran.append(q)
    return f"found {q}"


def stuck(q: str) -> str:
    """Waits until released."""
    release.wait(30)
    return "released"


@pytest.fixture(autouse=True)
def fresh():
    ran.clear()
    release.clear()
    session_usage.reset()
    yield
    release.set()
    session_usage.reset()


def calls(*queries: str, name: str = "lookup") -> str:
    return "go " + json.dumps({"tool_calls": [{"name": name, "arguments": {"q": q}}
                                              for q in queries]})


def from_front_end(widget, content: dict) -> None:
    widget.comm.handle_msg({"content": {"data": {"method": "custom", "content": content}},
                            "buffers": []})


def poll(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def open_question(chat, number: int) -> dict:
    poll(lambda: len(chat.widget.approvals) > number
         and chat.widget.approvals[number]["decision"] is None)
    return chat.widget.approvals[number]


def test_a_message_with_tools_runs_the_calls_and_shows_their_blocks_while_they_run():
    chat = llm_notebook.chat("echo", tools=[stuck])
    turn = chat.send(calls("q", name="stuck"))
    poll(lambda: "running…" in chat.widget.live.get("html", ""))
    assert "<details>" in chat.widget.live["html"] and chat.busy
    release.set()
    assert chat.wait(10) and turn.status == "done"
    answer = chat.transcript()[-1]
    assert answer[0] == "answer" and "done in" in answer[1] and "> released" in answer[1]
    rounds = turn.chain_answer.chain.responses_so_far()
    assert turn.usage.input == sum(r.usage().input for r in rounds) and len(rounds) == 2
    assert "Usage: 1 response" in chat.widget.footer
    assert "Tool call" in chat.widget.saved_text["text/markdown"]


def test_allow_deny_and_allow_all_from_the_chat():
    chat = llm_notebook.chat("echo", tools=[lookup], approve=True)
    turn = chat.send(calls("a", "b"))
    assert open_question(chat, 0)["question"] == "Allow lookup(q='a')?"
    from_front_end(chat.widget, {"event": "decide", "id": "0", "decision": "allow"})
    open_question(chat, 1)
    from_front_end(chat.widget, {"event": "decide", "id": "1", "decision": "deny"})
    assert chat.wait(10) and ran == ["a"]
    assert [r.output for r in turn.chain_answer.chain.tool_results] == [
        "found a", "Cancelled: the user denied this call"]
    assert chat.widget.approvals == []  # the questions go with the answer

    turn = chat.send(calls("c", "d", "e"))
    open_question(chat, 0)
    from_front_end(chat.widget, {"event": "decide", "id": "0", "decision": "allow all"})
    assert chat.wait(10) and ran == ["a", "c", "d", "e"] and turn.status == "done"
    states = [b.state for b in turn.chain_answer.calls.blocks()]
    assert states == ["done", "done", "done"]


def test_stop_while_a_question_is_open_denies_it_and_keeps_what_was_done():
    chat = llm_notebook.chat("echo", tools=[lookup], approve=True)
    turn = chat.send(calls("a"))
    open_question(chat, 0)
    from_front_end(chat.widget, {"event": "stop"})
    assert chat.wait(10) and ran == []
    assert turn.status == "interrupted"
    assert [b.state for b in turn.chain_answer.calls.blocks()] == ["denied"]
    assert "**Prompt**" in chat.transcript()[-1][1]
    assert not chat.busy and chat.widget.live == {}


def test_a_chat_refuses_what_is_not_a_tool_and_a_model_that_calls_none():
    with pytest.raises(TypeError, match="Not a tool: 42"):
        llm_notebook.chat("echo", tools=[42])
    chat = llm_notebook.chat("markov", tools=[lookup])
    turn = chat.send("hi")
    assert turn.status == "error" and "markov does not call tools" in turn.error
