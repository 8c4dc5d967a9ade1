"""Before sending: previews of what a request holds and costs, budgets that refuse requests
before anything is sent, and maps that stop at their budget and resume from the cache."""

import warnings
from decimal import Decimal

import numpy as np
import pytest

import llm_notebook
from llm_notebook import batch, budget, prices
from llm_notebook.budget import BudgetExceeded
from llm_notebook.request_preview import preview
from llm_notebook.settings import settings
from llm_notebook.tools import Tool
from tests.support.slow_server import SlowServer, loopback_models


@pytest.fixture
def priced(llm_server, monkeypatch):
    """gpt-4o-mini on the loopback server, at $1,000 per million tokens: 16 tokens cost $0.016."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-budget-0000")
    monkeypatch.setattr(settings, "cache", "off")
    monkeypatch.setattr(settings, "budget", None)
    prices.set_price("gpt-4o-mini", input=1000, output=1000)
    prices.session_costs.reset()
    yield llm_server
    prices.session_costs.reset()


def ask(text="hi", **options):
    return llm_notebook.get_model("gpt-4o-mini").prompt(text, **options)


def test_the_session_budget_refuses_before_anything_is_sent(priced, monkeypatch):
    monkeypatch.setattr(settings, "budget", 0.001)
    with pytest.raises(BudgetExceeded) as raised:
        ask("What does this cost?", max_tokens=100).text()
    message = str(raised.value)
    assert message.startswith("Not sent: this request to 'gpt-4o-mini' (about $0.1")
    assert "the session's budget (llm_notebook.settings.budget) of $0.001" in message
    assert "Raise llm_notebook.settings.budget" in message and "\n" not in message
    assert priced.requests == []


def test_the_session_budget_counts_what_was_spent(priced, monkeypatch):
    monkeypatch.setattr(settings, "budget", 0.02)
    ask().text()  # 11 + 5 tokens: $0.016
    assert prices.session_costs.spent() == Decimal("0.016")
    with pytest.raises(BudgetExceeded, match=r"\$0\.016 spent or in flight"):
        ask("again").text()  # expected ~$0.006 more (its prompt, and 5 output tokens as before)
    assert len(priced.requests) == 1
    monkeypatch.setattr(settings, "budget", None)
    ask("again").text()
    assert len(priced.requests) == 2


def test_a_block_limit_applies_inside_it_only(priced):
    with budget.limit(0.02) as block:
        ask().text()
        with pytest.raises(BudgetExceeded, match="this block's max_cost of \\$0.02"):
            ask("more").text()
    assert block.spent() == Decimal("0.016")
    ask("more").text()
    assert len(priced.requests) == 2


def test_replayed_answers_pass_any_budget(priced, monkeypatch):
    monkeypatch.setattr(settings, "cache", "replay")
    ask().text()
    monkeypatch.setattr(settings, "budget", 0)
    assert ask().text() == "Hello from the fake server."
    assert len(priced.requests) == 1


def test_an_unknown_price_is_let_through_with_one_warning(monkeypatch):
    monkeypatch.setattr(settings, "budget", 0.01)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        llm_notebook.get_model("markov").prompt("a b a b", seed=1).text()
        llm_notebook.get_model("markov").prompt("b a b a", seed=1).text()
    messages = [str(w.message) for w in caught if w.category is budget.BudgetWarning]
    assert len(messages) == 1
    assert "cannot count requests to 'markov'" in messages[0] and "set_price" in messages[0]


def test_preview_shows_what_would_be_sent_and_sends_nothing(priced, monkeypatch):
    from PIL import Image

    model = llm_notebook.get_model("gpt-4o")
    monkeypatch.setattr(model, "supports_schema", True)  # as a model with structured output
    monkeypatch.setattr(model, "supports_tools", True)

    picture = Image.fromarray(np.zeros((1000, 4000, 3), dtype=np.uint8))
    tool = Tool(name="lookup", description="Look a word up", input_schema={"type": "object"})
    response = model.prompt(
        "Describe the chart", system="Be brief", attachments=[picture], tools=[tool],
        schema={"type": "object", "properties": {"summary": {"type": "string"}}}, max_tokens=50)
    shown = preview(response)
    assert [m.role for m in shown.messages] == ["system", "user"]
    assert [(a.type, a.width, a.height) for a in shown.attachments] == [("image/png", 2048, 512)]
    assert shown.attachments[0].size == response.attachments[0].size()
    assert shown.tools == ["lookup"] and shown.schema["properties"]["summary"]
    assert not shown.input_tokens.exact and shown.input_tokens.count > 2048 * 512 // 750
    assert shown.output_tokens == 50
    assert shown.cost.known and shown.cost.estimated
    text = shown._repr_markdown_()
    assert "Describe the chart" in text and "image/png" in text and "2048×512 px" in text
    assert "(estimated)" in shown.summary()
    assert priced.requests == [] and response.status == "pending"


def test_a_preview_without_a_price_says_its_cost_is_unknown_and_why():
    shown = preview(llm_notebook.get_model("markov").prompt("what would this cost?"))
    assert "· cost unknown (no price known for 'markov'" in shown.summary()
    assert "about" not in shown.summary()


def test_preview_check_refuses_or_hands_the_response_back(priced):
    with pytest.raises(BudgetExceeded, match=r"would cost about \$0\.0\d+, more than \$0\.001"):
        preview(ask("hello there", max_tokens=20)).check(0.001)
    assert priced.requests == []
    assert preview(ask("hello there", max_tokens=20)).check(1.0).text() == \
        "Hello from the fake server."
    assert len(priced.requests) == 1


def test_preview_check_refuses_an_unknown_cost():
    with pytest.raises(BudgetExceeded, match="unknown"):
        preview(llm_notebook.get_model("echo").prompt("hi")).check(100)


class Counting(llm_notebook.Model):
    """A model that can count its own tokens (one per word), as a provider's endpoint would."""

    model_id = "counting"

    def __init__(self, broken=False):
        self.broken = broken

    def count_tokens(self, prompt):
        if self.broken:
            raise RuntimeError("count endpoint down")
        return len((prompt.prompt or "").split())

    def execute(self, prompt, stream, response, conversation):
        raise AssertionError("a preview must not run the model")


def test_a_models_own_count_is_used_and_a_failing_one_falls_back_to_an_estimate():
    llm_notebook.register(Counting())
    counted = preview(llm_notebook.get_model("counting").prompt("one two three four five"))
    assert (counted.input_tokens.count, counted.input_tokens.exact) == (5, True)
    assert str(counted.input_tokens) == "5"
    llm_notebook.register(Counting(broken=True))
    estimated = preview(llm_notebook.get_model("counting").prompt("one two three four five"))
    assert not estimated.input_tokens.exact
    assert "count_tokens failed: RuntimeError: count endpoint down" in estimated.input_tokens.how


@pytest.fixture
def slow_priced(monkeypatch):
    server = SlowServer().start()
    llm_notebook.register(*loopback_models(server.url, "loopback"))
    prices.set_price("loopback", input=1000, output=1000)
    monkeypatch.setattr(settings, "cache", "replay")
    monkeypatch.setattr(settings, "budget", None)
    yield server
    server.stop()


def test_a_map_stops_at_its_budget_keeps_every_row_and_resumes(slow_priced):
    rows = [f"item {i}" for i in range(20)]
    with pytest.raises(batch.MapBudgetReached) as raised:
        llm_notebook.map("{}", rows, model="loopback", concurrency=1, max_cost=0.05,
                         progress=False)
    stopped = raised.value.result
    answered = [i for i, text in enumerate(stopped) if text is not None]
    assert 0 < len(answered) < len(rows) and answered == list(range(len(answered)))
    assert slow_priced.requests == len(answered)
    message = str(raised.value)
    assert f"{len(answered)} of 20 rows have answers" in message
    assert "run the same map again with a larger max_cost=" in message
    assert llm_notebook.last_map() is stopped
    assert stopped.errors[19] == "not sent: the map stopped at its budget"

    plan = llm_notebook.map("{}", rows, model="loopback", dry_run=True)
    assert (plan.replayed, plan.to_send) == (len(answered), 20 - len(answered))
    assert plan.cost.known and plan.input_tokens > 0
    assert slow_priced.requests == len(answered)

    resumed = llm_notebook.map("{}", rows, model="loopback", concurrency=4, max_cost=10,
                               progress=False)
    assert all(text is not None for text in resumed)
    assert resumed[:len(answered)] == stopped[:len(answered)]
    assert (resumed.replayed, resumed.sent) == (len(answered), 20 - len(answered))
    assert slow_priced.requests == 20


def test_retry_failed_continues_a_stopped_map_with_a_new_budget(slow_priced, monkeypatch):
    monkeypatch.setattr(settings, "cache", "off")
    with pytest.raises(batch.MapBudgetReached, match="retry_failed"):
        llm_notebook.map("{}", list(range(10)), model="loopback", concurrency=1, max_cost=0.05,
                         progress=False)
    first = slow_priced.requests
    finished = llm_notebook.last_map().retry_failed(max_cost=None)
    assert all(text is not None for text in finished)
    assert slow_priced.requests == 10 and first < 10


def test_a_bad_max_cost_fails_before_any_request(slow_priced, monkeypatch):
    with pytest.raises(budget.BudgetError, match="the map's max_cost must be dollars"):
        llm_notebook.map("{}", [1, 2], model="loopback", max_cost=-1, progress=False)
    monkeypatch.setattr(settings, "budget", "lots")
    with pytest.raises(budget.BudgetError) as raised:
        llm_notebook.get_model("loopback").prompt("hi").text()
    assert str(raised.value) == ("llm_notebook.settings.budget must be dollars, a number of 0 or "
                                 "more (got 'lots')")
    assert slow_priced.requests == 0


def test_a_dry_run_with_no_cap_guesses_the_output_and_says_so(monkeypatch):
    """Before the model has answered, an uncapped map is not projected to cost nothing for its
    output; a cap makes the projection a bound."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-dry-run-0123456789")
    rows = [f"row {i}" for i in range(10)]
    guessed = llm_notebook.map("{}", rows, model="gpt-4o-mini", dry_run=True)
    assert guessed.output_tokens == 10 * budget.GUESSED_OUTPUT_TOKENS
    assert f"guessed at {budget.GUESSED_OUTPUT_TOKENS} a row" in guessed.summary()
    capped = llm_notebook.map("{}", rows, model="gpt-4o-mini", dry_run=True, max_tokens=20)
    assert capped.output_tokens == 200 and "guessed" not in capped.summary()
    assert capped.cost.dollars < guessed.cost.dollars
