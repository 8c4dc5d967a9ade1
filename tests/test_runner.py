"""The runner: async models from sync code, side by side, in the background, and interrupts."""

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import llm_notebook
from llm_notebook import runner
from llm_notebook.errors import ModelError
from tests.support.slow_server import SlowServer, loopback_models

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server():
    """Streams five words 50 ms apart after a 50 ms wait."""
    slow = SlowServer(delay=0.05, interval=0.05, words=5).start()
    yield slow
    slow.stop()


class Failing(llm_notebook.AsyncModel):
    model_id = "failing"

    async def execute(self, prompt, stream, response, conversation):
        yield "half an answer "
        raise ConnectionError("the server went away")


def test_one_long_lived_daemon_loop_thread():
    loop = runner.get_loop()
    assert runner.get_loop() is loop
    assert runner.run(_running_loop()) is loop
    assert runner._thread.daemon and runner._thread.is_alive()


async def _running_loop():
    return asyncio.get_running_loop()


def test_iterate_streams_an_async_model_as_chunks_arrive(server):
    _, model = loopback_models(server.url)
    arrivals = []
    started = time.monotonic()
    chunks = []
    for chunk in runner.iterate(model.prompt("tell me")):
        chunks.append(chunk)
        arrivals.append(time.monotonic() - started)
    assert "".join(chunks) == "w0 w1 w2 w3 tell me"
    # the first chunk is in hand while the server still streams the rest (4 x 50 ms later)
    assert arrivals[-1] - arrivals[0] > 0.15


def test_run_returns_the_result_and_raises_the_error():
    model = llm_notebook.get_async_model("echo")
    assert "> ping" in runner.run(model.prompt("ping").text())
    response = Failing().prompt("x")
    with pytest.raises(ModelError, match="the server went away"):
        runner.run(response.text())
    assert response.status == "error" and response.text_or_raise() == "half an answer "


def test_run_on_the_runner_loop_itself_is_refused():
    async def nested():
        coro = asyncio.sleep(0)
        runner.run(coro)

    with pytest.raises(RuntimeError, match="await the coroutine instead"):
        runner.run(nested())


def test_run_timeout_cancels_the_work():
    model = llm_notebook.get_async_model("echo")
    response = model.prompt("a b c d e f g h", delay=0.2)
    with pytest.raises(TimeoutError):
        runner.run(response.text(), timeout=0.3)
    assert response.status == "interrupted"
    assert response.text_or_raise().startswith("**Prompt**")


def test_iterate_a_sync_response_is_plain_iteration():
    response = llm_notebook.get_model("echo").prompt("hello")
    assert "".join(runner.iterate(response)) == response.text()


def test_iterate_many_runs_sync_and_async_models_side_by_side(server):
    sync_model, async_model = loopback_models(server.url)
    responses = [sync_model.prompt("one"), async_model.prompt("two"), Failing().prompt("three"),
                 llm_notebook.get_model("echo").prompt("four", delay=0.05)]
    seen: dict[int, str] = {}
    order = []
    for index, chunk in runner.iterate_many(responses):
        seen[index] = seen.get(index, "") + chunk
        order.append(index)
    assert seen[0] == "w0 w1 w2 w3 one" and seen[1] == "w0 w1 w2 w3 two"
    assert seen[2] == "half an answer " and responses[2].status == "error"
    assert "the server went away" in responses[2].error
    assert [r.status for r in responses] == ["done", "done", "error", "done"]
    # the streams interleave rather than one after the other
    assert order.index(1) < len(order) - order[::-1].index(0) - 1


def test_start_streams_in_the_background_and_keeps_partial_text_on_cancel():
    model = llm_notebook.get_async_model("echo")
    seen = []
    handle = runner.start(model.prompt("a b c d e f", delay=0.1), on_chunk=seen.append)
    assert not handle.done() and handle in runner.running()
    time.sleep(0.35)
    assert handle.cancel()
    response = handle.result(timeout=5)
    assert response is handle.response and response.status == "interrupted"
    assert response.text_or_raise() == "".join(seen) and seen
    assert handle.done() and handle not in runner.running()
    assert not handle.cancel()


def test_cancel_stops_a_sync_model_running_in_a_worker_thread():
    response = llm_notebook.get_model("echo").prompt("a b c d e f", delay=0.1)
    handle = runner.start(response)
    time.sleep(0.35)
    handle.cancel()
    assert handle.result(timeout=5).status == "interrupted"
    assert 0 < len(response.text()) < len(llm_notebook.get_model("echo").prompt("a b c d e f").text())


def test_handle_is_awaitable_from_another_event_loop():
    model = llm_notebook.get_async_model("echo")

    async def from_a_notebook_loop():
        handle = runner.start(model.prompt("awaited", delay=0.01))
        response = await handle
        return response, asyncio.get_running_loop()

    response, loop = asyncio.run(from_a_notebook_loop())
    assert loop is not runner.get_loop()
    assert response.status == "done" and "> awaited" in response.text_or_raise()


def test_cancelling_the_awaiting_task_cancels_the_handle():
    model = llm_notebook.get_async_model("echo")
    handle = runner.start(model.prompt("a b c d e f", delay=0.1))

    async def wait_briefly():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(handle, 0.25)

    asyncio.run(wait_briefly())
    assert handle.result(timeout=5).status == "interrupted"


def test_submit_any_coroutine_and_wait_all():
    events = []

    async def nap(seconds):
        events.append(("start", seconds))
        await asyncio.sleep(seconds)
        events.append(("end", seconds))
        return seconds

    handles = [runner.submit(nap(s)) for s in (0.1, 0.2, 0.15)]
    assert set(runner.wait_all()) >= set(handles)
    assert all(h.done() for h in handles)
    # all three ran at once: every nap started before the first one ended, and they ended by length
    assert [kind for kind, _ in events] == ["start"] * 3 + ["end"] * 3
    assert [s for kind, s in events if kind == "end"] == [0.1, 0.15, 0.2]
    assert [h.result() for h in handles] == [0.1, 0.2, 0.15]
    assert runner.running() == []


def test_handle_result_reraises_the_error_of_the_work():
    handle = runner.start(Failing().prompt("x"))
    with pytest.raises(ModelError, match="the server went away"):
        handle.result(timeout=5)
    assert "failed" in repr(handle)


_INTERRUPT_SCRIPT = """
import json, os, signal, sys, threading, time
sys.path.insert(0, {root!r})
from llm_notebook import runner
from tests.support.slow_server import SlowServer, loopback_models
server = SlowServer(interval=0.05, words=200).start()
_, model = loopback_models(server.url)
response = model.prompt("long")
chunks = []
try:
    for chunk in runner.{call}:
        chunks.append(chunk)
        if len(chunks) == 3:  # a kernel interrupt, once the answer is streaming
            os.kill(os.getpid(), signal.SIGINT)
    outcome = "finished"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
server.wait_for(lambda s: s.in_flight == 0)  # it notices the closed stream at its next write
print(json.dumps({{"outcome": outcome, "status": response.status, "text": response.text_or_raise(),
                  "seen": len(chunks), "hang_ups": server.hang_ups,
                  "in_flight": server.in_flight, "running": len(runner.running())}}))
"""


@pytest.mark.parametrize("call", ["iterate(response)", "iterate_many([response])"])
def test_interrupt_cancels_the_stream_closes_http_and_keeps_the_partial_answer(call):
    """A real SIGINT to the waiting main thread, as a kernel interrupt sends."""
    script = _INTERRUPT_SCRIPT.format(root=str(ROOT), call=call)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "KeyboardInterrupt"
    assert result["status"] == "interrupted"
    assert result["text"].startswith("w0 w1 ") and 3 <= result["seen"] < 200
    assert len(result["text"].split()) >= result["seen"]
    assert result["hang_ups"] == 1 and result["in_flight"] == 0
    assert result["running"] == 0


def test_the_runner_thread_does_not_keep_the_process_alive():
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import llm_notebook; "
              "from llm_notebook import runner; "
              "runner.start(llm_notebook.get_async_model('echo').prompt('x', delay=30)); "
              "print('leaving')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=20)
    assert done.returncode == 0 and done.stdout.strip() == "leaving", done.stderr


def test_start_from_many_threads_at_once():
    model = llm_notebook.get_async_model("echo")
    handles = []

    def begin():
        handles.append(runner.start(model.prompt("threads")))

    threads = [threading.Thread(target=begin) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(h.result(timeout=5).status == "done" for h in handles) and len(handles) == 8


def test_a_second_reader_of_a_streaming_async_response_waits_for_the_whole_text():
    async def main():
        response = llm_notebook.get_async_model("echo").prompt("one two three", delay=0.01)
        streamed = []

        async def stream_it():
            async for chunk in response:
                streamed.append(chunk)

        streaming = asyncio.ensure_future(stream_it())
        while not streamed:
            await asyncio.sleep(0.005)
        awaited = await response  # while the other task streams
        replayed = [chunk async for chunk in response]
        await streaming
        return "".join(streamed), awaited, "".join(replayed)

    streamed, awaited, replayed = asyncio.run(main())
    assert awaited.status == "done" and awaited.text_or_raise() == streamed == replayed
    assert "one two three" in streamed


def test_awaiting_a_response_streaming_on_the_runner_from_another_loop():
    release = threading.Event()

    class Gated(llm_notebook.AsyncModel):
        model_id = "gated"

        async def execute(self, prompt, stream, response, conversation):
            yield "far "
            await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
            yield "away"

    response = Gated().prompt("x")
    first = threading.Event()
    handle = runner.start(response, on_chunk=lambda chunk: first.set())
    assert first.wait(10) and not handle.done()
    threading.Timer(0.05, release.set).start()  # lets it finish while another loop awaits it
    text = asyncio.run(response.text())
    assert handle.result(10) is response and text == response.text_or_raise() == "far away"


def test_text_from_another_thread_waits_while_a_thread_streams():
    response = llm_notebook.get_model("echo").prompt("side thread", delay=0.01)
    started, chunks = threading.Event(), []

    def stream_it():
        for chunk in response:
            chunks.append(chunk)
            started.set()

    worker = threading.Thread(target=stream_it)
    worker.start()
    assert started.wait(5)
    text = response.text()  # this thread waits for the streaming one
    assert response.status == "done" and text == "".join(chunks) and "side thread" in text
    worker.join()


def test_reading_a_response_inside_the_loop_that_streams_it_is_refused():
    response = llm_notebook.get_model("echo").prompt("x")
    with pytest.raises(RuntimeError, match="still streaming here: read it after the loop"):
        for _ in response:
            response.text()
    assert response.status == "interrupted"

    async def main():
        response = llm_notebook.get_async_model("echo").prompt("x")
        async for _ in response:
            await response
    with pytest.raises(RuntimeError, match="still streaming here: read it after the loop"):
        asyncio.run(main())



FORK_SCRIPT = """
import json, os, signal, sys, threading
sys.path.insert(0, ROOT)
import llm_notebook
from llm_notebook import runner

async def answer():
    response = llm_notebook.get_async_model("echo").prompt("after fork")
    return threading.current_thread().name, await response.text()

runner.run(answer())
parent_thread = runner._thread
holding, release = threading.Event(), threading.Event()

def hold_the_runner_lock():  # another thread is starting work at the moment of the fork
    with runner._lock:
        holding.set()
        release.wait()

threading.Thread(target=hold_the_runner_lock).start()
holding.wait()
pid = os.fork()
if pid == 0:
    signal.alarm(10)  # a child stuck on the lock must not outlive the test
    name, text = runner.run(answer())
    print(json.dumps({"name": name, "answered": "after fork" in text,
                      "new_thread": runner._thread is not parent_thread}), flush=True)
    os._exit(0)
release.set()
os.waitpid(pid, 0)
"""


def test_the_runner_starts_afresh_in_a_forked_child():
    script = FORK_SCRIPT.replace("ROOT", repr(str(ROOT)))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=20)
    assert json.loads(done.stdout or "null") == {
        "name": "llm_notebook-runner", "answered": True, "new_thread": True}, done.stderr


def test_a_sync_model_on_the_runner_sees_the_context_of_its_caller():
    import contextvars

    seen = contextvars.ContextVar("seen", default="unset")

    class Reads(llm_notebook.Model):
        model_id = "reads-context"

        def execute(self, prompt, stream, response, conversation):
            yield seen.get()

    async def in_a_task():
        seen.set("set by the caller")
        response = Reads().prompt("x")
        await runner.consume(response)
        return response.text_or_raise()

    assert runner.run(in_a_task()) == "set by the caller"
