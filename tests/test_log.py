"""The SQLite log: every finished response, failures marked, and a broken log never fails a prompt."""

import asyncio
import sqlite3
import warnings

import pytest

import llm_notebook
from llm_notebook import Model
from llm_notebook.log import LogWarning


class Breaks(Model):
    model_id = "breaks"

    def execute(self, prompt, stream, response, conversation):
        yield "partial "
        yield "answer"
        raise ConnectionError("stream cut")


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


def test_corrupt_log_warns_once_and_prompt_still_works(user_dir):
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "logs.db").write_bytes(b"this is not a database" * 100)
    llm_notebook.log._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert "ok" in llm_notebook.get_model("echo").prompt("ok").text()
        assert "again" in llm_notebook.get_model("echo").prompt("again").text()
        llm_notebook.log.flush()
    messages = [str(w.message) for w in caught if issubclass(w.category, LogWarning)]
    assert len(messages) == 1
    assert "could not write the log" in messages[0] and "the answer is unaffected" in messages[0]


def test_locked_log_warns_and_prompt_still_works(user_dir):
    llm_notebook.get_model("echo").prompt("create the db").text()
    llm_notebook.log.flush()
    holder = sqlite3.connect(user_dir / "logs.db")
    holder.execute("BEGIN EXCLUSIVE")
    llm_notebook.log._warned.clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert "locked" in llm_notebook.get_model("echo").prompt("locked").text()
            llm_notebook.log.flush()
    finally:
        holder.rollback()
        holder.close()
    assert [w for w in caught if "database is locked" in str(w.message)]


def test_log_writes_do_not_block_an_event_loop(monkeypatch):
    """Rows are written by the log's own thread: finishing a response only queues its row."""
    import threading

    llm_notebook.log.flush()
    written_on = []
    release = threading.Event()
    real_write = llm_notebook.log._write

    def held_write(path, rows):
        written_on.append(threading.current_thread().name)
        release.wait(30)
        real_write(path, rows)

    monkeypatch.setattr(llm_notebook.log, "_write", held_write)

    async def run():
        await llm_notebook.get_async_model("echo").prompt("quick")

    asyncio.run(run())  # returns although the write is held back
    assert llm_notebook.log._writer._queue.unfinished_tasks == 1
    release.set()
    assert [row["prompt"] for row in llm_notebook.logs(1)] == ["quick"]
    assert written_on == ["llm_notebook-log"]
