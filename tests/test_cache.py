"""The answer cache in one process: modes, what makes two requests the same, exact replays."""

import asyncio
import json
import sqlite3
import threading

import pytest

import llm_notebook
from llm_notebook import cache, runner, store
from llm_notebook.parts import ReasoningPart, StreamEvent, TextPart, ToolCallPart
from llm_notebook.settings import settings
from llm_notebook.tools import Tool, ToolCall


class Scripted(llm_notebook.Model):
    """An offline model that counts its calls and answers differently each time."""

    model_id = "scripted"
    attachment_types = {"image/png", "text/plain"}

    class Options(llm_notebook.Options):
        flavour: str = "plain"

    def __init__(self, *, parts: bool = False, fail: bool = False):
        self.calls = 0
        self.parts, self.fail = parts, fail

    def execute(self, prompt, stream, response, conversation):
        self.calls += 1
        if self.parts:
            yield StreamEvent("reasoning", "thinking it over", provider_metadata={"sig": "s1"})
            yield StreamEvent("text", f"answer {self.calls}")
            yield StreamEvent("tool_call_name", "lookup", tool_call_id="call-1")
            yield StreamEvent("tool_call_args", '{"q": "x"}', tool_call_id="call-1")
            response.add_tool_call(ToolCall(name="extra", arguments={"n": 1}, tool_call_id="c2"))
            response.response_json = {"id": "raw", "calls": self.calls}
            response.set_resolved_model("scripted-2026")
        else:
            yield f"answer {self.calls} "
            yield f"to {prompt.prompt}"
        if self.fail:
            raise RuntimeError("the model broke")
        response.set_usage(input=7, output=3, details={"cached_tokens": 2})


class AsyncScripted(llm_notebook.AsyncModel):
    model_id = "scripted"

    class Options(llm_notebook.Options):
        flavour: str = "plain"

    def __init__(self):
        self.calls = 0

    async def execute(self, prompt, stream, response, conversation):
        self.calls += 1
        yield f"async answer {self.calls}"


@pytest.fixture
def scripted(monkeypatch):
    model = Scripted()
    llm_notebook.register(model, AsyncScripted())
    monkeypatch.setattr(settings, "cache", "replay")
    yield model
    cache.stop_using()


def ask(text="hi", **kwargs):
    return llm_notebook.get_model("scripted").prompt(text, **kwargs)


def test_an_identical_request_replays_the_stored_answer(scripted):
    first = ask("hello")
    assert first.text() == "answer 1 to hello"
    again = ask("hello")
    assert again.text() == "answer 1 to hello"
    assert scripted.calls == 1
    assert again.usage() == first.usage()
    assert first.replayed is None
    assert again.replayed["key"] == cache.key_of(first) == cache.key_of(again)
    assert again.replayed["saved_tokens"] == 10
    assert again.replayed["datetime_utc"] == first.datetime_utc()


def test_the_answer_is_written_to_the_database(scripted, user_dir):
    first = ask("hello")
    first.text()
    assert store.flush(10)
    with sqlite3.connect(user_dir / "logs.db") as database:
        rows = database.execute("SELECT model, input_tokens, output_tokens, answer FROM answers "
                                "WHERE key = ?", (cache.key_of(first),)).fetchall()
    assert [row[:3] for row in rows] == [("scripted", 7, 3)]
    assert json.loads(rows[0][3])["chunks"] == ["answer 1 to hello"]
    replayed = ask("hello")
    assert replayed.text() == "answer 1 to hello"
    assert scripted.calls == 1


@pytest.mark.parametrize("change", [
    {"text": "other"}, {"system": "be brief"}, {"flavour": "salty"},
    {"schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
    {"tools": [Tool(name="t", description="a tool", input_schema={"type": "object"})]},
    {"attachments": [llm_notebook.Attachment(type="text/plain", content=b"one")]},
])
def test_anything_that_changes_the_request_misses(scripted, change, monkeypatch):
    monkeypatch.setattr(Scripted, "supports_schema", True, raising=False)
    monkeypatch.setattr(Scripted, "supports_tools", True, raising=False)
    ask("hello").text()
    kwargs = dict(change)
    text = kwargs.pop("text", "hello")
    assert ask(text, **kwargs).text() == f"answer 2 to {text}"
    assert scripted.calls == 2


def test_attachments_are_keyed_by_their_content_not_their_path(scripted, tmp_path):
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_bytes(b"same bytes")
    two.write_bytes(b"same bytes")
    ask("read", attachments=[llm_notebook.Attachment(path=str(one))]).text()
    same = ask("read", attachments=[llm_notebook.Attachment(path=str(two))])
    assert same.text() == "answer 1 to read" and same.replayed
    two.write_bytes(b"other bytes")
    assert ask("read", attachments=[llm_notebook.Attachment(path=str(two))]).text() \
        == "answer 2 to read"


def test_earlier_turns_are_part_of_the_request(scripted):
    model = llm_notebook.get_model("scripted")
    first = model.conversation()
    first.prompt("one").text()
    first.prompt("two").text()
    other = model.conversation()
    other.prompt("something else").text()
    assert other.prompt("two").text() == "answer 4 to two"  # same text, other history
    again = model.conversation()
    again.prompt("one").text()
    assert again.prompt("two").text() == first.responses[1].text()


def test_parts_tool_calls_and_raw_json_rebuild_exactly(monkeypatch):
    monkeypatch.setattr(settings, "cache", "replay")
    model = Scripted(parts=True)
    llm_notebook.register(model)
    first = ask()
    first.text()
    assert store.flush(10)
    again = ask()
    assert again.text() == first.text() == "answer 1"
    assert again.parts_so_far() == first.parts_so_far()
    assert [type(p) for p in again.parts_so_far()] == [ReasoningPart, TextPart, ToolCallPart]
    assert again.parts_so_far()[0].provider_metadata == {"sig": "s1"}
    assert again.tool_calls() == first.tool_calls()
    assert again.messages == first.messages
    assert again.json() == {"id": "raw", "calls": 1}
    assert again.resolved_model == "scripted-2026"
    assert model.calls == 1


def test_off_neither_replays_nor_stores(scripted, monkeypatch):
    monkeypatch.setattr(settings, "cache", "off")
    ask().text()
    ask().text()
    assert scripted.calls == 2
    monkeypatch.setattr(settings, "cache", "replay")
    assert ask().text() == "answer 3 to hi"


def test_refresh_asks_again_and_replaces_the_stored_answer(scripted):
    ask().text()
    with cache.mode("refresh"):
        assert ask().text() == "answer 2 to hi"
    assert ask().text() == "answer 2 to hi"
    assert store.flush(10)
    assert ask().text() == "answer 2 to hi"
    assert scripted.calls == 2


def test_only_never_asks_and_a_miss_says_how_to_change_the_mode(scripted, monkeypatch):
    ask("known").text()
    monkeypatch.setattr(settings, "cache", "only")
    assert ask("known").text() == "answer 1 to known"
    with pytest.raises(cache.CacheMiss) as raised:
        ask("new").text()
    message = str(raised.value)
    assert "'scripted'" in message and '"only"' in message and 'settings.cache = "replay"' in message
    assert "\n" not in message
    assert scripted.calls == 1


def test_failed_and_interrupted_answers_are_not_stored(monkeypatch):
    monkeypatch.setattr(settings, "cache", "replay")
    broken = Scripted(fail=True)
    llm_notebook.register(broken)
    with pytest.raises(llm_notebook.ModelError):
        ask().text()
    stopped = ask()
    for _ in stopped:
        stopped.interrupt()
    assert stopped.status == "interrupted"
    with pytest.raises(llm_notebook.ModelError):
        ask().text()
    assert broken.calls == 3


def test_a_response_kept_out_of_the_log_is_kept_out_of_the_cache(scripted, monkeypatch):
    monkeypatch.setattr(settings, "log", False)
    ask().text()
    monkeypatch.setattr(settings, "log", True)
    assert ask().text() == "answer 2 to hi"
    replayed = ask()
    assert replayed.text() == "answer 2 to hi" and replayed.replayed is not None


def test_auto_is_off_in_a_plain_process(scripted, monkeypatch):
    monkeypatch.setattr(settings, "cache", "auto")
    assert cache.current_mode() == "off"
    ask().text()
    ask().text()
    assert scripted.calls == 2


def test_a_bad_mode_is_one_clear_line(scripted, monkeypatch):
    monkeypatch.setattr(settings, "cache", "sometimes")
    with pytest.raises(cache.CacheModeError) as raised:
        ask().text()
    assert str(raised.value) == ("llm_notebook.settings.cache is 'sometimes': use one of replay, "
                                 "off, refresh, only, auto")
    with pytest.raises(ValueError, match="cache.mode"):
        with cache.mode("never"):
            pass


def test_mode_is_local_to_the_thread_that_set_it(scripted):
    ask().text()
    seen = []
    inside, checked = threading.Event(), threading.Event()

    def other_thread():
        inside.wait(10)
        seen.append((cache.current_mode(), ask().text()))
        checked.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    with cache.mode("refresh"):
        inside.set()
        checked.wait(10)
        assert ask().text() == "answer 2 to hi"
    worker.join(10)
    assert seen == [("replay", "answer 1 to hi")]


def test_mode_follows_work_handed_to_the_runner(scripted):
    model = llm_notebook.get_async_model("scripted")
    assert runner.run(model.prompt("a").text()) == "async answer 1"
    assert runner.run(model.prompt("a").text()) == "async answer 1"
    with cache.mode("refresh"):
        assert runner.run(model.prompt("a").text()) == "async answer 2"


def test_sync_and_async_models_share_answers(scripted):
    assert ask("shared").text() == "answer 1 to shared"
    model = llm_notebook.get_async_model("scripted")
    assert asyncio.run(model.prompt("shared").text()) == "answer 1 to shared"


def test_the_replayed_line(scripted):
    ask().text()
    again = ask()
    again.text()
    line = cache.replayed_line(again)
    assert line.startswith("replayed from 20") and line.endswith("· saved 10 tokens")
    assert cache.replayed_line({"datetime_utc": "2026-11-30T14:02:00+00:00", "saved_tokens": 1234,
                                "saved_cost": 0.004}).endswith("· saved 1,234 tokens, $0.004")
    assert cache.replayed_line(None) == ""
