"""The SQLite log: every finished response, failures marked, and a broken log never fails a prompt."""

import asyncio
import sqlite3
import warnings

import pytest

import llm_notebook
from llm_notebook import Model, store
from llm_notebook.log import LogWarning

LEGACY_SCHEMA = """
CREATE TABLE responses (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, status TEXT NOT NULL, error TEXT, prompt TEXT,
    system TEXT, options TEXT, text TEXT, input_tokens INTEGER, output_tokens INTEGER,
    usage_details TEXT, duration_ms INTEGER, datetime_utc TEXT, conversation_id TEXT,
    attachments TEXT);
CREATE INDEX responses_datetime ON responses (datetime_utc);
INSERT INTO responses VALUES ('0000old', 'echo', 'done', NULL, 'from an old release', NULL, '{}',
    'its answer', 3, 4, NULL, 12, '2024-01-01T00:00:00+00:00', NULL, '[]');
"""


class Breaks(Model):
    model_id = "breaks"

    def execute(self, prompt, stream, response, conversation):
        yield "partial "
        yield "answer"
        raise ConnectionError("stream cut")


class HugeCount(Model):
    """A plugin reporting a token count SQLite cannot hold (more than 64 bits)."""

    model_id = "huge-count"

    def execute(self, prompt, stream, response, conversation):
        yield "counted"
        response.set_usage(input=10**30, output=1)


@pytest.fixture
def log_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield lambda: [str(w.message) for w in caught if issubclass(w.category, LogWarning)]


@pytest.fixture
def lock_holder(user_dir):
    """Another connection to the log, which the test locks and unlocks."""
    llm_notebook.get_model("echo").prompt("create the log").text()
    assert llm_notebook.log.flush(timeout=30)
    holder = sqlite3.connect(user_dir / "logs.db", isolation_level=None)
    yield holder
    if holder.in_transaction:
        holder.execute("ROLLBACK")
    holder.close()


def echo(prompt):
    return llm_notebook.get_model("echo").prompt(prompt)


def test_sync_and_async_responses_are_logged_with_details(user_dir):
    response = llm_notebook.get_model("echo").prompt("hello", system="sys", delay=0,
                                                     attachments=[b"%PDF-1.4\n"])
    response.text()
    asyncio.run(llm_notebook.get_async_model("markov").prompt("a b c", seed=3).text())
    async_row, row = llm_notebook.logs(2)
    assert async_row["model"] == "markov" and async_row["options"] == {"seed": 3}
    assert row["id"] == response.id and row["status"] == "done"
    assert (row["prompt"], row["system"], row["options"]) == ("hello", "sys", {"delay": 0.0})
    assert row["text"] == response.text() and row["input_tokens"] == 2
    assert row["attachments"] == [{"id": response.attachments[0].id(), "type": "application/pdf", "size": 9}]
    assert row["duration_ms"] >= 0 and row["datetime_utc"].startswith("20")
    assert row["first_chunk_ms"] is not None and row["first_chunk_ms"] == response.first_chunk_ms()
    assert (user_dir / "logs.db").exists()


def test_conversation_id_is_logged():
    conversation = llm_notebook.get_model("echo").conversation()
    conversation.prompt("one").text()
    assert llm_notebook.logs(1, conversation_id=conversation.id)[0]["prompt"] == "one"


def test_failed_response_keeps_partial_text_and_is_marked():
    response = Breaks().prompt("x")
    with pytest.raises(llm_notebook.ModelError, match="Model 'breaks' failed: ConnectionError: stream cut"):
        response.text()
    assert response.text() == "partial answer" and response.status == "error"
    row = llm_notebook.logs(1)[0]
    assert (row["status"], row["text"]) == ("error", "partial answer")
    assert "stream cut" in row["error"]


def test_interrupted_response_is_logged_as_interrupted():
    response = llm_notebook.get_model("markov").prompt("a b c d", length=50, seed=1)
    for index, _ in enumerate(response):
        if index == 2:
            break
    assert response.status == "interrupted"
    row = llm_notebook.logs(1)[0]
    assert row["status"] == "interrupted" and len(row["text"].split()) == 3


def test_keyboard_interrupt_marks_interrupted():
    class Interrupted(Model):
        model_id = "ctrl-c"

        def execute(self, prompt, stream, response, conversation):
            yield "so far"
            raise KeyboardInterrupt

    response = Interrupted().prompt("x")
    with pytest.raises(KeyboardInterrupt):
        response.text()
    assert response.status == "interrupted" and response.text() == "so far"
    assert llm_notebook.logs(1)[0]["status"] == "interrupted"


def test_logging_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(llm_notebook.settings, "log", False)
    llm_notebook.get_model("echo").prompt("not logged").text()
    assert llm_notebook.logs() == []
    response = llm_notebook.get_model("echo").prompt("per response")
    response.log_enabled = True
    response.text()
    assert [r["prompt"] for r in llm_notebook.logs()] == ["per response"]


def test_corrupt_log_warns_once_and_prompt_still_works(user_dir, log_warnings):
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "logs.db").write_bytes(b"this is not a database" * 100)
    assert "ok" in echo("ok").text()
    assert llm_notebook.log.flush(timeout=30)
    assert "again" in echo("again").text()
    assert llm_notebook.log.flush(timeout=30)
    [message] = log_warnings()
    assert "could not write the log" in message and "the answer is unaffected" in message
    assert (user_dir / "logs.db").read_bytes() == b"this is not a database" * 100


def test_uncreatable_user_dir_warns_once_and_answers_are_unaffected(tmp_path, monkeypatch,
                                                                     log_warnings):
    (tmp_path / "a-file").write_text("a file where the user folder's parent should be")
    monkeypatch.setenv("LLM_NOTEBOOK_USER_PATH", str(tmp_path / "a-file" / "user"))
    first, second = echo("first"), echo("second")
    assert "first" in first.text() and "second" in second.text()
    assert first.status == second.status == "done"
    assert llm_notebook.log.flush(timeout=30)
    [message] = log_warnings()
    assert "could not write the log" in message and "the answer is unaffected" in message


def test_a_key_in_a_prompt_never_reaches_the_log(user_dir):
    key = "sk-log-test-0123456789abcdef"
    llm_notebook.set_key("svc", key)
    response = echo(f"my key is {key}, keep it")
    assert key in response.text()  # the model was given it; the log must not keep it
    row = llm_notebook.logs(1)[0]
    assert row["prompt"] == "my key is ***, keep it" and key not in row["text"]
    database = b"".join(path.read_bytes() for path in user_dir.glob("logs.db*"))
    assert key.encode() not in database


def test_lone_surrogate_is_stored_replaced_and_the_rest_of_its_batch_too(log_warnings):
    prompts = [f"row {i}" for i in range(50)]
    prompts[20] = "bad \ud800 text"
    responses = [echo(prompt) for prompt in prompts]
    for response in responses:  # finished back to back: queued together, written as one batch
        response.text()
    later = echo("after the bad row")
    later.text()
    rows = {row["id"]: row for row in llm_notebook.logs(None)}
    assert set(rows) == {r.id for r in responses} | {later.id}
    assert rows[responses[20].id]["prompt"] == "bad \ufffd text"
    assert rows[responses[19].id]["prompt"] == "row 19"
    [message] = log_warnings()
    assert responses[20].id in message and "U+FFFD" in message


def test_a_row_sqlite_refuses_is_skipped_with_a_warning_naming_it(log_warnings):
    before, huge, after = echo("before"), HugeCount().prompt("count"), echo("after")
    for response in (before, huge, after):
        response.text()
    assert huge.text() == "counted" and huge.status == "done"
    assert {row["id"] for row in llm_notebook.logs(None)} == {before.id, after.id}
    [message] = log_warnings()
    assert f"could not write response {huge.id} to the log" in message
    assert "OverflowError" in message
    echo("the log goes on").text()
    assert llm_notebook.logs(1)[0]["prompt"] == "the log goes on"


def test_rows_wait_out_a_lock_longer_than_the_busy_timeout(lock_holder, log_warnings):
    lock_holder.execute("BEGIN EXCLUSIVE")
    queued = [echo(f"while locked {i}") for i in range(20)]
    for response in queued:
        assert "while locked" in response.text()
    for _ in range(int(store.BUSY_TIMEOUT * 4) + 20):  # bounded: it warns once it has waited
        if any("is locked by another program" in m for m in log_warnings()):
            break
        assert not llm_notebook.log.flush(timeout=0.5)  # nothing can be written while locked
    else:
        pytest.fail("the writer never said the log was locked")
    lock_holder.execute("ROLLBACK")
    assert llm_notebook.log.flush(timeout=30)
    prompts = {row["prompt"] for row in llm_notebook.logs(None)}
    assert prompts >= {f"while locked {i}" for i in range(20)}
    assert not [m for m in log_warnings() if "could not write" in m]


def test_finishing_a_response_never_waits_for_the_database(lock_holder):
    """An event loop finishing a response only queues its row, even while the log is locked."""
    lock_holder.execute("BEGIN EXCLUSIVE")

    async def run():
        return await llm_notebook.get_async_model("echo").prompt("quick").text()

    assert "quick" in asyncio.run(run())
    assert not llm_notebook.log.flush(timeout=0.2)
    lock_holder.execute("ROLLBACK")
    assert [row["prompt"] for row in llm_notebook.logs(1)] == ["quick"]


def test_a_log_removed_while_the_process_runs_is_created_again(user_dir):
    echo("before the removal").text()
    assert llm_notebook.log.flush(timeout=30)
    for name in ("logs.db", "logs.db-wal", "logs.db-shm"):
        (user_dir / name).unlink(missing_ok=True)
    echo("after the removal").text()
    assert [row["prompt"] for row in llm_notebook.logs(None)] == ["after the removal"]


def test_a_database_from_an_old_release_is_migrated_and_keeps_its_rows(user_dir):
    user_dir.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(user_dir / "logs.db")
    old.executescript(LEGACY_SCHEMA)
    old.close()
    response = echo("new")
    response.text()
    new_row, old_row = llm_notebook.logs(None)
    assert (old_row["id"], old_row["prompt"], old_row["text"]) == ("0000old", "from an old release",
                                                                 "its answer")
    assert old_row["first_chunk_ms"] is None and old_row["options"] == {}
    assert new_row["id"] == response.id and new_row["first_chunk_ms"] is not None
    check = sqlite3.connect(user_dir / "logs.db")
    assert check.execute("PRAGMA user_version").fetchone()[0] == len(store.MIGRATIONS)
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    check.close()


def test_a_database_from_a_newer_release_is_used_as_it_is(user_dir):
    echo("first").text()
    assert llm_notebook.log.flush(timeout=30)
    newer = sqlite3.connect(user_dir / "logs.db")
    newer.executescript("ALTER TABLE responses ADD COLUMN cost REAL; PRAGMA user_version = 99;")
    newer.close()
    echo("second").text()
    assert [row["prompt"] for row in llm_notebook.logs(None)] == ["second", "first"]
    check = sqlite3.connect(user_dir / "logs.db")
    assert check.execute("PRAGMA user_version").fetchone()[0] == 99
    check.close()


def test_the_log_keeps_reasoning_tool_calls_their_results_and_the_resolved_model():
    from llm_notebook.parts import StreamEvent
    from llm_notebook.tools import ToolCall

    class Thinks(llm_notebook.Model):
        model_id = "thinks"
        supports_tools = True

        def execute(self, prompt, stream, response, conversation):
            if prompt.tool_results:
                yield "it is 42"
                return
            yield StreamEvent(type="reasoning", chunk="let me look it up")
            response.add_tool_call(ToolCall(name="lookup", arguments={"q": "answer"},
                                            tool_call_id="call-1"))
            response.set_resolved_model("thinks-2026")

    def lookup(q: str) -> str:
        return "42"

    chain = Thinks().chain("what is the answer?", tools=[lookup])
    assert chain.text() == "it is 42"
    first, second = sorted(llm_notebook.logs(2), key=lambda row: row["id"])
    assert first["resolved_model"] == "thinks-2026"
    assert first["parts"][0] == {"type": "reasoning", "text": "let me look it up"}
    assert first["tool_calls"] == [{"name": "lookup", "arguments": {"q": "answer"},
                                    "tool_call_id": "call-1"}]
    [result] = second["tool_results"]
    assert result["output"] == "42" and result["tool_call_id"] == "call-1"
    assert result["duration_ms"] is not None
    assert second["parts"] is None and second["text"] == "it is 42"  # plain text: one column
