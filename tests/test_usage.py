"""Session usage accounting: sums by model, totals, reset, costs, replayed answers counted apart,
and observers for a live view."""

from decimal import Decimal

import pytest

import llm_notebook
from llm_notebook import prices
from llm_notebook.prices import SessionCosts, session_costs
from llm_notebook.settings import settings
from llm_notebook.tables import table_data
from llm_notebook.usage import (ANSWER_HEADERS, SESSION_HEADERS, SessionUsage, answer_row,
                                answer_table, session_usage)


def summary(model, input, output, duration_ms, details=None):
    return {"model": model, "usage": {"input": input, "output": output, "details": details},
            "duration_ms": duration_ms}


def test_sums_by_model_with_totals_and_observers():
    usage, seen = SessionUsage(), []
    unsubscribe = usage.subscribe(lambda account: seen.append(account.totals().responses))
    usage.record(summary("a", 10, 20, 1000, {"cached_tokens": 4}))
    usage.record(summary("a", 1, None, 500, {"cached_tokens": 1, "note": "x"}))
    usage.record(summary("b", None, 8, 2000))
    assert seen == [1, 2, 3]
    rows = usage.rows()
    assert len(rows[0]) == len(SESSION_HEADERS)
    # no cost account: the cost columns are blank, never a guess
    assert rows[0] == ("a", "2", "11", "20", "cached_tokens 5", "1.50 s", "13.3", "", "", "")
    assert rows[1] == ("b", "1", "0", "8", "", "2.00 s", "4.0", "", "", "")
    assert rows[2] == ("total", "3", "11", "28", "cached_tokens 5", "3.50 s", "8.0", "", "", "")
    unsubscribe()
    usage.reset()
    assert usage.rows() == [] and seen == [1, 2, 3]


def test_answer_row_leaves_unknown_counts_blank():
    assert len(ANSWER_HEADERS) == 7
    assert answer_row(summary("m", None, None, 0)) == ("m", "", "", "", "0.00 s", "", "")
    assert answer_row(summary("m", 1200, 300, 1500, {"reasoning": 7})) == (
        "m", "1,200", "300", "reasoning 7", "1.50 s", "200.0", "")
    assert answer_row(summary("m", 1, 2, 10), cost=prices.Cost(None))[-1] == "—"


@pytest.fixture
def replaying(monkeypatch):
    monkeypatch.setattr(settings, "cache", "replay")
    llm_notebook.set_price("echo", input=2, output=4)  # dollars per million tokens
    session_usage.reset()
    yield
    session_usage.reset()


def test_a_replayed_answer_is_counted_apart_with_what_it_saved(replaying):
    model = llm_notebook.get_model("echo")
    first = model.prompt("how much does this cost?")
    first.text()
    again = model.prompt("how much does this cost?")
    again.text()
    assert first.replayed is None and again.replayed is not None
    usage = SessionUsage(costs=SessionCosts())
    for response in (first, again):
        usage.record_response(response)
        usage.costs.record(response)

    spent = first.usage()
    tokens = spent.input + spent.output
    dollars = (Decimal(spent.input) * 2 + Decimal(spent.output) * 4) / 1_000_000
    row, total = usage.rows()
    cells = dict(zip(SESSION_HEADERS, row))
    # two responses, one replayed: its tokens are saved, not spent, and it cost nothing
    assert cells["responses"] == "2" and cells["replayed"] == "1"
    assert cells["input"] == f"{spent.input:,}" and cells["output"] == f"{spent.output:,}"
    assert cells["cost"] == str(prices.Cost(dollars))
    assert cells["saved"] == f"{tokens:,} tokens, {prices.Cost(dollars)}"
    assert dict(zip(SESSION_HEADERS, total))["saved"] == cells["saved"]


def test_a_model_with_no_known_price_costs_a_dash_not_nothing(replaying):
    usage = SessionUsage(costs=SessionCosts())
    response = llm_notebook.get_model("markov").prompt("a b c a b", seed=1)
    response.text()
    usage.record_response(response)
    usage.costs.record(response)
    row, total = usage.rows()
    assert row[SESSION_HEADERS.index("cost")] == "—"
    assert total[SESSION_HEADERS.index("cost")] == "—"


def test_the_total_saved_counts_only_models_that_replayed(replaying):
    """A priced model that replayed nothing adds no "$0" to what unpriced replays saved."""
    usage = SessionUsage(costs=SessionCosts())
    priced = llm_notebook.get_model("echo").prompt("asked once")
    priced.text()
    markov = llm_notebook.get_model("markov")
    for _ in range(2):
        response = markov.prompt("a b c a b", seed=1)
        response.text()
        usage.record_response(response)
        usage.costs.record(response)
    usage.record_response(priced)
    usage.costs.record(priced)
    total = dict(zip(SESSION_HEADERS, usage.rows()[-1]))
    assert total["replayed"] == "1" and total["saved"].endswith(" tokens"), total["saved"]


def test_resetting_the_session_usage_resets_the_session_costs(replaying):
    response = llm_notebook.get_model("echo").prompt("priced")
    response.text()  # the observers count it in session_usage and price it in session_costs
    assert session_costs.by_model() and session_usage.by_model()
    session_usage.reset()
    assert session_costs.by_model() == [] and session_usage.rows() == []
    assert session_costs.spent() == 0


def test_the_usage_table_of_a_replayed_answer_says_where_it_came_from(replaying):
    model = llm_notebook.get_model("echo")
    model.prompt("twice").text()
    again = model.prompt("twice")
    again.text()
    table = answer_table(again.to_dict(), prices.cost(again))
    row = table["text/plain"].splitlines()[1]
    assert "replayed" in row and row.rstrip().endswith("$0")
    line = table["text/plain"].splitlines()[-1]
    assert line.startswith("replayed from ") and " · saved " in line and " tokens, $" in line
    assert table["text/markdown"].endswith("_") and "replayed from" in table["text/markdown"]


def test_a_model_id_in_a_usage_table_shows_as_it_is_never_as_markup():
    from llm_notebook.notebook.widgets.rendered import markdown_html

    usage = SessionUsage()
    usage.record(summary("gpt-*4*<b>|x", 1, 2, 100))
    html = markdown_html(table_data(SESSION_HEADERS, usage.rows())["text/markdown"])
    assert ">gpt-*4*&lt;b&gt;|x</td>" in html and "<em>" not in html


def test_rates_come_from_answers_long_enough_to_time():
    """An answer too quick to time (30 tokens in 0 ms) does not inflate its model's or the
    total's output rate."""
    usage = SessionUsage()
    usage.record(summary("a", 5, 30, 0))
    usage.record(summary("b", 5, 100, 1000))
    rows = {row[0]: dict(zip(SESSION_HEADERS, row)) for row in usage.rows()}
    assert rows["a"]["output tok/s"] == ""
    assert rows["b"]["output tok/s"] == rows["total"]["output tok/s"] == "100.0"
    assert rows["total"]["output"] == "130" and rows["total"]["responses"] == "2"
