"""Async in the magics, in real kernels of both ipykernel majors: --async, --background (the answer
streams into its own cell while later cells run), %llm wait, and models side by side.

Besides nbclient (which executes the cells and keeps the notebook as it would be saved), a second
client listens to every iopub message, as a frontend does, to see which cell each one belongs to.
"""

from __future__ import annotations

import queue
import re
from datetime import datetime, timedelta

import nbformat
import pytest
from jupyter_client import BlockingKernelClient

from tests.magics_kernel import KernelNotebook, offline_env, table_rows
from tests.support.kernels import kernel_manager

SETUP = '''
%load_ext llm_notebook
import asyncio, time
import llm_notebook
from llm_notebook import AsyncModel, Model


class Paced(llm_notebook.Options):
    delay: float = 0.0


class Twin(Model):
    model_id = "twin"

    def execute(self, prompt, stream, response, conversation):
        yield "from the sync variant"


class AsyncTwin(AsyncModel):
    model_id = "twin"

    async def execute(self, prompt, stream, response, conversation):
        yield "from the async variant"


class SlowSync(Model):
    """Sync-only; takes twice the delay per word, and blocks its thread while it sleeps."""
    model_id = "slow-sync"
    Options = Paced

    def execute(self, prompt, stream, response, conversation):
        words = prompt.prompt.split()
        for word in words:
            time.sleep(2 * prompt.options.delay)
            yield word.upper() + " "
        response.set_usage(input=len(words), output=len(words))


class SlowAsync(AsyncModel):
    """Async-only."""
    model_id = "slow-async"
    Options = Paced

    async def execute(self, prompt, stream, response, conversation):
        words = prompt.prompt.split()
        for word in words:
            await asyncio.sleep(prompt.options.delay)
            yield word[::-1] + " "
        response.set_usage(input=len(words), output=2 * len(words))


class Broken(Model):
    model_id = "broken"

    def execute(self, prompt, stream, response, conversation):
        yield "half an answer "
        raise RuntimeError("backend fell over")


class Early(Model):
    model_id = "early"

    def execute(self, prompt, stream, response, conversation):
        raise llm_notebook.ModelError("the server said no")
        yield


llm_notebook.register(Early())
llm_notebook.register(Twin(), AsyncTwin())
llm_notebook.register(Broken())
llm_notebook.register(SlowSync())
llm_notebook.register(None, SlowAsync())
'''

WORDS = " ".join(f"w{i}" for i in range(40))


@pytest.fixture(scope="module", params=["ipykernel7", "ipykernel6"])
def kernel(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("notebook")
    notebook = KernelNotebook(workdir, env=offline_env(workdir),
                              kernel_manager=kernel_manager(request.param, workdir))
    version = notebook.run("import ipykernel; print(ipykernel.__version__)").stream()
    assert version.startswith(request.param.removeprefix("ipykernel") + ".")
    notebook.run(SETUP)
    yield notebook
    notebook.close()


@pytest.fixture
def frontend(kernel):
    """A second client that hears every iopub message, whatever cell it belongs to."""
    client = BlockingKernelClient()
    client.load_connection_info(kernel.client.km.get_connection_info())
    client.start_channels()
    client.wait_for_ready(timeout=30)
    heard: list[dict] = []

    def drain() -> list[dict]:
        while True:
            try:
                heard.append(client.get_iopub_msg(timeout=0.5))
            except queue.Empty:
                return heard

    drain()
    heard.clear()
    yield drain
    client.stop_channels()


def answer_of(outputs) -> dict:
    [output] = [o for o in outputs if "response_id" in o.get("metadata", {}).get("llm_notebook", {})]
    return output


def execution_count(run) -> int:
    return run.reply["content"]["execution_count"]


def request_id(run) -> str:
    return run.messages[0]["parent_header"]["msg_id"]


def saved_outputs(kernel, run) -> list[dict]:
    """The outputs of `run`'s cell in the notebook as written to disk and read back."""
    saved = nbformat.reads(nbformat.writes(kernel.nb), as_version=4)
    nbformat.validate(saved)
    [cell] = [c for c in saved.cells if c.source == run.source]
    return [dict(o) for o in cell.outputs]


# -- --async -----------------------------------------------------------------------------------------

def test_async_flag_prefers_the_async_variant_and_falls_back_to_the_sync_one(kernel):
    assert answer_of(kernel.run("%llm -m twin hi").outputs)["data"]["text/markdown"] == \
        "from the sync variant"
    assert answer_of(kernel.run("%llm --async -m twin hi").outputs)["data"]["text/markdown"] == \
        "from the async variant"
    assert answer_of(kernel.run("%llm --async -m slow-sync hi").outputs)["data"]["text/markdown"] == \
        "HI "


def test_async_only_model_streams_like_a_sync_one(kernel):
    kernel.run("%config LLMMagics.display_interval = 0.05")
    for model, shown in (("slow-async", "0w 1w 2w"), ("slow-sync", "W0 W1 W2")):
        run = kernel.run(f"%llm -m {model} -o delay 0.02 --no-usage {WORDS}")
        updates = [m for m in run.display_messages() if m["msg_type"] == "update_display_data"]
        partial = [m["content"]["data"]["text/markdown"] for m in updates[:-1]]
        assert len(partial) >= 3, f"{model} did not stream"
        assert all(len(a) <= len(b) for a, b in zip(partial, partial[1:]))
        assert answer_of(run.outputs)["data"]["text/markdown"].startswith(shown)


# -- --background ----------------------------------------------------------------------------------

def test_background_returns_at_once_and_streams_into_its_own_cell(kernel, frontend):
    kernel.run("%llm usage --reset")
    started = kernel.run(f"%%llm -m slow-async -o delay 0.04 --background --out bg_text\n{WORDS}")
    count = execution_count(started)
    assert not [o for o in started.outputs if "llm_notebook" in o.get("metadata", {})], \
        "the cell waited for the answer"
    assert any(f"Out[{count}] is its handle" in o["data"].get("text/plain", "")
               for o in started.displays())

    meanwhile = kernel.run(f"handle = Out[{count}]\nprint('meanwhile', handle.done(), type(handle).__name__)"
                           "\ntime.sleep(0.5)  # the answer goes on streaming meanwhile")
    assert meanwhile.stream() == "meanwhile False BackgroundAnswer\n"
    assert meanwhile.display_messages() == []

    waited = kernel.run("%llm wait")
    assert waited.stream().startswith("Waited ")
    assert waited.stream().rstrip().endswith("for 1 background answer: slow-async done")

    # a frontend hears the streamed updates as messages of the cell that started them
    answer_id = next(m["content"]["transient"]["display_id"] for m in started.display_messages())
    updates = [m for m in frontend() if m["msg_type"] == "update_display_data"
               and m["content"]["transient"]["display_id"] == answer_id]
    streamed = [m for m in updates if m["parent_header"]["msg_id"] == request_id(started)]
    assert len(streamed) >= 3 and "llm_notebook" in streamed[-1]["content"]["metadata"]
    assert not [m for m in updates if m["parent_header"]["msg_id"] == request_id(meanwhile)]

    # the saved notebook has the whole answer and its usage in the starting cell, nowhere else
    outputs = saved_outputs(kernel, started)
    answer = answer_of(outputs)
    assert answer["data"]["text/markdown"] == " ".join(w[::-1] for w in WORDS.split()) + " "
    assert answer["metadata"]["llm_notebook"]["status"] == "done"
    assert table_rows(outputs[-1]["data"]["text/markdown"])["slow-async"][:2] == ["40", "80"]
    assert saved_outputs(kernel, meanwhile) == [
        {"output_type": "stream", "name": "stdout", "text": "meanwhile False BackgroundAnswer\n"}]

    check = kernel.run("print(bg_text == str(handle), llm_notebook.logs(1)[0]['status'])")
    assert check.stream() == "True done\n"
    session = table_rows(kernel.run("%llm usage").data("text/markdown")[0])
    assert session["slow-async"][:3] == ["1", "40", "80"]


def test_background_cancel_keeps_the_partial_answer(kernel):
    started = kernel.run(f"%llm -m slow-sync -o delay 0.05 --background {WORDS}")
    check = kernel.run(f"import time\ntime.sleep(0.5)\nhandle = Out[{execution_count(started)}]\n"
                       "print(handle.cancel())\nanswer = handle.result(timeout=10)\n"
                       "print(answer.status, handle.done(), 0 < len(str(answer)) < 120)")
    assert check.stream() == "True\ninterrupted True True\n"
    answer = answer_of(saved_outputs(kernel, started))
    assert answer["metadata"]["llm_notebook"]["status"] == "interrupted"
    assert answer["data"]["text/markdown"].startswith("W0 W1 ")
    assert answer["data"]["text/markdown"].endswith("_[interrupted: the answer above is partial]_")
    assert "Cancelled: the partial answer above is kept" in saved_outputs(kernel, started)[-1]["data"]["text/plain"]
    assert kernel.run("print(llm_notebook.logs(1)[0]['status'])").stream() == "interrupted\n"


def test_wait_for_several_then_await_a_handle(kernel):
    first = kernel.run("%llm -m slow-async -o delay 0.02 --background --no-usage one two three")
    second = kernel.run("%llm -m echo -o delay 0.02 --background --no-usage four five")
    waited = kernel.run("%llm wait")
    assert waited.stream().rstrip().endswith("for 2 background answers: slow-async done, echo done")
    assert "> four five" in answer_of(saved_outputs(kernel, second))["data"]["text/markdown"]
    assert len(saved_outputs(kernel, second)) == 1, "--no-usage left an empty status output"
    awaited = kernel.run(f"answer = await Out[{execution_count(first)}]\n"
                         "print(answer.status, repr(str(answer)))")
    assert awaited.stream() == "done 'eno owt eerht '\n"

    third = kernel.run("%llm -m slow-async -o delay 0.02 --background six seven")
    kernel.run(f"await Out[{execution_count(third)}]")
    assert answer_of(saved_outputs(kernel, third))["data"]["text/markdown"] == "xis neves "
    assert kernel.run("%llm wait").stream() == "No background answers to wait for\n"


def test_interrupting_wait_cancels_the_background_answers_and_keeps_their_text(kernel):
    started = kernel.run(f"%llm -m slow-async -o delay 0.2 --background {WORDS}")
    waited = kernel.run("%llm wait", interrupt_after_seconds=1.0)
    assert waited.error is None
    assert waited.stream() == ("Stopped waiting: the background answers were cancelled; their "
                               "partial answers are kept\n")
    answer = answer_of(saved_outputs(kernel, started))
    assert answer["metadata"]["llm_notebook"]["status"] == "interrupted"
    assert answer["data"]["text/markdown"].startswith("0w 1w ") and "93w" not in answer["data"]["text/markdown"]
    assert kernel.run(f"print(Out[{execution_count(started)}].done(), 1 + 1)").stream() == "True 2\n"
    assert kernel.run("%llm wait").stream() == "No background answers to wait for\n"


def test_a_failing_model_keeps_its_partial_answer_in_the_background_and_side_by_side(kernel):
    started = kernel.run("%llm -m broken --background hi")
    kernel.run("%llm wait")
    outputs = saved_outputs(kernel, started)
    answer = answer_of(outputs)
    assert answer["data"]["text/markdown"] == \
        "half an answer \n\n_[stopped by an error: the answer above is partial]_"
    assert outputs[-1]["data"]["text/plain"].startswith(
        "ModelError: Model 'broken' failed: RuntimeError: backend fell over\nmodel")
    quiet = kernel.run("%llm -m broken --background --no-usage hi")
    kernel.run("%llm wait")
    [answer] = saved_outputs(kernel, quiet)  # no usage table: the error goes under the answer
    assert answer["data"]["text/markdown"].endswith(
        "_[stopped by an error: the answer above is partial]_\n\n"
        "ModelError: Model 'broken' failed: RuntimeError: backend fell over")

    run = kernel.run("%llm -m broken -m slow-async one two")
    [columns, table] = run.displays()
    assert [a["status"] for a in columns["metadata"]["llm_notebook"]["answers"]] == ["error", "done"]
    assert "eno owt" in columns["data"]["text/markdown"]
    assert ("half an answer \n\n_[stopped by an error: the answer above is partial]_\n\n"
            "_Model 'broken' failed: RuntimeError: backend fell over_") in columns["data"]["text/markdown"]
    assert run.error is None and run.stream("stderr") == ""


def test_background_needs_one_model_and_no_code_format(kernel):
    for source, message in (
            ("%llm -m echo -f code --background hi",
             "UsageError: -f code cannot add a cell from the background: leave out --background"),
            ("%llm -m echo -m twin --background hi", "UsageError: --background takes one model")):
        assert kernel.run(source, expect_error=True).error["traceback"] == [message]


# -- models side by side ------------------------------------------------------------------------------

def _span(record) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(record["datetime"])
    return start, start + timedelta(milliseconds=record["duration_ms"])


def test_side_by_side_streams_all_at_once_with_a_comparison_table(kernel):
    kernel.run("%config LLMMagics.display_interval = 0.05")
    run = kernel.run("%%llm -m echo -m slow-async --models slow-sync -o delay 0.02 --out texts\n"
                     + WORDS + " <b>bold</b>")
    columns, table = run.displays()
    markdown = columns["data"]["text/markdown"]
    assert markdown.count('<div style="flex: 1 1 0;') == 3
    assert markdown.index("**echo**") < markdown.index("**slow\\-async**") < \
        markdown.index("**slow\\-sync**")
    echo_column, *others = markdown.split("**slow\\-async**")
    assert f"> ```text\n> {WORDS} <b>bold</b>\n> ```" in echo_column  # code: shown, never run
    assert "W39 &lt;B>BOLD&lt;/B> " in others[0]
    assert re.findall(r"<(?!/?div\b)", others[0]) == [], "model output rendered as HTML"
    answers = columns["metadata"]["llm_notebook"]["answers"]
    assert [a["model"] for a in answers] == ["echo", "slow-async", "slow-sync"]
    assert {a["status"] for a in answers} == {"done"}

    # they ran at the same time: each began before any other ended
    meta = table["metadata"]["llm_notebook"]
    spans = [_span(record) for record in meta["comparison"]]
    assert max(start for start, _ in spans) < min(end for _, end in spans)
    durations = [record["duration_ms"] for record in meta["comparison"]]
    assert max(durations) <= meta["wall_ms"] < 0.8 * sum(durations)

    rows = table["data"]["text/markdown"].splitlines()
    assert rows[0] == ("| model | status | input | output | first token | total | output tok/s "
                       "| cost |")
    slow_sync = table_rows(table["data"]["text/markdown"])["slow-sync"]
    assert slow_sync[:3] == ["done", "41", "41"]
    first, total = (float(cell.removesuffix(" s")) for cell in slow_sync[3:5])
    assert 0 < first < total and float(slow_sync[5]) > 0
    assert slow_sync[6] == "—"  # no price is known for the offline models: never a guess
    assert f"3 answers side by side in {meta['wall_ms'] / 1000:.2f} s" in rows[-1]

    assert kernel.run("print(len(texts), texts[2][:6])").stream() == "3 W0 W1 \n"
    shown = kernel.run(f"Out[{execution_count(run)}][1]")
    assert shown.displays()[0]["data"]["text/markdown"].startswith("0w 1w")
    # every answer streamed: the columns were updated many times, all in one display
    updates = [m for m in run.display_messages() if m["msg_type"] == "update_display_data"]
    assert len(updates) >= 5


def test_side_by_side_interrupt_stops_all_and_keeps_partial_answers(kernel):
    kernel.run("%config LLMMagics.display_interval = 0.1")
    run = kernel.run(f"%%llm -m slow-async -m slow-sync -o delay 0.05\n{WORDS}",
                     interrupt_after_displays=4)
    assert run.error is None
    assert run.stream() == "Interrupted: the partial answers above are kept\n"
    columns = next(o for o in run.displays() if "answers" in o["metadata"].get("llm_notebook", {}))
    assert [a["status"] for a in columns["metadata"]["llm_notebook"]["answers"]] == \
        ["interrupted", "interrupted"]
    markdown = columns["data"]["text/markdown"]
    assert "0w 1w" in markdown and "W0 " in markdown and "W39" not in markdown
    assert markdown.count("_[interrupted: the answer above is partial]_") == 2
    assert "> still here" in answer_of(kernel.run("%llm -m echo still here").outputs)["data"]["text/markdown"]
    table = next(o for o in run.displays() if "comparison" in o["metadata"].get("llm_notebook", {}))
    assert table_rows(table["data"]["text/markdown"])["slow-sync"][:3] == \
        ["interrupted", "—", "— (interrupted; the model sent no counts)"]


def test_side_by_side_option_errors_are_one_line(kernel):
    run = kernel.run("%llm -m echo -m twin --conversation talk hi", expect_error=True)
    assert run.error["traceback"] == ["UsageError: --conversation names one model's conversation: "
                                      "with several models, -c continues each one's last"]
    run = kernel.run("%llm --models echo,nope hi", expect_error=True)
    assert len(run.error["traceback"]) == 1 and "nope" in run.error["traceback"][0]


def test_a_background_error_before_any_text_is_only_its_line(kernel):
    for flags in ("", "--no-usage"):
        started = kernel.run(f"%llm -m early --background {flags} hi")
        kernel.run("%llm wait")
        shown = [o["data"].get("text/plain", "") for o in saved_outputs(kernel, started)]
        assert [text for text in shown if text] == ["ModelError: the server said no"], (flags, shown)


def test_side_by_side_options_go_to_one_model_or_to_every_model(kernel):
    run = kernel.run("%llm -m echo -m slow-async -o slow-async.delay 0.01 -o echo.delay 0.02 a b")
    [columns, table] = run.displays()
    assert "- `delay`: `0.02`" in columns["data"]["text/markdown"]
    assert [r["status"] for r in table["metadata"]["llm_notebook"]["comparison"]] == ["done", "done"]
    shared = kernel.run("%llm -m echo -m slow-async -o delay 0.01 a b")
    assert "- `delay`: `0.01`" in shared.displays()[0]["data"]["text/markdown"]
    refused = kernel.run("%llm -m echo -m twin -o delay 0.01 hi", expect_error=True)
    assert refused.error["traceback"] == [
        "OptionsError: Option 'delay' goes to every model, but twin has no such option: give it "
        "to echo alone (echo.delay as -o in %llm, echo={'delay': ...} in compare())"]
    nobody = kernel.run("%llm -m echo -m twin -o colour red hi", expect_error=True)
    assert nobody.error["traceback"] == ["OptionsError: No model here has an option 'colour': "
                                         "echo takes delay; twin takes no options"]
    stray = kernel.run("%llm -m echo -m twin -o markov.length 3 hi", expect_error=True)
    assert stray.error["traceback"][0].startswith(
        "OptionsError: Options for 'markov', which is not one of the models asked (echo, twin)")


def test_side_by_side_columns_have_a_rule_between_them(kernel):
    markdown = kernel.run("%llm -m echo -m twin --no-usage hi").displays()[0]["data"]["text/markdown"]
    columns = re.findall(r'<div style="(flex: 1 1 0;[^"]*)">', markdown)
    assert len(columns) == 2
    assert "border-left" not in columns[0]
    assert "border-left: 1px solid #80808080" in columns[1]  # half-grey: seen on light and dark


def test_the_python_api_streams_in_the_background_and_waits(kernel):
    started = kernel.run("handle = llm_notebook.in_background('one two', model='slow-async', "
                         "delay=0.02)\nprint(type(handle).__name__, handle.done())")
    assert started.stream() == "BackgroundAnswer False\n"
    waited = kernel.run("[job] = llm_notebook.wait_for_background()\n"
                        "print(job is handle, handle.result().status, str(handle))")
    assert waited.stream() == "True done eno owt \n"
    assert answer_of(saved_outputs(kernel, started))["data"]["text/markdown"] == "eno owt "
