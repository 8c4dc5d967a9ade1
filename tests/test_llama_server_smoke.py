"""Smoke tests for the real llama-cpp-python server fixture, with plain httpx.

They pin down the wire behaviour of the third-party server that the package's
OpenAI-compatible client is tested against.
"""

from __future__ import annotations

import json

import httpx

MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello to the notebook."},
]


def _is_printable_ascii(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


def test_models_lists_alias(llama_server):
    response = httpx.get(f"{llama_server.base_url}/models", timeout=10)
    response.raise_for_status()
    body = response.json()
    assert body["object"] == "list"
    assert llama_server.model_id in [model["id"] for model in body["data"]]


def test_chat_completion_non_streaming(llama_server):
    response = httpx.post(
        f"{llama_server.base_url}/chat/completions",
        json={"model": llama_server.model_id, "messages": MESSAGES, "max_tokens": 8},
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert isinstance(content, str) and content
    assert _is_printable_ascii(content)
    # The tiny model can never sample its end-of-turn token, so every
    # completion runs to max_tokens.
    assert choice["finish_reason"] == "length"
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] == 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_completion_is_deterministic_with_temperature_zero(llama_server):
    payload = {
        "model": llama_server.model_id,
        "messages": MESSAGES,
        "max_tokens": 8,
        "temperature": 0,
    }
    contents = []
    for _ in range(2):
        response = httpx.post(
            f"{llama_server.base_url}/chat/completions", json=payload, timeout=30
        )
        response.raise_for_status()
        contents.append(response.json()["choices"][0]["message"]["content"])
    assert contents[0] == contents[1]


def test_chat_completion_streaming(llama_server):
    payload = {
        "model": llama_server.model_id,
        "messages": MESSAGES,
        "max_tokens": 8,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = []
    with httpx.stream(
        "POST", f"{llama_server.base_url}/chat/completions", json=payload, timeout=30
    ) as response:
        response.raise_for_status()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(line[len("data:"):].strip())

    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert chunks
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    text = "".join(
        chunk["choices"][0]["delta"].get("content") or ""
        for chunk in chunks
        if chunk["choices"]
    )
    assert text and _is_printable_ascii(text)
    finish_reasons = [
        chunk["choices"][0].get("finish_reason") for chunk in chunks if chunk["choices"]
    ]
    assert finish_reasons[-1] == "length"
    # llama-cpp-python 0.3.36 ignores stream_options: no streamed chunk carries
    # a "usage" object, even with include_usage=true. Clients must treat
    # streamed usage as optional (or count tokens themselves).
    assert not any(chunk.get("usage") for chunk in chunks)
