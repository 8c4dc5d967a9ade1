"""llm_notebook.map: a template over lists and pandas data, concurrently, keeping what finished."""

import asyncio
import json
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import llm_notebook
from llm_notebook import batch
from llm_notebook.errors import OptionsError, UnknownModelError
from tests.support.slow_server import SlowServer, loopback_models

ROOT = Path(__file__).resolve().parent.parent


class Tally:
    """Counts calls and the most calls in flight at once, across threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls: list[str] = []
        self.now = self.most = 0

    def enter(self, text):
        with self.lock:
            self.calls.append(text)
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self):
        with self.lock:
            self.now -= 1


class Slowly(llm_notebook.AsyncModel):
    """Answers `text!`, sleeping longer for earlier items so they finish last; fails on 'bad'."""

    model_id = "slowly"

    def __init__(self):
        self.tally = Tally()

    async def execute(self, prompt, stream, response, conversation):
        self.tally.enter(prompt.prompt)
        try:
            await asyncio.sleep(0.1 / (1 + len(self.tally.calls) % 4))
            if "bad" in prompt.prompt:
                raise RuntimeError(f"cannot answer {prompt.prompt}")
            yield prompt.prompt + "!"
            response.set_usage(input=2, output=1, details={"cached": 1})
        finally:
            self.tally.leave()


class SyncOnly(llm_notebook.Model):
    model_id = "sync-only"

    def __init__(self):
        self.tally = Tally()
        self.threads = set()

    def execute(self, prompt, stream, response, conversation):
        self.tally.enter(prompt.prompt)
        self.threads.add(threading.get_ident())
        try:
            time.sleep(0.1)
            yield prompt.prompt.upper()
        finally:
            self.tally.leave()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(batch, "RETRY_DELAY", 0.01)


def test_list_keeps_input_order_and_limits_concurrency():
    model = Slowly()
    items = [f"item {i}" for i in range(20)]
    answers = llm_notebook.map("{}", items, model=model, concurrency=5, progress=False)
    assert answers == [f"item {i}!" for i in range(20)]
    assert isinstance(answers, list) and answers.errors == {}
    assert model.tally.most == 5 and len(model.tally.calls) == 20
    assert answers.usage == llm_notebook.Usage(input=40, output=20, details={"cached": 20})
    assert [r.status for r in answers.responses] == ["done"] * 20


@pytest.fixture
def registered():
    """Models registered by a test leave the registry with it."""
    from llm_notebook.plugins import registry

    ids = []

    def register(model, async_model=None):
        ids.append(registry.register(model, async_model).model_id)

    yield register
    for model_id in ids:
        registry.unregister(model_id)


def test_registered_model_by_name_prefers_its_async_variant(registered):
    sync_twin = SyncOnly()
    sync_twin.model_id = "slowly"
    registered(sync_twin, Slowly())
    answers = llm_notebook.map("hi {item}", ["a", "b"], model="slowly", progress=False)
    assert answers == ["hi a!", "hi b!"]
    assert isinstance(answers.responses[0], llm_notebook.AsyncResponse)


def test_sync_only_model_runs_in_worker_threads_concurrently(registered):
    model = SyncOnly()
    registered(model)
    answers = llm_notebook.map("{}", [f"x{i}" for i in range(8)], model="sync-only",
                               concurrency=8, progress=False)
    assert answers == [f"X{i}" for i in range(8)]
    assert model.tally.most >= 4 and len(model.threads) >= 4
    assert threading.get_ident() not in model.threads


def test_dataframe_columns_by_name_give_a_series_with_the_index():
    frame = pd.DataFrame({"name": ["Ada", "Bob", "Cy"], "job": ["math", "art", "law"]},
                         index=pd.Index([10, 20, 30], name="id"))
    answers = llm_notebook.map("{name} does {job}", frame, model=Slowly(), progress=False)
    assert isinstance(answers, pd.Series)
    assert answers.index.equals(frame.index)
    assert answers.to_dict() == {10: "Ada does math!", 20: "Bob does art!", 30: "Cy does law!"}
    frame["answer"] = answers
    assert frame.loc[20, "answer"] == "Bob does art!"
    assert answers.usage.input == 6


def test_series_keeps_index_and_name_and_stays_a_series_after_pickling():
    series = pd.Series(["red", "green"], index=["a", "b"], name="colour")
    answers = llm_notebook.map("{}", series, model=Slowly(), progress=False)
    assert answers.name == "colour" and list(answers.index) == ["a", "b"]
    assert list(answers) == ["red!", "green!"]
    assert type(answers.head(1)) is pd.Series
    loaded = pickle.loads(pickle.dumps(answers))
    assert loaded.equals(answers)
    with pytest.raises(ValueError, match="keeps only the texts"):
        loaded.retry_failed()


def test_list_of_dicts_fills_fields_by_key():
    rows = [{"city": "Oslo", "n": 1}, {"city": "Lima", "n": 2}]
    assert llm_notebook.map("{n}. {city}", rows, model=Slowly(), progress=False) == \
        ["1. Oslo!", "2. Lima!"]


def test_failed_items_record_errors_after_retries_and_retry_only_those():
    model = Slowly()
    items = ["good 0", "bad 1", "good 2", "bad 3"]
    answers = llm_notebook.map("{}", items, model=model, retries=2, progress=False)
    assert answers == ["good 0!", None, "good 2!", None]
    assert set(answers.errors) == {1, 3}
    assert "cannot answer bad 1" in answers.errors[1]
    assert model.tally.calls.count("bad 1") == 3 and model.tally.calls.count("good 0") == 1
    assert answers.responses[1].status == "error"

    model.tally.calls.clear()
    items_fixed = answers.retry_failed()
    assert model.tally.calls.count("good 0") == 0 and model.tally.calls.count("bad 1") == 3
    assert items_fixed[0] == "good 0!" and items_fixed.errors.keys() == {1, 3}
    assert answers.errors.keys() == {1, 3}  # the first result is left as it was


def test_a_retry_that_succeeds_fills_the_gap():
    class Flaky(llm_notebook.AsyncModel):
        model_id = "flaky"
        seen: dict = {}

        async def execute(self, prompt, stream, response, conversation):
            self.seen[prompt.prompt] = self.seen.get(prompt.prompt, 0) + 1
            if self.seen[prompt.prompt] < 2:
                raise ConnectionError("try again")
            yield "ok " + prompt.prompt

    answers = llm_notebook.map("{}", ["a", "b"], model=Flaky(), retries=1, progress=False)
    assert answers == ["ok a", "ok b"] and answers.errors == {}
    assert sum(len(r) for r in answers._batch.attempts) == 4


def test_bad_template_options_or_model_fail_before_any_request():
    model = Slowly()
    frame = pd.DataFrame({"name": ["Ada"]})
    with pytest.raises(batch.TemplateError, match=r"asks for \{nme\}.*its fields: name"):
        llm_notebook.map("{nme}", frame, model=model, progress=False)
    with pytest.raises(batch.TemplateError, match=r"write \{name\}"):
        llm_notebook.map("{}", frame, model=model, progress=False)
    with pytest.raises(batch.TemplateError, match="literal braces"):
        llm_notebook.map("{", ["x"], model=model, progress=False)
    with pytest.raises(OptionsError, match="unknown option 'temperature'"):
        llm_notebook.map("{}", ["x"], model=model, temperature=1, progress=False)
    with pytest.raises(UnknownModelError, match="Unknown model 'nope'"):
        llm_notebook.map("{}", ["x"], model="nope", progress=False)
    with pytest.raises(TypeError, match="wrap it in a list"):
        llm_notebook.map("{}", "abc", model=model, progress=False)
    with pytest.raises(TypeError, match=r"items is a dict: pass pandas.Series\(items\)"):
        llm_notebook.map("{}", {"a": 1}, model=model, progress=False)
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        llm_notebook.map("{}", ["x"], model=model, concurrency=0)
    assert model.tally.calls == []


def test_options_system_and_attachments_reach_every_prompt(tmp_path):
    image = tmp_path / "dot.png"
    from PIL import Image

    Image.new("RGB", (3, 2), "red").save(image)
    answers = llm_notebook.map("Q{}", [1, 2], model="echo", system="be brief",
                               attachments=[str(image)], delay=0.0, progress=False)
    for text in answers:
        assert "**System**" in text and "be brief" in text
        assert "image/png" in text and "3×2 px" in text and "`delay`" in text


def test_empty_input_gives_an_empty_result():
    answers = llm_notebook.map("{}", [], model="echo", progress=False)
    assert answers == [] and answers.errors == {} and answers.usage.input is None


def test_progress_bar_renders_in_a_terminal(capsys):
    llm_notebook.map("{}", ["a", "b", "c"], model=Slowly(), progress=True)
    err = capsys.readouterr().err
    assert "slowly" in err and "3/3" in err


def test_a_sync_model_over_loopback_http():
    server = SlowServer(hold_until=10).start()  # no answer until all ten are asked at once
    try:
        sync_model, _ = loopback_models(server.url)
        answers = llm_notebook.map("q{}", range(10), model=sync_model, concurrency=10,
                                   progress=False)
        assert answers == [f"w0 w1 w2 w3 q{i}" for i in range(10)]
        assert server.most_in_flight == 10
        assert answers.usage == llm_notebook.Usage(input=30, output=50)
    finally:
        server.stop()


_INTERRUPT_SCRIPT = """
import json, os, signal, sys, threading
sys.path.insert(0, {root!r})
import llm_notebook
from tests.support.slow_server import SlowServer, loopback_models
server = SlowServer(interval=0.1, words=5).start()
_, model = loopback_models(server.url)


def interrupt_once_eight_were_asked():  # a kernel interrupt while map is under way
    server.wait_for(lambda s: s.requests >= 8)
    os.kill(os.getpid(), signal.SIGINT)


threading.Thread(target=interrupt_once_eight_were_asked, daemon=True).start()
try:
    llm_notebook.map("{{}}", list(range(30)), model=model, concurrency=4, progress=False)
except llm_notebook.MapInterrupted as exc:
    partial = exc.result
    message = str(exc)
server.wait_for(lambda s: s.in_flight == 0)
assert llm_notebook.last_map() is partial
finished = [i for i, text in enumerate(partial) if text is not None]
interrupted = [r.status for r in partial.responses if r is not None and r.status != "done"]
rest = partial.retry_failed()
print(json.dumps({{"message": message, "finished": finished, "errors": sorted(set(partial.errors.values())),
                  "interrupted": interrupted, "in_flight": server.in_flight,
                  "rest": rest.errors, "rest_texts": sum(t is not None for t in rest)}}))
"""


def test_interrupt_cancels_in_flight_keeps_finished_and_retry_runs_the_rest():
    """A real SIGINT while map waits, as a kernel interrupt sends."""
    script = _INTERRUPT_SCRIPT.format(root=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # 4 at a time, interrupted once the eighth was asked: at least four had finished
    assert 4 <= len(result["finished"]) <= 26
    assert "answers finished, which are kept" in result["message"]
    assert result["errors"] == ["interrupted", "not started"]
    assert result["interrupted"] == ["interrupted"] * 4
    assert result["in_flight"] == 0
    assert result["rest"] == {} and result["rest_texts"] == 30


def test_the_progress_display_ends_with_how_rows_were_answered_and_their_cost(capsys):
    """Run again, a map's last progress line says which rows the cache answered, how many were
    sent, and what the sent ones cost."""
    llm_notebook.set_price("echo", input=1_000_000, output=1_000_000)  # a dollar a token
    with llm_notebook.cache.mode("replay"):
        llm_notebook.map("say {}", ["a", "b"], model="echo")
        capsys.readouterr()
        again = llm_notebook.map("say {}", ["a", "b", "c"], model="echo")
    final = capsys.readouterr().err.rsplit("\r", 1)[-1]
    cost = llm_notebook.prices.cost(again.responses[2])
    assert again.replayed == 2 and again.sent == 1 and cost.known
    assert f"2 replayed, 1 sent · {cost}" in final


def test_a_key_given_to_map_is_masked_in_every_frame_of_its_traceback():
    """What a verbose traceback shows: the locals of each frame, none holding the key as text."""
    canary = "sk-map-canary-0123456789abcdef"
    with pytest.raises(OptionsError) as failure:
        llm_notebook.map("{}", ["a"], model="echo", key=canary, no_such_option=1)
    frame, shown = failure.tb.tb_next, []  # from map's frame on (this one holds the canary)
    while frame is not None:
        shown.append(repr(frame.tb_frame.f_locals))
        frame = frame.tb_next
    assert shown and canary not in "".join(shown)
