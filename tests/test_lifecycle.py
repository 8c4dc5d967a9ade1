"""The response lifecycle under stress: one start however many readers race, finishing as a
transaction that no side effect can undo, stops that take effect at once, and a runner loop that
no model can take down. Threads are really raced, in bounded loops."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings

import pytest

import llm_notebook
from llm_notebook import AsyncModel, Model, runner
from llm_notebook.responses import ObserverWarning, Status, on_finish


class Counting(Model):
    """Counts how often execute() ran; yields one chunk after a short pause."""

    model_id = "counting"

    def __init__(self) -> None:
        self.runs = 0

    def execute(self, prompt, stream, response, conversation):
        self.runs += 1
        time.sleep(0.0005)
        yield "x"


def test_racing_readers_run_execute_exactly_once():
    model = Counting()
    for _ in range(300):
        response = model.prompt("go")
        barrier = threading.Barrier(4)
        texts = []

        def read():
            barrier.wait()
            texts.append(response.text())

        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert texts == ["x"] * 4
    assert model.runs == 300


class Blocking(Model):
    """Yields "one ", then blocks inside the next chunk until released, then yields "late"."""

    model_id = "blocking"

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self.closed = threading.Event()

    def execute(self, prompt, stream, response, conversation):
        try:
            yield "one "
            self.inside.set()
            self.release.wait(30)
            yield "late"
            yield " later"
        finally:
            self.closed.set()


def test_stopping_a_sync_model_blocked_inside_a_chunk_ends_the_answer_at_once():
    model = Blocking()
    response = model.prompt("go")
    seen = []
    first = threading.Event()
    handle = runner.start(response, on_chunk=lambda chunk: (seen.append(chunk), first.set()))
    assert model.inside.wait(10) and first.wait(10)
    handle.cancel()
    # the answer ends now, while the model is still blocked
    assert handle.result(10) is response
    assert response.status == Status.INTERRUPTED and response.finished
    assert response.text() == "one "
    model.release.set()
    assert model.closed.wait(10)  # the abandoned worker stops at its next chunk
    assert response.text() == "one " and seen == ["one "]
    assert response.to_dict()["text"] == "one "


def test_interrupt_from_another_thread_discards_what_the_model_yields_afterwards():
    model = Blocking()
    response = model.prompt("go")
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(response))
    reader.start()
    assert model.inside.wait(10)
    assert response.interrupt("stopped by the user")
    assert not response.interrupt()  # only once
    model.release.set()
    reader.join(10)
    assert chunks == ["one "] and response.text_so_far() == "one "
    assert response.status == "interrupted" and response.error == "stopped by the user"


def test_a_failing_observer_is_a_warning_and_never_a_failed_answer_or_a_stuck_reader():
    def explode(response):
        raise OSError("the user directory cannot be created")

    unsubscribe = on_finish(explode)
    try:
        model = Blocking()
        response = model.prompt("go")
        other = []
        second = threading.Thread(target=lambda: other.append(response.text()))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = threading.Thread(target=lambda: list(response))
            first.start()
            assert model.inside.wait(10)
            second.start()
            model.release.set()
            first.join(10)
            second.join(10)
        assert not second.is_alive() and other == ["one late later"]
        assert response.status == "done" and response.text() == "one late later"
        assert any(issubclass(w.category, ObserverWarning) and "cannot be created" in str(w.message)
                   for w in caught)
    finally:
        unsubscribe()


class Exits(Model):
    model_id = "exits"

    def execute(self, prompt, stream, response, conversation):
        yield "before "
        raise SystemExit(3)


class AsyncExits(AsyncModel):
    model_id = "exits"

    async def execute(self, prompt, stream, response, conversation):
        yield "before "
        raise SystemExit(3)


@pytest.mark.parametrize("model", [Exits(), AsyncExits()], ids=["sync", "async"])
def test_system_exit_in_a_model_never_stops_the_runner_loop(model):
    response = model.prompt("go")
    handle = runner.start(response)
    with pytest.raises(llm_notebook.ModelError, match="failed: SystemExit: 3"):
        handle.result(10)  # the handle settles, with the model's failure
    assert response.status == "error" and "SystemExit" in response.error
    assert response.text_so_far() == "before "
    assert runner.get_loop().is_running()
    assert runner.run(asyncio.sleep(0, result="still here"), timeout=10) == "still here"


def test_system_exit_in_plain_background_work_settles_its_handle():
    async def bad():
        raise SystemExit(4)

    handle = runner.submit(bad())
    with pytest.raises(runner.BackgroundWorkError, match="SystemExit"):
        handle.result(10)
    assert runner.run(asyncio.sleep(0, result=1), timeout=10) == 1


def test_run_timeout_names_our_deadline_and_passes_the_work_s_own_timeout_through():
    async def own_timeout():
        raise TimeoutError("the backend timed out")

    with pytest.raises(TimeoutError, match="the backend timed out"):
        runner.run(own_timeout(), timeout=30)
    with pytest.raises(TimeoutError, match="gave up after 0.2 seconds"):
        runner.run(asyncio.sleep(30), timeout=0.2)


class Versioned(Model):
    model_id = "versioned"

    def __init__(self, version: str) -> None:
        self.version = version

    def execute(self, prompt, stream, response, conversation):
        yield f"{self.version}: {len(conversation.responses) if conversation else 0} earlier"


def test_a_conversation_follows_its_model_id_when_the_model_is_registered_again():
    llm_notebook.register(Versioned("v1"))
    try:
        conversation = llm_notebook.get_model("versioned").conversation()
        assert conversation.prompt("a").text() == "v1: 0 earlier"
        llm_notebook.register(Versioned("v2"))  # re-running the cell that defines it
        assert conversation.prompt("b").text() == "v2: 1 earlier"
        assert conversation.model.version == "v2" and conversation.model_id == "versioned"
    finally:
        llm_notebook.plugins.registry.unregister("versioned")


def test_a_conversation_with_an_unregistered_model_keeps_that_model():
    mine = Versioned("mine")
    llm_notebook.register(Versioned("registered"))
    try:
        assert mine.conversation().prompt("a").text() == "mine: 0 earlier"
    finally:
        llm_notebook.plugins.registry.unregister("versioned")


def test_an_interrupted_turn_that_said_something_stays_in_its_conversation():
    model = Blocking()
    conversation = model.conversation()
    response = conversation.prompt("go")
    handle = runner.start(response)
    assert model.inside.wait(10)
    handle.cancel()
    handle.result(10)
    model.release.set()
    assert conversation.responses == [response] and response.status == "interrupted"
    empty = conversation.prompt("never started")
    empty.interrupt()
    assert conversation.responses == [response]


def test_iterating_a_finished_response_replays_its_chunks():
    response = llm_notebook.get_model("echo").prompt("a b c")
    first = list(response)
    assert list(response) == first and "".join(first) == response.text()


def test_status_is_an_enum_that_reads_as_its_name():
    response = llm_notebook.get_model("echo").prompt("x")
    assert response.status is Status.PENDING and response.status == "pending"
    response.text()
    assert f"{response.status}" == "done" and response.to_dict()["status"] == "done"


def test_a_start_hook_can_answer_from_a_record_or_refuse_before_the_model_is_asked():
    from llm_notebook.errors import LLMNotebookError
    from llm_notebook.parts import StreamEvent
    from llm_notebook.responses import Recorded, Usage, on_start

    class Refused(LLMNotebookError):
        pass

    def hook(response):
        if response.prompt.prompt == "refuse":
            raise Refused("over budget: nothing was sent")
        if response.prompt.prompt == "known":
            return Recorded(chunks=(StreamEvent("reasoning", "r"), "from ", "the record"),
                            usage=Usage(input=3, output=2), resolved_model="echo-1",
                            about={"key": "k1"})
        return None

    model = Counting()
    unsubscribe = on_start(hook)
    try:
        known = model.prompt("known")
        assert known.text() == "from the record" and model.runs == 0
        assert known.usage() == Usage(input=3, output=2) and known.replayed == {"key": "k1"}
        assert known.to_dict()["resolved_model"] == "echo-1"
        refused = model.prompt("refuse")
        with pytest.raises(Refused, match="over budget"):
            refused.text()
        assert refused.status == "error" and model.runs == 0
        assert model.prompt("other").text() == "x" and model.runs == 1
        async_known = llm_notebook.get_async_model("echo").prompt("known")
        assert runner.run(async_known.text()) == "from the record"
    finally:
        unsubscribe()


def test_progress_callbacks_hear_of_parts_that_are_not_text():
    from llm_notebook.parts import StreamEvent

    class Thinker(Model):
        model_id = "thinker"

        def execute(self, prompt, stream, response, conversation):
            yield StreamEvent(type="reasoning", chunk="hmm ")
            yield StreamEvent(type="reasoning", chunk="so")
            yield "answer"

    response = Thinker().prompt("x")
    heard = []
    response.on_progress(lambda r: heard.append(r.parts_so_far()[0].text))
    assert list(response) == ["answer"]
    assert heard == ["hmm ", "hmm so"]
