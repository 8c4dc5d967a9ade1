"""Cost in dollars: hosted models priced from genai-prices' bundled data, unknown models shown as
unknown, your own prices for the rest, and the session's spend by model."""

import json
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage as PricedUsage
from genai_prices import calc_price

import llm_notebook
from llm_notebook import prices
from llm_notebook.prices import Cost, SessionCosts, format_dollars
from llm_notebook.settings import settings
from tests.support.fake_llm_server import (anthropic_events, anthropic_usage, openai_events,
                                           openai_usage, sse, stream_reply)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def hosted(llm_server, monkeypatch):
    """The OpenAI and Anthropic models, answering from the loopback server, with keys."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-prices-0000")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-prices-0000")
    monkeypatch.setattr(settings, "cache", "off")
    return llm_server


def expected(model: str, provider: str, **counts) -> Decimal:
    return calc_price(PricedUsage(**counts), model, provider_id=provider).total_price


def test_a_known_model_costs_what_genai_prices_says(hosted):
    response = llm_notebook.get_model("gpt-4o-mini").prompt("hi")
    response.text()
    cost = prices.cost(response)
    assert cost.dollars == expected("gpt-4o-mini", "openai", input_tokens=11, output_tokens=5)
    assert cost.dollars > 0 and cost.source == "genai-prices: openai gpt-4o-mini"
    assert str(cost).startswith("$0.0000")


def test_cached_input_is_priced_as_cached(hosted):
    hosted.queue(stream_reply(sse(openai_events(["ok"], usage=openai_usage(
        prompt_tokens=1000, completion_tokens=10, cached=800)))))
    response = llm_notebook.get_model("gpt-4o").prompt("long prompt")
    response.text()
    assert prices.cost(response).dollars == expected(
        "gpt-4o", "openai", input_tokens=1000, cache_read_tokens=800, output_tokens=10)
    assert prices.cost(response).dollars < expected("gpt-4o", "openai", input_tokens=1000,
                                                    output_tokens=10)


def test_anthropic_cache_reads_and_writes_count_as_input(hosted):
    hosted.queue(stream_reply(sse(anthropic_events(["ok"], usage=anthropic_usage(
        input_tokens=50, output_tokens=1, cache_creation=1000, cache_read=2000), final_output=7))))
    response = llm_notebook.get_model("claude-haiku-4-5").prompt("hi")
    response.text()
    usage = response.usage()
    assert prices.cost(response).dollars == expected(
        "claude-haiku-4-5", "anthropic", input_tokens=usage.input + 3000, output_tokens=usage.output,
        cache_write_tokens=1000, cache_read_tokens=2000)


def test_an_unknown_model_shows_unknown_never_a_guess(monkeypatch):
    response = llm_notebook.get_model("echo").prompt("hi")
    response.text()
    cost = prices.cost(response)
    assert cost.dollars is None and str(cost) == "—"
    assert "llm_notebook.set_price('echo', input=..., output=...)" in cost.source


def test_a_local_server_is_not_priced_as_the_hosted_model_of_the_same_name(llm_server):
    ids = llm_notebook.add_openai_endpoint(llm_server.openai_url, models=["gpt-4o-mini-local"],
                                           name="box")
    local = llm_notebook.get_model(ids[0])
    response = local.prompt("hi")
    response.text()
    assert str(prices.cost(response)) == "—"


def test_set_price_wins_and_lasts_across_processes(user_dir):
    env = {**os.environ, "LLM_NOTEBOOK_USER_PATH": str(user_dir), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import llm_notebook.prices as prices
        prices.set_price("echo", input=2, output=8, cached_input=0.5)
    """)], env=env, check=True, timeout=60)
    response = llm_notebook.get_model("echo").prompt("one two three four")
    response.text()
    usage = response.usage()
    cost = prices.cost(response)
    assert cost.dollars == (Decimal(usage.input) * 2 + Decimal(usage.output) * 8) / 1_000_000
    assert cost.source == "set_price"
    assert json.loads((user_dir / "prices.json").read_text())["echo"]["cached_input"] == "0.5"
    assert prices.remove_price("echo") is True
    assert prices.cost(response).dollars is None


def test_set_price_through_an_alias_prices_the_model(user_dir):
    llm_notebook.set_alias("parrot", "echo")
    prices.set_price("parrot", input=1, output=1)
    assert prices.estimate(llm_notebook.get_model("echo"), 1_000_000, 0).dollars == 1


@pytest.mark.parametrize("bad", ["cheap", -1, float("nan"), True])
def test_a_bad_price_is_one_clear_line(bad):
    with pytest.raises(ValueError) as raised:
        prices.set_price("echo", input=bad, output=1)
    assert str(raised.value) == (f"set_price: input must be dollars per million tokens, a number "
                                 f"of 0 or more (got {bad!r})")


def test_session_costs_by_model_keep_unknown_apart(hosted):
    session = SessionCosts()
    for model in ("gpt-4o-mini", "gpt-4o-mini", "echo"):
        response = llm_notebook.get_model(model).prompt("hi")
        response.text()
        session.record(response)
    by_model = {entry.model: entry for entry in session.by_model()}
    one = expected("gpt-4o-mini", "openai", input_tokens=11, output_tokens=5)
    assert by_model["gpt-4o-mini"].cost.dollars == 2 * one
    assert by_model["gpt-4o-mini"].responses == 2
    assert str(by_model["echo"].cost) == "—"
    assert str(session.total()) == f"{format_dollars(2 * one)} + unknown"
    assert session.spent() == 2 * one


def test_replayed_answers_are_counted_as_saved(hosted, monkeypatch):
    monkeypatch.setattr(settings, "cache", "replay")
    session = SessionCosts()
    for _ in range(3):
        response = llm_notebook.get_model("gpt-4o-mini").prompt("same")
        response.text()
        session.record(response)
    entry = session.by_model()[0]
    one = expected("gpt-4o-mini", "openai", input_tokens=11, output_tokens=5)
    assert (entry.cost.dollars, entry.saved.dollars, entry.replayed) == (one, 2 * one, 2)
    assert response.replayed["saved_cost"] == float(one)
    assert len(hosted.requests) == 1


def test_the_session_account_sees_every_finished_response():
    before = {entry.model: entry.responses for entry in prices.session_costs.by_model()}
    llm_notebook.get_model("markov").prompt("a b a b", seed=3).text()
    after = {entry.model: entry.responses for entry in prices.session_costs.by_model()}
    assert after["markov"] == before.get("markov", 0) + 1


def test_dollars_read_well():
    assert [format_dollars(v) for v in (None, 0, 0.0042, 0.004, 0.045, 0.5, 1234.567)] == \
        ["—", "$0", "$0.0042", "$0.004", "$0.045", "$0.50", "$1,234.57"]
    assert str(Cost(Decimal("0.5")) + Cost(None)) == "$0.50 + unknown"


def test_pricing_never_touches_the_network(user_dir):
    """The socket layer is made to refuse (and count) every connection in the child process, since
    a real "no network" cannot be arranged here; prices must still come out."""
    code = textwrap.dedent("""
        import socket
        attempts = []
        def refuse(*args, **kwargs):
            attempts.append(args)
            raise OSError("network refused by the test")
        socket.socket.connect = refuse
        socket.getaddrinfo = refuse
        from llm_notebook import prices
        from llm_notebook.responses import Usage
        from llm_notebook.prices import Bill
        for model, account in (("gpt-4o-mini", "openai"), ("claude-sonnet-4-5", "anthropic"),
                               ("gemini-2.5-flash", None)):
            bill = Bill(model=model, usage=Usage(input=1000, output=100), account=account)
            assert bill.cost().known, model
        print(len(attempts))
    """)
    env = {**os.environ, "LLM_NOTEBOOK_USER_PATH": str(user_dir), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
