"""The OpenAI-compatible plugin against a real HTTP server on loopback (tests/support/fake_llm_server)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

import llm_notebook
from llm_notebook import Attachment, ModelError, OptionsError, AttachmentError, Usage
from llm_notebook.log import log_path
from tests.support.fake_llm_server import (Reply, error_reply, json_reply, openai_chunk,
                                           openai_completion, openai_events, openai_usage, sse,
                                           stream_reply)

KEY = "sk-test-SECRET123"
WORDS = ["The ", "answer ", "is ", "42."]


def gpt():
    return llm_notebook.get_model("gpt-4o-mini")


def assert_no_key(*texts):
    for text in texts:
        assert KEY not in text


def assert_key_not_logged():
    assert KEY not in json.dumps(llm_notebook.logs(None))
    assert KEY.encode() not in log_path().read_bytes()


# -- streaming and the awkward parts of the wire format ---------------------------------------------
@pytest.mark.parametrize("crlf", [False, True])
def test_stream_survives_keepalives_crlf_split_writes_and_usage_only_chunk(llm_server, crlf):
    usage = openai_usage(prompt_tokens=12, completion_tokens=4, cached=8, reasoning=2)
    llm_server.queue(stream_reply(sse(openai_events(WORDS, usage=usage), crlf=crlf, keepalive=True,
                                      split=True)))
    response = gpt().prompt("What is the answer?", key=KEY)
    assert list(response) == WORDS
    assert response.text() == "The answer is 42."
    assert response.usage() == Usage(input=12, output=4, details={
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 2}})
    assert response.status == "done"
    assert response.json()["finish_reason"] == "stop"


def test_request_carries_messages_options_key_and_usage_request(llm_server):
    gpt().prompt("Hi", system="Be brief", key=KEY, temperature=0.2, max_tokens=50, top_p=0.9,
                 stop=["\n\n"], seed=7, frequency_penalty=0.5, presence_penalty=-0.5,
                 json_object=True, extra_body={"top_k": 40}).text()
    request = llm_server.requests[-1]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body == {
        "model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
        "temperature": 0.2, "max_tokens": 50, "top_p": 0.9, "stop": ["\n\n"], "seed": 7,
        "frequency_penalty": 0.5, "presence_penalty": -0.5,
        "response_format": {"type": "json_object"}, "top_k": 40}


def test_unset_options_are_not_sent(llm_server):
    gpt().prompt("Hi", key=KEY).text()
    assert set(llm_server.last_body()) == {"model", "messages", "stream", "stream_options"}


@pytest.mark.parametrize("options, named", [
    ({"temperature": 5}, "temperature"), ({"max_tokens": 0}, "max_tokens"),
    ({"top_p": "lots"}, "top_p"), ({"temprature": 1}, "temprature")])
def test_invalid_options_fail_before_any_request(llm_server, options, named):
    with pytest.raises(OptionsError, match=named):
        gpt().prompt("Hi", key=KEY, **options)
    assert llm_server.requests == []


def test_non_streaming_answer(llm_server):
    llm_server.queue(json_reply(openai_completion("Whole answer.", usage=openai_usage(3, 2))))
    response = gpt().prompt("Hi", key=KEY, stream=False)
    assert response.text() == "Whole answer."
    assert response.usage() == Usage(input=3, output=2)
    assert response.json()["object"] == "chat.completion"
    assert llm_server.last_body()["stream"] is False
    assert "stream_options" not in llm_server.last_body()


def test_stream_without_usage_leaves_usage_unset(llm_server):
    llm_server.queue(stream_reply(sse(openai_events(WORDS, usage=None))))
    response = gpt().prompt("Hi", key=KEY)
    assert response.text() == "The answer is 42."
    assert response.usage() == Usage()


# -- attachments and conversations ------------------------------------------------------------------
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4b80000000049454e44ae426082")


def test_attachments_become_content_parts(llm_server):
    attachments = [Attachment(url="https://example.com/cat.png"), Attachment(content=PNG),
                   Attachment(type="application/pdf", content=b"%PDF-1.4 tiny")]
    gpt().prompt("Compare", attachments=attachments, key=KEY).text()
    parts = llm_server.last_body()["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "Compare"}
    assert parts[1] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    assert parts[2]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")
    assert parts[3]["type"] == "file"
    assert parts[3]["file"]["file_data"].startswith("data:application/pdf;base64,")


def test_audio_attachments_are_input_audio(llm_server):
    model = llm_notebook.get_model("gpt-4o-audio-preview")
    model.prompt(attachments=[Attachment(type="audio/wav", content=b"RIFFxxxxWAVE"),
                              Attachment(type="audio/mpeg", content=b"ID3xxxx")], key=KEY).text()
    parts = llm_server.last_body()["messages"][-1]["content"]
    assert [p["input_audio"]["format"] for p in parts] == ["wav", "mp3"]
    assert parts[0]["input_audio"]["data"] == "UklGRnh4eHhXQVZF"


def test_unaccepted_attachment_fails_before_any_request(llm_server):
    with pytest.raises(AttachmentError, match="audio/wav.*image/png"):
        gpt().prompt("Listen", attachments=[Attachment(type="audio/wav", content=b"RIFF")], key=KEY)
    assert llm_server.requests == []


def test_conversation_sends_earlier_turns_with_their_attachments(llm_server):
    conversation = gpt().conversation()
    conversation.prompt("Look", attachments=[Attachment(content=PNG)], system="Be kind",
                        key=KEY).text()
    llm_server.queue(stream_reply(sse(openai_events(["Fine."], usage=None))))
    conversation.prompt("And now?", key=KEY).text()
    messages = llm_server.last_body()["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == "Be kind"
    assert messages[1]["content"][0] == {"type": "text", "text": "Look"}
    assert messages[1]["content"][1]["type"] == "image_url"
    assert messages[2]["content"] == "Hello from the fake server."
    assert messages[3]["content"] == "And now?"


# -- async ----------------------------------------------------------------------------------------
def test_async_streaming_non_streaming_and_conversation(llm_server):
    async def main():
        model = llm_notebook.get_async_model("gpt-4o-mini")
        llm_server.queue(stream_reply(sse(openai_events(WORDS, usage=openai_usage(5, 4)),
                                          split=True)))
        chunks = [chunk async for chunk in model.prompt("Hi", key=KEY)]
        whole = await model.prompt("Hi", key=KEY, stream=False)
        conversation = model.conversation()
        await conversation.prompt("One", key=KEY).text()
        await conversation.prompt("Two", key=KEY).text()
        return chunks, await whole.text(), await whole.usage()

    chunks, whole, usage = asyncio.run(main())
    assert chunks == WORDS
    assert whole == "Hello from the fake server."
    assert usage == Usage(input=11, output=5)
    assert [m["content"] for m in llm_server.last_body()["messages"]] == [
        "One", "Hello from the fake server.", "Two"]


def test_async_clients_are_per_event_loop_and_reused_within_one(llm_server):
    async def two_prompts():
        model = llm_notebook.get_async_model("gpt-4o-mini")
        await model.prompt("a", key=KEY).text()
        await model.prompt("b", key=KEY).text()

    asyncio.run(two_prompts())
    asyncio.run(two_prompts())  # a new loop: the first loop's connections must not be used
    connections = [r.connection for r in llm_server.requests]
    assert connections[0] == connections[1]
    assert connections[2] == connections[3]
    assert connections[1] != connections[2]


def test_async_clients_close_their_connections_when_the_loop_ends(llm_server):
    async def one_prompt():
        await llm_notebook.get_async_model("gpt-4o-mini").prompt("a", key=KEY).text()

    asyncio.run(one_prompt())
    assert llm_server.wait_closed(llm_server.requests[0].connection)


def test_sync_prompts_reuse_one_connection(llm_server):
    for _ in range(3):
        gpt().prompt("Hi", key=KEY).text()
    assert len({r.connection for r in llm_server.requests}) == 1


# -- errors ---------------------------------------------------------------------------------------
def test_rejected_key_names_the_fix_and_never_the_key(llm_server):
    llm_server.queue(error_reply(401, f"Incorrect API key provided: {KEY}"))
    response = gpt().prompt("Hi", key=KEY)
    with pytest.raises(ModelError) as caught:
        response.text()
    message = str(caught.value)
    assert "API key was rejected" in message and "Incorrect API key provided" in message
    assert "set_key('openai'" in message and "OPENAI_API_KEY" in message
    assert_no_key(message, repr(response), repr(gpt()), repr(caught.value), response.error)
    assert_key_not_logged()


def test_missing_model_is_named(llm_server):
    llm_server.queue(error_reply(404, "The model `gpt-4o-mini` does not exist"))
    with pytest.raises(ModelError, match=r"Model 'gpt-4o-mini' was not found.*does not exist"):
        gpt().prompt("Hi", key=KEY).text()


def test_rate_limit_is_retried_honouring_retry_after(llm_server):
    llm_server.queue(error_reply(429, "slow down", headers={"retry-after-ms": "300"}),
                     error_reply(503, "busy", headers={"Retry-After": "0"}))
    start = time.monotonic()
    assert gpt().prompt("Hi", key=KEY).text() == "Hello from the fake server."
    assert time.monotonic() - start >= 0.3
    assert len(llm_server.requests) == 3


def test_retry_after_is_read_in_each_documented_form():
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    from llm_notebook.http import retry_after

    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "7"}) == 7.0
    assert 25 < retry_after({"retry-after": later}) <= 30
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_retries_are_bounded(llm_server, monkeypatch):
    monkeypatch.setattr(llm_notebook.settings, "max_retries", 2)
    llm_server.queue(*[error_reply(429, "Rate limit reached", headers={"Retry-After": "0"})] * 3)
    with pytest.raises(ModelError, match=r"Rate limited \(after 2 retries\).*Rate limit reached"):
        gpt().prompt("Hi", key=KEY).text()
    assert len(llm_server.requests) == 3


def test_a_multi_line_server_message_becomes_one_line(llm_server):
    llm_server.queue(error_reply(400, "1 validation error:\n  top_k\n    Input should be > 0"))
    with pytest.raises(ModelError) as caught:
        gpt().prompt("Hi", key=KEY).text()
    assert "\n" not in str(caught.value)
    assert "1 validation error: top_k Input should be > 0" in str(caught.value)


def test_html_error_page_becomes_a_readable_message(llm_server, monkeypatch):
    monkeypatch.setattr(llm_notebook.settings, "max_retries", 0)
    llm_server.queue(error_reply(502, "Bad Gateway", kind="html"))
    with pytest.raises(ModelError) as caught:
        gpt().prompt("Hi", key=KEY).text()
    assert "HTTP 502" in str(caught.value) and "502 Bad Gateway" in str(caught.value)
    assert "<" not in str(caught.value)


def test_html_instead_of_a_stream_is_an_error(llm_server):
    llm_server.queue(Reply(pieces=[b"<html><title>Login required</title></html>"],
                           content_type="text/html", chunked=False))
    with pytest.raises(ModelError, match="text/html instead of an event stream"):
        gpt().prompt("Hi", key=KEY).text()


def test_broken_stream_keeps_the_partial_text_and_is_not_retried(llm_server):
    llm_server.queue(stream_reply(sse(openai_events(WORDS, usage=None))[:3], cut=True))
    response = gpt().prompt("Hi", key=KEY)
    seen = []
    with pytest.raises(ModelError, match="broke off.*partial answer is kept"):
        for chunk in response:
            seen.append(chunk)
    assert seen == ["The ", "answer "]
    assert response.text() == "The answer "
    assert response.status == "error"
    assert len(llm_server.requests) == 1


def test_stopping_early_closes_the_stream_and_the_endpoint_still_works(llm_server):
    pieces = sse(openai_events(WORDS * 5, usage=None))
    llm_server.queue(stream_reply(pieces, pause=0.2))
    response = gpt().prompt("Hi", key=KEY)
    for chunk in response:
        break
    del chunk
    assert response.status == "interrupted"
    assert response.text() == "The "
    # The connection was dropped, not drained: the server's writes failed before the end.
    stopped = llm_server.requests[0]
    assert stopped.finished.wait(timeout=30)
    assert stopped.hung_up and stopped.pieces_sent < len(pieces)
    assert gpt().prompt("Again", key=KEY).text() == "Hello from the fake server."


def test_stream_ending_without_done_or_finish_is_an_error(llm_server):
    events = openai_events(WORDS, usage=None, done=False)[:-1]  # no finish chunk, no [DONE]
    llm_server.queue(stream_reply(sse(events)))
    response = gpt().prompt("Hi", key=KEY)
    with pytest.raises(ModelError, match="ended before the answer was complete"):
        response.text()
    assert response.text() == "The answer is 42."


def test_malformed_data_mid_stream_keeps_the_partial_text(llm_server):
    events = [(None, openai_chunk("Partial ")), (None, '{"choices": [{"delta": {"cont')]
    llm_server.queue(stream_reply(sse(events)))
    response = gpt().prompt("Hi", key=KEY)
    with pytest.raises(ModelError, match="malformed data"):
        response.text()
    assert response.text() == "Partial "


def test_error_event_mid_stream(llm_server):
    events = [(None, openai_chunk("Partial ")),
              (None, {"error": {"message": "The server had an error while processing"}})]
    llm_server.queue(stream_reply(sse(events)))
    response = gpt().prompt("Hi", key=KEY)
    with pytest.raises(ModelError, match="error mid-answer: The server had an error"):
        response.text()
    assert response.text() == "Partial "
    assert len(llm_server.requests) == 1  # retrying would repeat the text already shown


def test_server_error_event_before_any_text_is_retried(llm_server, monkeypatch):
    monkeypatch.setattr("llm_notebook.http.FIRST_BACKOFF", 0.001)
    failing = [(None, openai_events(WORDS)[0][1]),  # the role chunk carries no text
               (None, {"error": {"message": "The server had an error", "type": "server_error"}})]
    llm_server.queue(stream_reply(sse(failing)), stream_reply(sse(openai_events(WORDS))))
    assert gpt().prompt("Hi", key=KEY).text() == "The answer is 42."
    assert len(llm_server.requests) == 2


def test_read_timeout_is_a_setting(llm_server, monkeypatch):
    monkeypatch.setattr(llm_notebook.settings, "read_timeout", 0.3)
    llm_server.queue(stream_reply(sse(openai_events(WORDS, usage=None)), pause=1.5))
    response = gpt().prompt("Hi", key=KEY)
    with pytest.raises(ModelError, match=r"sent nothing for 0.3 s.*settings.read_timeout"):
        response.text()
    assert response.text() == ""


def test_async_errors_match_sync_ones(llm_server):
    llm_server.queue(error_reply(401, f"bad key {KEY}"))

    async def main():
        return await llm_notebook.get_async_model("gpt-4o-mini").prompt("Hi", key=KEY).text()

    with pytest.raises(ModelError, match="API key was rejected") as caught:
        asyncio.run(main())
    assert_no_key(str(caught.value))


# -- endpoints --------------------------------------------------------------------------------------
def test_add_openai_endpoint_lists_the_servers_models(llm_server):
    ids = llm_notebook.add_openai_endpoint(llm_server.openai_url, api_key=KEY,
                                           aliases={"fake-small": "small"})
    assert ids == ["fake-small", "fake-vision"]
    assert llm_server.requests[0].path == "/v1/models"
    assert llm_server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    model = llm_notebook.get_model("small")
    assert model.prompt("Hi").text() == "Hello from the fake server."
    assert llm_server.last_body()["model"] == "fake-small"
    assert llm_server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert_no_key(repr(model), str(model), repr(model.prompt("x")))


def test_endpoint_with_named_models_and_vision_needs_no_network(llm_server):
    ids = llm_notebook.add_openai_endpoint("http://127.0.0.1:9/v1", models=["seen-model"],
                                           vision=True, aliases=["seer"])
    assert ids == ["seen-model"] and llm_server.requests == []
    model = llm_notebook.get_model("seer")
    assert "image/png" in model.attachment_types
    assert not model.prompt("x").prompt.options.model_dump(exclude_unset=True)


def test_endpoint_key_from_environment(llm_server, monkeypatch):
    monkeypatch.setenv("FAKE_ENDPOINT_KEY", KEY)
    llm_notebook.add_openai_endpoint(llm_server.openai_url, name="fakehost", models=["keyed"],
                                     api_key_env="FAKE_ENDPOINT_KEY")
    llm_notebook.get_model("keyed").prompt("Hi").text()
    assert llm_server.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_connection_refused_names_the_url_and_the_likely_cause():
    with pytest.raises(ModelError) as caught:
        llm_notebook.add_openai_endpoint("http://127.0.0.1:9/v1")
    assert "http://127.0.0.1:9/v1/models" in str(caught.value)
    assert "Is the server running" in str(caught.value)


def test_a_preset_name_is_enough_when_its_server_is_running(llm_server, monkeypatch):
    from llm_notebook import endpoints

    monkeypatch.setitem(endpoints.PRESETS, "ollama", llm_server.openai_url)  # its usual port
    assert llm_notebook.add_openai_endpoint("ollama") == ["fake-small", "fake-vision"]
    model = llm_notebook.get_model("fake-vision")
    assert "on ollama" in model.description
    assert model.prompt("Hi").text() == "Hello from the fake server."


def test_presets_name_the_usual_local_servers():
    from llm_notebook.endpoints import resolve_base_url

    assert resolve_base_url("ollama") == ("http://localhost:11434/v1", "ollama")
    assert resolve_base_url("llama.cpp")[0] == "http://localhost:8080/v1"
    assert resolve_base_url("LMStudio")[0] == "http://localhost:1234/v1"
    assert resolve_base_url("vllm")[0] == "http://localhost:8000/v1"
    with pytest.raises(ValueError, match="Not a base URL or a preset: 'olama'"):
        resolve_base_url("olama")


def test_endpoints_config_file_registers_models_on_load(user_dir, llm_server):
    from llm_notebook.plugins import PluginWarning, Registry

    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "openai_endpoints.json").write_text(json.dumps([
        {"base_url": llm_server.openai_url, "name": "fake", "models": ["from-file"],
         "aliases": {"from-file": "ff"}},
        {"base_url": "ollama"},
    ]))
    registry = Registry()
    with pytest.warns(PluginWarning, match="endpoint 2.*models"):
        model = registry.get_model("ff")
    assert model.model_id == "from-file"
    assert registry.get_model("gpt-4o").model_id == "gpt-4o"  # the bad entry spoilt nothing else
    assert model.prompt("Hi").text() == "Hello from the fake server."
    assert llm_server.requests[-1].path == "/v1/chat/completions"


def test_loading_the_plugins_does_not_import_httpx():
    code = ("import sys, llm_notebook; llm_notebook.get_model('gpt-4o'); "
            "llm_notebook.get_model('claude-sonnet-4-5'); print('httpx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- the structured contract: prompt.messages in, reasoning and tool-call events out ----------------
def delta(fields: dict, finish: str | None = None, model: str = "served-model") -> dict:
    return {"id": "chatcmpl-2", "object": "chat.completion.chunk", "model": model,
            "choices": [{"index": 0, "delta": fields, "finish_reason": finish}]}


def stream_of(*deltas: dict, usage: dict | None = None) -> Reply:
    events = [(None, d) for d in deltas]
    if usage is not None:
        events.append((None, openai_chunk(usage=usage, empty_choices=True, model="served-model")))
    return stream_reply(sse(events + [(None, "[DONE]")]))


def tool(name="lookup"):
    from llm_notebook import Tool

    return Tool(name=name, description="Look a thing up",
                input_schema={"type": "object", "properties": {"q": {"type": "string"}}},
                implementation=lambda q: q.upper())


def test_reasoning_content_deltas_become_a_reasoning_part_and_not_the_text(llm_server):
    from llm_notebook.parts import ReasoningPart, TextPart

    llm_server.queue(stream_of(delta({"role": "assistant", "reasoning_content": "Let me "}),
                               delta({"reasoning_content": "think."}),
                               delta({"content": "It is 4."}), delta({}, "stop"),
                               usage=openai_usage(5, 7)))
    response = gpt().prompt("2+2?", key=KEY)
    assert list(response) == ["It is 4."]
    assert response.parts_so_far() == [
        ReasoningPart(text="Let me think.",
                      provider_metadata={"openai_compat": {"field": "reasoning_content"}}),
        TextPart(text="It is 4.")]
    assert response.resolved_model == "served-model"


def test_streamed_tool_calls_are_assembled_by_index_and_added_for_the_package_to_run(llm_server):
    llm_server.queue(stream_of(
        delta({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function",
             "function": {"name": "lookup", "arguments": ""}}]}),
        delta({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "lookup", "arguments": '{"q"'}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"q": "cats"}'}}]}),
        delta({"tool_calls": [{"index": 1, "function": {"arguments": ': "dogs"}'}}]}),
        delta({}, "tool_calls")))
    response = gpt().prompt("Look up cats and dogs", tools=[tool()], key=KEY)
    assert response.text() == ""
    calls = response.tool_calls()
    assert [(c.tool_call_id, c.name, c.arguments) for c in calls] == [
        ("call_a", "lookup", {"q": "cats"}), ("call_b", "lookup", {"q": "dogs"})]
    assert [p.arguments for p in response.parts_so_far()] == [{"q": "cats"}, {"q": "dogs"}]
    body = llm_server.last_body()
    assert body["tools"] == [{"type": "function", "function": {
        "name": "lookup", "description": "Look a thing up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
    assert "tool_choice" not in body


def test_tool_results_go_back_with_the_call_and_reasoning_of_the_exchange(llm_server):
    from llm_notebook import ToolResult

    llm_server.queue(stream_of(
        delta({"role": "assistant", "reasoning": "I should look it up."}),
        delta({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                               "function": {"name": "lookup", "arguments": '{"q": "x"}'}}]}),
        delta({}, "tool_calls")))
    conversation = gpt().conversation()
    first = conversation.prompt("What is x?", system="Be exact", tools=[tool()], key=KEY)
    first.text()
    result = ToolResult(name="lookup", output="X", tool_call_id="call_1")
    conversation.prompt(tools=[tool()], tool_results=[result], tool_choice="auto",
                        key=KEY).text()
    body = llm_server.last_body()
    assert body["messages"] == [
        {"role": "system", "content": "Be exact"},
        {"role": "user", "content": "What is x?"},
        {"role": "assistant", "content": None, "reasoning": "I should look it up.",
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "lookup", "arguments": '{"q": "x"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "X"}]
    assert body["tool_choice"] == "auto"


def test_reasoning_of_earlier_questions_is_not_sent_again(llm_server):
    llm_server.queue(stream_of(delta({"reasoning_content": "hmm"}), delta({"content": "A."}),
                               delta({}, "stop")))
    conversation = gpt().conversation()
    conversation.prompt("First?", key=KEY).text()
    conversation.prompt("Second?", key=KEY).text()
    assert llm_server.last_body()["messages"][1] == {"role": "assistant", "content": "A."}


def test_a_whole_answer_with_reasoning_and_a_tool_call(llm_server):
    body = openai_completion("", usage=openai_usage(4, 9), model="served-model")
    body["choices"][0]["message"] = {"role": "assistant", "content": None,
                                     "reasoning_content": "Need the tool.", "tool_calls": [
                                         {"id": "call_9", "type": "function", "function": {
                                             "name": "lookup", "arguments": '{"q": "y"}'}}]}
    llm_server.queue(json_reply(body))
    response = gpt().prompt("y?", tools=[tool()], key=KEY, stream=False)
    assert response.text() == ""
    assert [p.to_dict()["type"] for p in response.parts_so_far()] == ["reasoning", "tool_call"]
    assert [(c.tool_call_id, c.arguments) for c in response.tool_calls()] == [("call_9", {"q": "y"})]
    assert response.resolved_model == "served-model"


def test_a_schema_is_sent_as_openais_json_schema_response_format(llm_server):
    gpt().prompt("Invent a person", schema="name, age int", key=KEY).text()
    assert llm_server.last_body()["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "output", "schema": {"type": "object", "properties": {
            "name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"]}}}


def test_a_raw_server_side_tool_spec_goes_in_the_tools_array(llm_server):
    from llm_notebook import ServerSideTool
    from llm_notebook.default_plugins.openai_models import Chat

    class Searching(Chat):
        @property
        def supported_server_side_tools(self):
            return (ServerSideTool,)

    model = Searching("search-model", api_base=llm_server.openai_url, supports_tools=True)
    model.prompt("news?", tools=[ServerSideTool({"type": "browser_search"}), tool()]).text()
    assert [t["type"] for t in llm_server.last_body()["tools"]] == ["function", "browser_search"]


def test_chat_takes_llms_constructor_and_a_configured_base_never_gets_the_openai_key(
        llm_server, monkeypatch):
    from llm_notebook.default_plugins.openai_models import AsyncChat, Chat

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    model = Chat("local-model", model_name="served-name", api_base=llm_server.openai_url,
                 headers={"X-Team": "data"}, vision=True, audio=True, reasoning=True,
                 supports_schema=True, supports_tools=True)
    assert {"image/png", "application/pdf", "audio/wav"} <= model.attachment_types
    model.prompt("Hi", reasoning_effort="low").text()
    request = llm_server.requests[-1]
    assert request.body["model"] == "served-name" and request.body["reasoning_effort"] == "low"
    assert request.headers["x-team"] == "data" and "authorization" not in request.headers
    assert isinstance(AsyncChat("a", api_base=llm_server.openai_url), llm_notebook.AsyncModel)
    with pytest.raises(ValueError, match="schema_style must be one of json_schema, json_object"):
        Chat("x", schema_style="grammar")


def test_openai_models_holds_the_embedding_model_where_llm_plugins_import_it(llm_server):
    """Plugins subclassing llm's OpenAI embedding model import it from openai_models."""
    from llm_notebook.default_plugins.openai_models import OpenAIEmbeddingModel

    model = OpenAIEmbeddingModel("local-embed", "served-embed")
    assert isinstance(model, llm_notebook.EmbeddingModel) and model.model_id == "local-embed"


def test_llama_cpp_server_takes_a_schema_as_json_object_with_the_schema(llama_server):
    """llama-cpp-python's server refuses OpenAI's json_schema form; json_object with the schema
    beside it constrains the answer to the schema, even from a random-weight model."""
    from llm_notebook.default_plugins.openai_models import Chat

    model = Chat(llama_server.model_id, api_base=llama_server.base_url, supports_schema=True,
                 schema_style="json_object")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    response = model.prompt("A number as JSON", schema=schema, max_tokens=40, temperature=0,
                            stream=False)
    value = json.loads(response.text())
    assert isinstance(value, dict) and isinstance(value["n"], int)
    streamed = model.prompt("A number as JSON", schema=schema, max_tokens=40, temperature=0)
    assert isinstance(json.loads(streamed.text())["n"], int)


def test_a_map_with_a_schema_over_the_llama_cpp_server_gives_typed_rows(llama_server):
    """Constrained decoding makes even a random-weight model's answers fit: 20 rows, 20 values.
    One request at a time: llama-cpp-python's server cuts a streaming answer short when another
    request arrives (its interrupt_requests setting, on by default)."""
    import pandas as pd

    from llm_notebook.default_plugins.openai_models import Chat

    llm_notebook.register(Chat("llama-typed", model_name=llama_server.model_id,
                               api_base=llama_server.base_url, supports_schema=True,
                               schema_style="json_object"))
    rows = pd.DataFrame({"word": [f"w{i}" for i in range(20)]},
                        index=pd.Index(range(100, 120), name="id"))
    typed = llm_notebook.map("A number and a yes or no for {word}, as JSON", rows,
                             model="llama-typed", schema="n int, ok bool", max_tokens=60,
                             temperature=0, concurrency=1, progress=False)
    assert not typed.errors and typed["error"].isna().all()
    assert typed.index.equals(rows.index)
    assert str(typed["n"].dtype) == "Int64" and str(typed["ok"].dtype) == "boolean"
    assert typed["n"].notna().all() and typed["ok"].notna().all()
