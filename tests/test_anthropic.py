"""The Anthropic plugin against a real HTTP server on loopback (tests/support/fake_llm_server)."""

from __future__ import annotations

import asyncio
import json

import pytest

import llm_notebook
from llm_notebook import Attachment, ModelError, NeedsKeyException, OptionsError, Usage
from tests.support.fake_llm_server import (anthropic_events, anthropic_message, anthropic_usage,
                                           error_reply, json_reply, sse, stream_reply)

KEY = "sk-ant-test-SECRET123"
WORDS = ["Claude ", "says ", "hi."]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4b80000000049454e44ae426082")


def claude():
    return llm_notebook.get_model("claude-sonnet-4-5")


def test_stream_text_and_usage_with_cache_details(llm_server):
    usage = anthropic_usage(input_tokens=30, output_tokens=1, cache_creation=12, cache_read=100)
    llm_server.queue(stream_reply(sse(anthropic_events(WORDS, usage=usage, final_output=9),
                                      crlf=True, split=True)))
    response = claude().prompt("Hello", key=KEY)
    assert list(response) == WORDS
    assert response.usage() == Usage(input=30, output=9, details={
        "cache_creation_input_tokens": 12, "cache_read_input_tokens": 100})
    assert response.json()["stop_reason"] == "end_turn"


def test_request_headers_body_and_default_max_tokens(llm_server):
    claude().prompt("Hello", system="Be brief", key=KEY, temperature=0.3, top_k=5,
                    stop_sequences=["END"]).text()
    request = llm_server.requests[-1]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.body == {"model": "claude-sonnet-4-5", "max_tokens": 4096, "stream": True,
                            "system": "Be brief", "temperature": 0.3, "top_k": 5,
                            "stop_sequences": ["END"],
                            "messages": [{"role": "user", "content": "Hello"}]}


def test_options_are_checked_before_any_request(llm_server):
    with pytest.raises(OptionsError, match="temperature"):
        claude().prompt("Hello", key=KEY, temperature=1.5)
    assert llm_server.requests == []


def test_missing_key_says_how_to_set_one(llm_server):
    with pytest.raises(NeedsKeyException, match="set_key\\('anthropic'.*ANTHROPIC_API_KEY"):
        claude().prompt("Hello")


def test_images_and_pdfs_become_source_blocks(llm_server):
    attachments = [Attachment(content=PNG), Attachment(url="https://example.com/cat.jpg"),
                   Attachment(type="application/pdf", content=b"%PDF-1.4 tiny")]
    claude().prompt("Describe", attachments=attachments, key=KEY).text()
    blocks = llm_server.last_body()["messages"][-1]["content"]
    assert blocks[0]["type"] == "image"
    assert blocks[0]["source"]["media_type"] == "image/png"
    assert blocks[0]["source"]["data"].startswith("iVBORw0KGgo")
    assert blocks[1] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    assert blocks[2]["type"] == "document"
    assert blocks[2]["source"]["media_type"] == "application/pdf"
    assert blocks[3] == {"type": "text", "text": "Describe"}


def test_conversation_keeps_history_and_system_prompt(llm_server):
    conversation = claude().conversation()
    conversation.prompt("First", system="You are terse", key=KEY).text()
    conversation.prompt("Second", key=KEY).text()
    body = llm_server.last_body()
    assert body["system"] == "You are terse"
    assert body["messages"] == [{"role": "user", "content": "First"},
                                {"role": "assistant", "content": "Hello from the fake server."},
                                {"role": "user", "content": "Second"}]


def test_non_streaming_message(llm_server):
    llm_server.queue(json_reply(anthropic_message("All at once.", usage=anthropic_usage(7, 3))))
    response = claude().prompt("Hello", key=KEY, stream=False)
    assert response.text() == "All at once."
    assert response.usage() == Usage(input=7, output=3)
    assert llm_server.last_body()["stream"] is False


def test_async_streaming_and_not(llm_server):
    async def main():
        model = llm_notebook.get_async_model("claude-sonnet-4-5")
        llm_server.queue(stream_reply(sse(anthropic_events(WORDS))))
        chunks = [chunk async for chunk in model.prompt("Hello", key=KEY)]
        whole = await model.prompt("Hello", key=KEY, stream=False)
        return chunks, await whole.text()

    assert asyncio.run(main()) == (WORDS, "Hello from the fake server.")


def test_overloaded_529_is_retried(llm_server):
    llm_server.queue(error_reply(529, "Overloaded", kind="anthropic", headers={"Retry-After": "0"}))
    assert claude().prompt("Hello", key=KEY).text() == "Hello from the fake server."
    assert len(llm_server.requests) == 2


def test_error_event_mid_stream_keeps_the_partial_text(llm_server):
    events = anthropic_events(WORDS, stop=False)[:4]  # message_start .. first delta
    events.append(("error", {"type": "error", "error": {"type": "overloaded_error",
                                                        "message": "Overloaded"}}))
    llm_server.queue(stream_reply(sse(events)))
    response = claude().prompt("Hello", key=KEY)
    with pytest.raises(ModelError, match="error mid-answer: Overloaded"):
        response.text()
    assert response.text() == "Claude "
    assert len(llm_server.requests) == 1


def overloaded_before_any_text():
    """A stream that starts, then reports overload before its first text (as the API may)."""
    events = anthropic_events(WORDS)[:2]  # message_start, content_block_start
    events.append(("error", {"type": "error", "error": {"type": "overloaded_error",
                                                        "message": "Overloaded"}}))
    return stream_reply(sse(events))


@pytest.fixture
def quick_backoff(monkeypatch):
    """Backoff without Retry-After starts at 1 s; the tests check the retries, not the wait."""
    monkeypatch.setattr("llm_notebook.http.FIRST_BACKOFF", 0.001)


def test_overloaded_event_before_any_text_is_retried(llm_server, quick_backoff):
    llm_server.queue(overloaded_before_any_text(), stream_reply(sse(anthropic_events(WORDS))))
    response = claude().prompt("Hello", key=KEY)
    assert list(response) == WORDS
    assert response.status == "done"
    assert len(llm_server.requests) == 2
    assert llm_server.requests[0].body == llm_server.requests[1].body


def test_async_overloaded_event_before_any_text_is_retried(llm_server, quick_backoff):
    llm_server.queue(overloaded_before_any_text())

    async def main():
        model = llm_notebook.get_async_model("claude-sonnet-4-5")
        return [chunk async for chunk in model.prompt("Hello", key=KEY)]

    assert "".join(asyncio.run(main())) == "Hello from the fake server."
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("first", ["status", "event"])
def test_retries_of_error_events_are_bounded_together_with_statuses(llm_server, quick_backoff,
                                                                    monkeypatch, first):
    monkeypatch.setattr(llm_notebook.settings, "max_retries", 1)
    turned_away = (error_reply(529, "Overloaded", kind="anthropic", headers={"Retry-After": "0"})
                   if first == "status" else overloaded_before_any_text())
    llm_server.queue(turned_away, overloaded_before_any_text(),
                     stream_reply(sse(anthropic_events(WORDS))))
    response = claude().prompt("Hello", key=KEY)
    with pytest.raises(ModelError, match=r"error instead of an answer \(after 1 retry\): Overloaded"):
        response.text()
    assert response.text() == ""
    assert len(llm_server.requests) == 2


def test_invalid_request_event_is_not_retried(llm_server, quick_backoff):
    events = [("error", {"type": "error", "error": {"type": "invalid_request_error",
                                                    "message": "messages: empty"}})]
    llm_server.queue(stream_reply(sse(events)))
    with pytest.raises(ModelError, match="error instead of an answer: messages: empty"):
        claude().prompt("Hello", key=KEY).text()
    assert len(llm_server.requests) == 1


@pytest.mark.parametrize("data", ['{"type": "content_block_delta", "delta": {"te', '"text"', "[1]"])
def test_malformed_or_non_object_data_mid_stream_keeps_the_partial_text(llm_server, data):
    events = anthropic_events(WORDS)[:4] + [("content_block_delta", data)]
    llm_server.queue(stream_reply(sse(events)))
    response = claude().prompt("Hello", key=KEY)
    with pytest.raises(ModelError, match="malformed data: .* where a JSON object belongs"):
        response.text()
    assert response.text() == "Claude "


def test_stream_without_message_stop_is_incomplete(llm_server):
    llm_server.queue(stream_reply(sse(anthropic_events(WORDS, stop=False))))
    response = claude().prompt("Hello", key=KEY)
    with pytest.raises(ModelError, match="ended before the answer was complete"):
        response.text()
    assert response.text() == "Claude says hi."


def test_rejected_key_never_appears(llm_server):
    llm_server.queue(error_reply(401, f"invalid x-api-key {KEY}", kind="anthropic"))
    response = claude().prompt("Hello", key=KEY)
    with pytest.raises(ModelError) as caught:
        response.text()
    message = str(caught.value)
    assert "API key was rejected" in message and "invalid x-api-key" in message
    assert "set_key('anthropic'" in message
    for text in (message, repr(response), response.error, json.dumps(llm_notebook.logs(None))):
        assert KEY not in text


def test_unknown_model_is_named(llm_server):
    llm_server.queue(error_reply(404, "model: claude-sonnet-4-5", kind="anthropic"))
    with pytest.raises(ModelError, match="Model 'claude-sonnet-4-5' was not found"):
        claude().prompt("Hello", key=KEY).text()


# -- the structured contract: thinking with signatures, tool use, schemas ---------------------------
def block_events(*blocks, usage=None, model="claude-sonnet-4-5-20250929"):
    """A streamed message of content blocks, each given as (start block, [deltas])."""
    events = [("message_start", {"type": "message_start", "message": {
        "id": "msg_2", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "usage": usage or anthropic_usage()}})]
    for index, (start, deltas) in enumerate(blocks):
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": start}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                            "delta": d}) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events += [("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                  "usage": {"output_tokens": 12}}),
               ("message_stop", {"type": "message_stop"})]
    return stream_reply(sse(events))


THINKING = ({"type": "thinking", "thinking": "", "signature": ""},
            [{"type": "thinking_delta", "thinking": "Two and "},
             {"type": "thinking_delta", "thinking": "two."},
             {"type": "signature_delta", "signature": "sig-123"}])
TOOL_USE = ({"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}},
            [{"type": "input_json_delta", "partial_json": '{"q": '},
             {"type": "input_json_delta", "partial_json": '"cats"}'}])


def tool():
    from llm_notebook import Tool

    return Tool(name="lookup", description="Look a thing up",
                input_schema={"type": "object", "properties": {"q": {"type": "string"}}},
                implementation=lambda q: q)


def test_thinking_streams_as_reasoning_with_its_signature_and_goes_back_next_turn(llm_server):
    from llm_notebook.parts import ReasoningPart, TextPart

    llm_server.queue(block_events(THINKING, ({"type": "text", "text": ""},
                                             [{"type": "text_delta", "text": "Four."}])))
    conversation = claude().conversation()
    first = conversation.prompt("2+2?", key=KEY, thinking=True, thinking_budget=2000)
    assert list(first) == ["Four."]
    assert first.parts_so_far() == [
        ReasoningPart(text="Two and two.", provider_metadata={"anthropic": {"signature": "sig-123"}}),
        TextPart(text="Four.")]
    assert first.resolved_model == "claude-sonnet-4-5-20250929"
    assert llm_server.requests[0].body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    conversation.prompt("And 3+3?", key=KEY).text()
    assert llm_server.last_body()["messages"][1] == {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Two and two.", "signature": "sig-123"},
        {"type": "text", "text": "Four."}]}


def test_tool_use_streams_its_input_and_the_result_goes_back_as_a_user_tool_result(llm_server):
    from llm_notebook import ToolResult

    llm_server.queue(block_events(({"type": "text", "text": ""},
                                   [{"type": "text_delta", "text": "Looking."}]), TOOL_USE))
    conversation = claude().conversation()
    first = conversation.prompt("Cats?", tools=[tool()], key=KEY)
    assert first.text() == "Looking."
    [call] = first.tool_calls()
    assert (call.tool_call_id, call.name, call.arguments) == ("toolu_1", "lookup", {"q": "cats"})
    assert llm_server.requests[0].body["tools"] == [{
        "name": "lookup", "description": "Look a thing up",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    conversation.prompt("Thanks", tools=[tool()], key=KEY, tool_results=[
        ToolResult(name="lookup", output="42 cats", tool_call_id="toolu_1")]).text()
    assert llm_server.last_body()["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "Looking."},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "cats"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42 cats"},
            {"type": "text", "text": "Thanks"}]}]


def test_a_schema_is_a_forced_tool_whose_input_is_the_answer(llm_server):
    answer = ({"type": "tool_use", "id": "toolu_2", "name": "json_answer", "input": {}},
              [{"type": "input_json_delta", "partial_json": '{"name": "Ada", '},
               {"type": "input_json_delta", "partial_json": '"age": 36}'}])
    llm_server.queue(block_events(answer))
    response = claude().prompt("Invent a person", schema="name, age int", key=KEY)
    assert json.loads(response.text()) == {"name": "Ada", "age": 36}
    assert response.tool_calls() == []
    body = llm_server.last_body()
    assert body["tool_choice"] == {"type": "tool", "name": "json_answer"}
    assert body["tools"][0]["input_schema"]["required"] == ["name", "age"]


def test_redacted_thinking_is_kept_and_sent_back_unread(llm_server):
    llm_server.queue(block_events(({"type": "redacted_thinking", "data": "opaque=="}, []),
                                  ({"type": "text", "text": ""},
                                   [{"type": "text_delta", "text": "Done."}])))
    conversation = claude().conversation()
    first = conversation.prompt("Hard question", key=KEY)
    assert first.text() == "Done."
    assert first.parts_so_far()[0].redacted
    conversation.prompt("More", key=KEY).text()
    assert llm_server.last_body()["messages"][1]["content"][0] == {"type": "redacted_thinking",
                                                                   "data": "opaque=="}


def test_a_whole_message_of_thinking_text_and_tool_use(llm_server):
    body = anthropic_message("", usage=anthropic_usage(8, 20))
    body["content"] = [{"type": "thinking", "thinking": "Hmm.", "signature": "sig-9"},
                       {"type": "text", "text": "Let me check."},
                       {"type": "tool_use", "id": "toolu_3", "name": "lookup", "input": {"q": "x"}}]
    llm_server.queue(json_reply(body))
    response = claude().prompt("x?", tools=[tool()], key=KEY, stream=False)
    assert response.text() == "Let me check."
    parts = [p.to_dict() for p in response.parts_so_far()]
    assert parts[0] == {"type": "reasoning", "text": "Hmm.",
                        "provider_metadata": {"anthropic": {"signature": "sig-9"}}}
    assert parts[2]["arguments"] == {"q": "x"}
    assert [c.tool_call_id for c in response.tool_calls()] == ["toolu_3"]
    assert response.resolved_model == "claude-test"


def test_preview_counts_tokens_with_anthropics_endpoint_and_sends_no_message(llm_server):
    from tests.support.fake_llm_server import json_reply

    llm_server.queue(json_reply({"input_tokens": 1234}))
    before = len(llm_server.requests)
    preview = llm_notebook.preview(claude().prompt("How many tokens?", system="Be brief", key=KEY))
    [request] = llm_server.requests[before:]
    assert request.path == "/v1/messages/count_tokens"
    assert request.body == {"model": "claude-sonnet-4-5", "system": "Be brief",
                            "messages": [{"role": "user", "content": "How many tokens?"}]}
    assert request.headers["x-api-key"] == KEY
    assert "1,234" in str(preview) and "estimate" not in str(preview).lower()
