"""Hostile and broken servers against the OpenAI and Anthropic plugins, sync and async.

Each fault (tests/support/fault_server.py) is served on a real loopback socket. What is checked
is what a user sees: one clear error line that never shows the key, the partial answer kept in
the response, and no cell left hanging (pytest-timeout bounds every test, and the deadline
under test bounds the drips and endless streams).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from dataclasses import dataclass

import pytest

import llm_notebook
from llm_notebook import Attachment, AttachmentError, ModelError
from tests.support import fault_server as faults
from tests.support.fake_llm_server import (FakeLLMServer, Reply, anthropic_events, error_reply,
                                           json_reply, openai_chunk, openai_events, sse,
                                           stream_reply)

pytestmark = pytest.mark.timeout(30)

KEY = "sk-fault-test-SECRET-0123456789"
FULL = "".join(faults.WORDS)
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5"}


@dataclass
class Outcome:
    """What the user has after the answer ended: the text kept, and the error, if any."""

    text: str
    error: str | None
    status: str


def ask(api: str, mode: str, prompt: str = "Hi", **options) -> Outcome:
    """Prompt the API's model as a user would, sync or async, and read the text after the end."""
    if mode == "sync":
        response = llm_notebook.get_model(MODELS[api]).prompt(prompt, key=KEY, **options)
        try:
            response.text()
            error = None
        except ModelError as exc:
            error = str(exc)
        return Outcome(response.text(), error, response.status)

    async def main() -> Outcome:
        response = llm_notebook.get_async_model(MODELS[api]).prompt(prompt, key=KEY, **options)
        try:
            await response.text()
            error = None
        except ModelError as exc:
            error = str(exc)
        return Outcome(await response.text(), error, response.status)

    return asyncio.run(main())


def assert_one_clear_line(error: str | None, *needles: str) -> None:
    assert error is not None, "the answer should have failed"
    assert "\n" not in error and "Traceback" not in error
    assert KEY not in error
    for needle in needles:
        assert needle in error, f"{needle!r} not in {error!r}"


@pytest.fixture(params=["openai", "anthropic"])
def api(request):
    return request.param


@pytest.fixture(params=["sync", "async"])
def mode(request):
    return request.param


@pytest.fixture
def deadline(monkeypatch):
    """A one-second `answer_timeout`."""
    monkeypatch.setattr(llm_notebook.settings, "answer_timeout", 1.0)
    return 1.0


@pytest.fixture
def other_server():
    """A second loopback server: another origin."""
    server = FakeLLMServer().start()
    yield server
    server.stop()


# -- the connection breaks ------------------------------------------------------------------------
def test_reset_before_the_reply(llm_server, api, mode):
    llm_server.queue(faults.reset_before_reply())
    outcome = ask(api, mode)
    assert_one_clear_line(outcome.error, llm_server.url)
    assert outcome.text == "" and outcome.status == "error"


def test_reset_mid_stream_keeps_the_partial_text(llm_server, api, mode):
    llm_server.queue(faults.reset_mid_stream(words=2))
    outcome = ask(api, mode)
    assert_one_clear_line(outcome.error, "broke off", "The partial answer is kept")
    assert outcome.text == "Partial answers "
    assert len(llm_server.requests) == 1  # text was shown: no second answer


def test_bad_chunked_encoding_keeps_the_partial_text(llm_server, api, mode):
    llm_server.queue(faults.bad_chunking())
    outcome = ask(api, mode)
    assert_one_clear_line(outcome.error, "broke off", "The partial answer is kept")
    assert outcome.text == "Partial "


@pytest.mark.parametrize("fault", [faults.random_bytes(), faults.huge_headers()],
                         ids=["random bytes", "huge headers"])
def test_no_http_at_all_is_one_clear_line(llm_server, api, mode, fault):
    llm_server.queue(fault)
    outcome = ask(api, mode)
    assert_one_clear_line(outcome.error, llm_server.url)
    assert outcome.text == ""


# -- the server takes its time ------------------------------------------------------------------
def test_a_byte_drip_is_stopped_at_the_deadline_keeping_the_partial_text(llm_server, api, mode,
                                                                         deadline):
    llm_server.queue(faults.drip(0.001))
    outcome = ask(api, mode)
    assert_one_clear_line(outcome.error, "took longer than 1 s",
                          "llm_notebook.settings.answer_timeout", "The partial answer is kept")
    assert outcome.text.startswith("drip ") and outcome.text == "drip " * (len(outcome.text) // 5)
    assert len(outcome.text) < 200 * len("drip ")


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_headers_that_come_after_the_deadline_end_the_answer(llm_server, api, mode, deadline,
                                                             stream):
    llm_server.queue(faults.drip(0.02, head_too=True))  # about 2 s for the headers
    outcome = ask(api, mode, stream=stream)
    assert_one_clear_line(outcome.error, "took longer than 1 s", "answer_timeout")
    assert outcome.text == ""


@pytest.mark.timeout(10)  # the headers alone take 20 s: only the deadline ends this in time
def test_async_answers_stop_at_the_deadline_while_the_headers_drip(llm_server, api, deadline):
    llm_server.queue(faults.drip(0.2, head_too=True))
    outcome = ask(api, "async")
    assert_one_clear_line(outcome.error, "took longer than 1 s", "answer_timeout")


def test_an_endless_stream_ends_at_the_deadline_keeping_the_partial_text(llm_server, api, mode,
                                                                         deadline):
    llm_server.queue(faults.endless_stream())
    outcome = ask(api, mode)
    assert_one_clear_line(outcome.error, "answer_timeout", "The partial answer is kept")
    assert outcome.text.startswith("more more ")
    assert outcome.status == "error"


@pytest.mark.timeout(20)  # the server holds the socket for a minute
def test_a_stream_ends_when_its_protocol_says_done_even_if_the_socket_stays_open(llm_server, api,
                                                                               mode):
    """No deadline set: only the protocol's own end (`[DONE]`, `message_stop`) ends the answer."""
    llm_server.queue(faults.stall_after_done())
    outcome = ask(api, mode)
    assert outcome.error is None
    assert outcome.text == FULL and outcome.status == "done"
    stalled = llm_server.requests[0]
    assert stalled.finished.wait(timeout=10) and stalled.hung_up  # the client let go at once


@pytest.mark.timeout(20)  # the server holds the socket for a minute
def test_finish_and_usage_end_a_stream_whose_server_sends_no_done(llm_server, mode):
    llm_server.queue(faults.stall_after_done(done=False))
    outcome = ask("openai", mode)
    assert outcome.error is None and outcome.text == FULL and outcome.status == "done"


def test_a_normal_stream_still_leaves_its_connection_for_the_next_prompt(llm_server, api):
    for _ in range(3):
        assert ask(api, "sync").error is None
    assert len({r.connection for r in llm_server.requests}) == 1


# -- redirects and encodings -----------------------------------------------------------------------
@pytest.mark.parametrize("status", [307, 308])
def test_same_origin_307_and_308_are_followed_with_the_body(llm_server, api, mode, status):
    path = "/v1/messages" if api == "anthropic" else "/v1/chat/completions"
    llm_server.queue(faults.redirect(status, "/moved" + path), faults.echo())
    outcome = ask(api, mode, "follow me")
    assert outcome.error is None and outcome.text == "follow me"
    first, second = llm_server.requests
    assert second.path == "/moved" + path and second.body == first.body
    assert second.headers.get("x-api-key", second.headers.get("authorization", "")).endswith(KEY)


@pytest.mark.parametrize("status", [301, 302, 303])
def test_other_redirects_are_an_error_naming_status_and_location(llm_server, api, mode, status):
    llm_server.queue(faults.redirect(status, "/elsewhere"))
    outcome = ask(api, mode)
    assert_one_clear_line(outcome.error, f"HTTP {status}", "redirects to /elsewhere")
    assert len(llm_server.requests) == 1


def test_a_redirect_to_another_origin_is_not_followed(llm_server, other_server, api, mode):
    llm_server.queue(faults.redirect(307, other_server.url + "/v1/steal"))
    outcome = ask(api, mode)
    assert_one_clear_line(outcome.error, "HTTP 307", other_server.url + "/v1/steal",
                          "not sent to another address")
    assert other_server.requests == []


def test_redirects_in_a_loop_end(llm_server, mode):
    llm_server.queue(*[faults.redirect(307, "/v1/chat/completions")] * 10)
    outcome = ask("openai", mode)
    assert_one_clear_line(outcome.error, "more than 5 redirects")
    assert len(llm_server.requests) == 6


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_gzip_encoded_bodies_are_read(llm_server, api, mode, stream):
    llm_server.queue(faults.gzipped(stream=stream))
    outcome = ask(api, mode, stream=stream)
    assert outcome.error is None and outcome.text == FULL


# -- keys echoed back ------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["plain", "base64"])
def test_a_key_echoed_in_an_error_is_redacted(llm_server, api, mode, encoding):
    llm_server.queue(faults.echo_key_in_error(401, encoding=encoding))
    outcome = ask(api, mode)
    assert_one_clear_line(outcome.error, "API key was rejected", "Incorrect API key provided")
    assert base64.b64encode(KEY.encode()).decode() not in outcome.error
    assert len(llm_server.requests) == 1


def test_a_key_echoed_in_malformed_data_is_redacted(llm_server, api, mode):
    llm_server.queue(faults.echo_key_in_answer(then="malformed"))
    outcome = ask(api, mode)
    assert_one_clear_line(outcome.error, "The server sent malformed data: ")
    assert outcome.text.startswith("The key is ") and outcome.text.endswith(" ok")  # kept


@pytest.mark.parametrize("encoding", ["plain", "base64"])
def test_add_openai_endpoint_never_shows_a_key_the_server_echoes(llm_server, encoding):
    llm_server.queue(faults.echo_key_in_error(401, encoding=encoding))
    with pytest.raises(ModelError) as caught:
        llm_notebook.add_openai_endpoint(llm_server.openai_url, api_key=KEY)
    message = str(caught.value)
    assert "Cannot list the models" in message and "API key was rejected" in message
    assert KEY not in message
    assert base64.b64encode(KEY.encode()).decode() not in message


# -- malformed data --------------------------------------------------------------------------------
#: Chunks of the wrong shape, and the piece of each that the error must quote.
OPENAI_MALFORMED = {
    "delta as a string": (openai_chunk("x") | {"choices": [{"index": 0, "delta": "x"}]},
                          '"delta": "x"'),
    "choices not a list": (openai_chunk("x") | {"choices": {"0": {"delta": {"content": "x"}}}},
                           '"choices": {"0"'),
    "choices a number": (openai_chunk("x") | {"choices": 7}, '"choices": 7'),
    "content a list": (openai_chunk("x") | {"choices": [{"delta": {"content": ["x"]}}]},
                       '"content": ["x"]'),
    "usage not a dict": (openai_chunk(None, "stop") | {"usage": [1, 2]}, "[1, 2]"),
    "usage counts not numbers": (openai_chunk(None, "stop") | {
        "usage": {"prompt_tokens": "eleven", "completion_tokens": 5}}, '"prompt_tokens": "eleven"'),
}
ANTHROPIC_MALFORMED = {
    "delta a list": ("content_block_delta", {"type": "content_block_delta", "delta": ["text"]}),
    "text a number": ("content_block_delta", {"type": "content_block_delta",
                                              "delta": {"type": "text_delta", "text": 5}}),
    "message a list": ("message_start", {"type": "message_start", "message": ["m"]}),
    "usage a string": ("message_delta", {"type": "message_delta", "delta": {},
                                         "usage": "lots"}),
}


@pytest.mark.parametrize("chunk, piece", OPENAI_MALFORMED.values(), ids=OPENAI_MALFORMED.keys())
def test_malformed_openai_chunks_are_named(llm_server, mode, chunk, piece):
    llm_server.queue(stream_reply(sse(openai_events(["Before "], done=False)[:2] +
                                      [(None, chunk), (None, "[DONE]")])))
    outcome = ask("openai", mode)
    assert_one_clear_line(outcome.error, "The server sent malformed data: ", piece,
                          "The partial answer is kept")
    assert "AttributeError" not in outcome.error and "TypeError" not in outcome.error
    assert outcome.text == "Before "


@pytest.mark.parametrize("event", ANTHROPIC_MALFORMED.values(), ids=ANTHROPIC_MALFORMED.keys())
def test_malformed_anthropic_events_are_named(llm_server, mode, event):
    events = anthropic_events(["Before "])
    opening = [] if event[0] == "message_start" else events[:4]
    llm_server.queue(stream_reply(sse(opening + [event] + events[4:])))
    outcome = ask("anthropic", mode)
    assert_one_clear_line(outcome.error, "The server sent malformed data: ",
                          "The partial answer is kept")
    assert "AttributeError" not in outcome.error and "TypeError" not in outcome.error
    assert outcome.text == ("" if event[0] == "message_start" else "Before ")


@pytest.mark.parametrize("api, body", [
    ("openai", {"choices": [{"message": "just text"}]}),
    ("openai", {"choices": [{"message": {"content": {"text": "x"}}}]}),
    ("openai", {"choices": [{"message": {"content": "x"}}], "usage": "many"}),
    ("anthropic", {"content": ["just text"]}),
    ("anthropic", {"content": [{"type": "text", "text": 7}]}),
    ("anthropic", {"content": [{"type": "text", "text": "x"}], "usage": [3]}),
])
def test_malformed_whole_answers_are_named(llm_server, mode, api, body):
    llm_server.queue(json_reply(body))
    outcome = ask(api, mode, stream=False)
    assert_one_clear_line(outcome.error)
    assert "malformed data" in outcome.error or "answered without a message" in outcome.error
    assert "AttributeError" not in outcome.error and "TypeError" not in outcome.error


# -- retries ---------------------------------------------------------------------------------------
@pytest.fixture
def slow_backoff(monkeypatch):
    """A backoff of at least 5 s, far longer than any server-given wait in these tests: a
    client that ignored Retry-After would show it."""
    monkeypatch.setattr("llm_notebook.http.FIRST_BACKOFF", 10.0)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_statuses_that_cannot_succeed_are_asked_once(llm_server, api, status):
    llm_server.queue(*[error_reply(status, "no", headers={"Retry-After": "0"})] * 3)
    assert_one_clear_line(ask(api, "sync").error, f"HTTP {status}")
    assert len(llm_server.requests) == 1


def test_retry_after_zero_retries_at_once(llm_server, slow_backoff):
    llm_server.queue(error_reply(503, "busy", headers={"Retry-After": "0"}))
    assert ask("openai", "sync").error is None
    first, second = llm_server.requests
    assert second.received_at - first.received_at < 2.5  # the backoff would be >= 5 s


def test_retry_after_is_waited_out_as_the_server_asks(llm_server, slow_backoff):
    llm_server.queue(error_reply(429, "slow down", headers={"Retry-After": "1.2"}))
    assert ask("anthropic", "async").error is None
    first, second = llm_server.requests
    assert 1.2 <= second.received_at - first.received_at < 4.0


@pytest.mark.timeout(20)  # a client that waited as asked would sleep for an hour
def test_a_very_long_retry_after_is_an_immediate_clear_error(llm_server, mode):
    llm_server.queue(error_reply(429, "come back tomorrow", headers={"Retry-After": "3600"}))
    outcome = ask("openai", mode)
    assert_one_clear_line(outcome.error, "Rate limited", "wait 3600 s")
    assert len(llm_server.requests) == 1


def test_a_retry_wait_beyond_the_deadline_is_an_immediate_clear_error(llm_server, deadline):
    llm_server.queue(error_reply(503, "busy", headers={"Retry-After": "5"}))
    outcome = ask("openai", "sync")
    assert_one_clear_line(outcome.error, "HTTP 503", "answer_timeout")
    assert len(llm_server.requests) == 1


def test_map_does_not_retry_what_the_http_layer_retried(llm_server, monkeypatch):
    monkeypatch.setattr(llm_notebook.settings, "max_retries", 3)
    llm_server.queue(*[error_reply(500, "down", headers={"Retry-After": "0"})] * 12)
    answers = llm_notebook.map("{}", ["one"], model="gpt-4o-mini", key=KEY, progress=False)
    assert answers == [None]
    assert "The server failed (after 3 retries)" in answers.errors[0]
    assert len(llm_server.requests) == 4


def test_map_asks_once_for_a_rejected_key(llm_server):
    llm_server.queue(*[error_reply(401, "bad key")] * 3)
    answers = llm_notebook.map("{}", ["one"], model="gpt-4o-mini", key=KEY, progress=False)
    assert "API key was rejected" in answers.errors[0]
    assert len(llm_server.requests) == 1


def test_map_still_retries_a_stream_that_broke(llm_server, monkeypatch):
    monkeypatch.setattr("llm_notebook.batch.RETRY_DELAY", 0.01)
    llm_server.queue(faults.reset_mid_stream())
    answers = llm_notebook.map("{}", ["one"], model="gpt-4o-mini", key=KEY, progress=False)
    assert answers == ["Hello from the fake server."]
    assert len(llm_server.requests) == 2


# -- fork ------------------------------------------------------------------------------------------
@pytest.fixture
def forking(llm_server, monkeypatch):
    """Answers that wait until both the parent's and the child's request have come (so the two
    stream at the same time), and a bound on how long a garbled stream can keep them waiting."""
    monkeypatch.setattr(llm_notebook.settings, "log", False)
    monkeypatch.setattr(llm_notebook.settings, "read_timeout", 20.0)
    both_asked = threading.Barrier(2, timeout=10)
    return lambda: llm_server.queue(faults.echo(after=both_asked), faults.echo(after=both_asked))


def in_parent_and_child(ask_in_one) -> tuple[str, str]:
    """Fork; each process runs `ask_in_one(who)`; returns (the parent's text, the child's)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, and never return into pytest
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(ask_in_one("child")).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        parent_text = ask_in_one("parent")
        with os.fdopen(read_end, "rb") as pipe:
            child_text = pipe.read()
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child failed"
    return parent_text, json.loads(child_text)


def assert_each_on_its_own_connection(llm_server, kept_alive) -> None:
    connections = {r.body["messages"][-1]["content"]: r.connection for r in llm_server.requests}
    assert connections["parent says hi"] == kept_alive  # still the parent's, kept alive
    assert connections["child says hi"] != kept_alive


def test_a_forked_child_gets_its_own_connection_and_each_its_own_answer(llm_server, forking):
    model = llm_notebook.get_model("gpt-4o-mini")
    assert model.prompt("warm up", key=KEY).text() == "Hello from the fake server."
    kept_alive = llm_server.requests[-1].connection
    forking()
    texts = in_parent_and_child(lambda who: model.prompt(f"{who} says hi", key=KEY).text())
    assert texts == ("parent says hi", "child says hi")
    assert_each_on_its_own_connection(llm_server, kept_alive)


def test_a_forked_child_gets_its_own_connection_on_a_shared_event_loop(llm_server, forking):
    """A long-lived loop driven with run_until_complete, as both processes may go on doing."""
    model = llm_notebook.get_async_model("gpt-4o-mini")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(model.prompt("warm up", key=KEY).text())
        kept_alive = llm_server.requests[-1].connection
        forking()
        texts = in_parent_and_child(
            lambda who: loop.run_until_complete(model.prompt(f"{who} says hi", key=KEY).text()))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert texts == ("parent says hi", "child says hi")
    assert_each_on_its_own_connection(llm_server, kept_alive)


# -- URL attachments -------------------------------------------------------------------------------
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4b80000000049454e44ae426082")


def png_reply(**kwargs) -> Reply:
    return Reply(pieces=[PNG], content_type="image/png", chunked=False, **kwargs)


def test_a_url_attachment_larger_than_the_limit_is_refused(llm_server, monkeypatch):
    monkeypatch.setattr(llm_notebook.settings, "max_attachment_bytes", 1000)
    url = llm_server.url + "/big"
    llm_server.queue(Reply(pieces=[b"x" * 5000], content_type="application/octet-stream",
                           chunked=False))
    with pytest.raises(AttachmentError) as caught:
        Attachment(url=url).content_bytes()
    assert url in str(caught.value) and "1,000 bytes" in str(caught.value)
    assert "llm_notebook.settings.max_attachment_bytes" in str(caught.value)


def test_an_endless_url_attachment_stops_at_the_limit(llm_server, monkeypatch):
    monkeypatch.setattr(llm_notebook.settings, "max_attachment_bytes", 100_000)
    url = llm_server.url + "/endless"
    llm_server.queue(faults.endless_stream())
    with pytest.raises(AttachmentError, match="larger than 100,000 bytes"):
        Attachment(url=url).content_bytes()
    served = llm_server.requests[0]
    assert served.finished.wait(timeout=10) and served.hung_up


def test_a_slow_url_attachment_stops_at_its_time_limit(llm_server, monkeypatch):
    monkeypatch.setattr(llm_notebook.settings, "attachment_timeout", 1.0)
    url = llm_server.url + "/slow"
    llm_server.queue(faults.drip(0.01))
    with pytest.raises(AttachmentError) as caught:
        llm_notebook.get_model("gpt-4o").prompt("Look", attachments=[url], key=KEY)
    message = str(caught.value)
    assert url in message and "1 s" in message
    assert "llm_notebook.settings.attachment_timeout" in message
    assert [r.path for r in llm_server.requests] == ["/slow"]  # no model request was sent


def test_url_attachments_follow_redirects_to_other_origins(llm_server, other_server):
    other_server.queue(png_reply())
    llm_server.queue(faults.redirect(302, other_server.url + "/cat"))
    attachment = Attachment(url=llm_server.url + "/cat")
    assert attachment.content_bytes() == PNG
    assert attachment.resolve_type() == "image/png"


def test_url_attachment_redirects_are_bounded(llm_server):
    llm_server.queue(*[faults.redirect(302, "/again")] * 10)
    with pytest.raises(AttachmentError, match="redirects more than 5 times"):
        Attachment(url=llm_server.url + "/again").content_bytes()
    assert len(llm_server.requests) == 6
