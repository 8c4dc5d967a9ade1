"""`map(..., batch=True)` through Anthropic's Message Batches, against the loopback batch server
(the documented create, retrieve, cancel and results endpoints, a fast clock, shuffled results).
Expiry and cancelling are tested for both engines in test_jobs.py."""

import json

import pandas as pd
import pytest

import llm_notebook
from llm_notebook import batch_anthropic
from tests.support.batch_servers import ANTHROPIC_KEY, batch_server  # noqa: F401


@pytest.fixture
def server(batch_server):
    return batch_server


def questions(count, *, fail=()):
    texts = [f"question {n}" + (" FAIL" if n in fail else "") for n in range(count)]
    return pd.Series(texts, index=pd.Index(range(100, 100 + count), name="ticket"), name="q")


def submit(items, **arguments):
    return llm_notebook.map("Answer: {}", items, model="claude-haiku-4-5", batch=True,
                            **arguments)


def test_requests_go_as_custom_ids_and_params_and_results_align_with_the_index(server):
    items = questions(25, fail={4})
    job = submit(items, max_tokens=64, system="Short answers.")
    batch = server.batches[job.batch_ids[0]]
    assert [custom_id for custom_id, _ in batch.requests] == [f"r{n}" for n in range(25)]
    params = batch.requests[3][1]
    assert params == {"model": "claude-haiku-4-5", "max_tokens": 64, "system": "Short answers.",
                      "messages": [{"role": "user", "content": "Answer: question 3"}]}
    create = next(call for call in server.calls if call[0] == "POST")
    assert create[2]["x-api-key"] == ANTHROPIC_KEY and create[2]["anthropic-version"]

    answers = job.wait(poll=0, progress=False).result()
    results = [json.loads(line)["custom_id"] for line in batch.results["results"].splitlines()]
    assert results != sorted(results, key=lambda c: int(c[1:]))  # they came back shuffled
    assert answers.index.equals(items.index) and answers.name == "q"
    assert answers[103] == "answer to: Answer: question 3" and answers[104] is None
    assert job.errors == {104: "invalid_request_error: The model refused this request"}
    assert job.counts == {"total": 25, "completed": 24, "failed": 1}


def test_rows_are_split_at_the_request_and_byte_limits(server, monkeypatch):
    monkeypatch.setattr(batch_anthropic, "LIMITS", batch_anthropic.Limits(
        requests=4, bytes=10**6, framing=batch_anthropic.LIMITS.framing))
    server.anthropic_limits = (4, 10**6)  # a larger batch is refused with 413
    job = submit(questions(9)).wait(poll=0, progress=False)
    assert [len(b.requests) for b in server.batches.values()] == [4, 4, 1]
    assert job.result().notna().all()

    one = len(batch_anthropic.AnthropicBatches.line(None, "r0", {
        "model": "claude-haiku-4-5", "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Answer: question 0"}]})) + 1
    limit = batch_anthropic.LIMITS.framing + 2 * one
    monkeypatch.setattr(batch_anthropic, "LIMITS", batch_anthropic.Limits(
        requests=100, bytes=limit, framing=batch_anthropic.LIMITS.framing))
    server.anthropic_limits = (100, limit)  # exactly two lines fit, with the body's framing
    before = len(server.batches)
    job = submit(questions(5)).wait(poll=0, progress=False)
    assert [len(b.requests) for b in list(server.batches.values())[before:]] == [2, 2, 1]
    assert job.errors == {}


def test_results_are_fetched_from_the_base_url_whatever_results_url_says(server):
    real = server.anthropic_batch

    def elsewhere(batch):
        state = real(batch)
        if state["results_url"]:
            state["results_url"] = "https://results.example.invalid/somewhere"
        return state

    server.anthropic_batch = elsewhere
    job = submit(questions(2)).wait(poll=0, progress=False)
    assert job.result().notna().all()
    fetch = [call for call in server.calls if call[1].endswith("/results")]
    assert fetch == [("GET", f"/v1/messages/batches/{job.batch_ids[0]}/results", fetch[0][2])]
    assert ANTHROPIC_KEY not in job.summary()


def test_dry_run_names_the_engine_and_its_batches(server):
    plan = submit(questions(3), dry_run=True)
    assert "Anthropic Message Batches" in plan.summary() and plan.batches == 1
    assert server.batches == {}  # (its tokens may be counted: nothing is submitted)
