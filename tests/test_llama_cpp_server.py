"""The OpenAI-compatible plugin against a real third-party server: llama-cpp-python on a tiny model.

The model has random weights, so answers are gibberish but real: the checks are on what a user
sees (text arrives, sync and async, streamed and not, usage where the server gives it, history
reaching the server).
"""

from __future__ import annotations

import asyncio

import pytest

import llm_notebook
from llm_notebook import ModelError


@pytest.fixture(scope="module")
def tiny(llama_server):
    """The server's model registered the way a user would: by asking the server what it serves."""
    ids = llm_notebook.add_openai_endpoint(llama_server.base_url, name="llama-test")
    assert ids == [llama_server.model_id]
    return llama_server.model_id


def test_models_are_listed_through_add_openai_endpoint(tiny):
    model = llm_notebook.get_model(tiny)
    assert model.model_id == "tiny-llama"
    assert "llama-test" in model.description


def test_sync_stream(tiny):
    response = llm_notebook.get_model(tiny).prompt("Say hello", max_tokens=6, temperature=0)
    chunks = list(response)
    assert chunks and "".join(chunks) == response.text()
    assert response.status == "done"
    assert response.json()["finish_reason"] == "length"
    # This server sends no usage when streaming: it stays unset rather than failing.
    assert response.usage().input is None


def test_sync_non_streaming_has_usage(tiny):
    response = llm_notebook.get_model(tiny).prompt("Say hello", max_tokens=5, stream=False)
    assert response.text()
    usage = response.usage()
    assert usage.input > 0 and usage.output == 5


def test_streamed_and_whole_answers_agree_at_temperature_zero(tiny):
    model = llm_notebook.get_model(tiny)
    streamed = model.prompt("Count", max_tokens=6, temperature=0, seed=1).text()
    whole = model.prompt("Count", max_tokens=6, temperature=0, seed=1, stream=False).text()
    assert streamed == whole


def test_conversation_history_reaches_the_server(tiny):
    conversation = llm_notebook.get_model(tiny).conversation()
    first = conversation.prompt("One two three", system="Be terse", max_tokens=4, stream=False)
    first.text()
    second = conversation.prompt("Four", max_tokens=4, stream=False)
    second.text()
    # The second prompt carries the first turn, so the server counts more prompt tokens.
    assert second.usage().input > first.usage().input + first.usage().output


def test_async_stream_and_not(tiny):
    async def main():
        model = llm_notebook.get_async_model(tiny)
        chunks = [chunk async for chunk in model.prompt("Hi", max_tokens=5)]
        whole = await model.prompt("Hi", max_tokens=5, stream=False)
        return chunks, await whole.text(), await whole.usage()

    chunks, text, usage = asyncio.run(main())
    assert "".join(chunks) and text
    assert usage.output == 5


def test_a_request_the_server_rejects_gives_its_own_message(tiny, monkeypatch):
    monkeypatch.setattr(llm_notebook.settings, "max_retries", 0)  # it answers 500: no retry
    response = llm_notebook.get_model(tiny).prompt("Hi", extra_body={"max_tokens": "many"})
    with pytest.raises(ModelError) as caught:
        response.text()
    message = str(caught.value)
    assert "HTTP 500" in message and "validation error" in message
    assert response.status == "error"
