"""The chat, model picker and usage view, driven through their public methods and widget events.

The offline models (echo, markov) answer; requests run on the real runner loop. The first tests
need no IPython; the last ones run in a real kernel (nbclient), where the widgets meet the
magics: @plot, variables of the notebook, the default model of %%llm and saved outputs.
"""

from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import llm_notebook
from llm_notebook.models import Model
from llm_notebook.plugins import registry
from llm_notebook.usage import session_usage
from tests.magics_kernel import KernelNotebook

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chat.ipynb"


@pytest.fixture(autouse=True)
def fresh_session_usage():
    session_usage.reset()
    yield
    session_usage.reset()


def shown(chat, kind: str) -> list[str]:
    return [markdown for shown_kind, markdown in chat.transcript() if shown_kind == kind]


def poll(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def png_bytes(size=(4, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_widgets_are_exported_lazily():
    import subprocess

    code = ("import sys, llm_notebook; assert 'chat' in dir(llm_notebook); "
            "print('ipywidgets' in sys.modules, 'anywidget' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_send_streams_into_the_chat_without_blocking_then_records_usage():
    chat = llm_notebook.chat("echo", delay=0.03)
    words = " ".join(f"word{i}" for i in range(30))
    turn = chat.send(words)
    # send() returned while the answer is still coming: the caller (the kernel) is free.
    assert turn.status == "running" and chat.busy
    assert chat.send_button.disabled and not chat.stop_button.disabled
    renders = []
    while chat.busy:
        answers = shown(chat, "answer")
        if answers and (not renders or renders[-1] != answers[0]):
            renders.append(answers[0])
        time.sleep(0.005)
    assert chat.wait(10)
    final = shown(chat, "answer")[0]
    assert final == turn.text and "word29" in final
    partial = [r for r in renders if r not in ("_…_", final)]
    assert len(partial) >= 3, renders
    assert all(len(a) < len(b) for a, b in zip(partial, partial[1:]))
    assert shown(chat, "user") == [words]
    assert turn.status == "done" and turn.usage.output == len(turn.text.split())
    assert not chat.send_button.disabled and chat.stop_button.disabled
    [row] = session_usage.by_model()
    assert (row.model, row.responses, row.output) == ("echo", 1, turn.usage.output)
    assert f"{turn.usage.output} output tokens" in chat.footer.value
    assert "1 response " in chat.footer.value


def test_stop_keeps_the_partial_answer_and_records_it():
    chat = llm_notebook.chat("markov", length=400, delay=0.02, seed=3)
    turn = chat.send("alpha beta gamma delta epsilon")
    poll(lambda: len(shown(chat, "answer")[0].split()) >= 3)
    chat.stop_button.click()
    assert chat.wait(10)
    assert turn.status == "interrupted"
    assert 3 <= len(turn.text.split()) < 400
    answer = shown(chat, "answer")[0]
    assert answer.startswith(turn.text.strip()) and "interrupted" in answer
    assert session_usage.by_model()[0].responses == 1
    assert chat.history == [turn]
    # The chat is usable again at once; a Stop right after Send stops that one too.
    again = chat.send("again")
    chat.stop()
    assert chat.wait(10) and not chat.busy
    assert again.status == "interrupted" and len(chat.history) == 2


def test_switching_model_from_the_menu_keeps_the_history():
    chat = llm_notebook.chat("markov")
    chat.send("alpha beta gamma")
    chat.wait(10)
    chat.model_menu.value = "echo"
    assert chat.model.model_id == "echo" and chat.conversation.model.model_id == "echo"
    assert "Now talking to echo" in chat.status.value
    second = chat.send("second question")
    chat.wait(10)
    assert "**Earlier turns** (1)" in second.text
    assert "1. **user:** alpha beta gamma" in second.text
    assert [t.model for t in chat.history] == ["markov", "echo"]
    assert len(chat.conversation.responses) == 2
    assert "2 responses" in chat.footer.value and "(markov 1, echo 1)" in chat.footer.value


def test_programmatic_model_switch_and_an_async_model():
    chat = llm_notebook.chat(llm_notebook.get_async_model("echo"))
    first = chat.send("from the async model")
    chat.wait(10)
    assert first.status == "done" and "from the async model" in first.text
    chat.model = "markov"
    assert chat.model_menu.value == "markov"
    with pytest.raises(llm_notebook.UnknownModelError, match="Unknown model 'nope'"):
        chat.model = "nope"


def test_enter_sends_an_uploaded_file_and_clears_the_controls():
    png = png_bytes()
    chat = llm_notebook.chat("echo")
    # The state a browser's upload sends over the widget's comm.
    chat.upload.set_state({"value": [{"name": "dot.png", "type": "image/png", "size": len(png),
                                      "content": memoryview(png), "last_modified": 0}]})
    chat.input.value = "what is in the picture?"
    chat.input.submit()  # what Enter in the browser triggers
    chat.wait(10)
    [turn] = chat.history
    assert f"1. `image/png`, {len(png):,} bytes, 4×3 px" in turn.text
    assert "_Attached:_ `image/png`" in shown(chat, "user")[0]
    assert chat.input.value == "" and chat.upload.value == () and chat.attach_field.value == ""


def test_enter_sends_the_text_it_carries_even_if_the_value_sync_lags():
    chat = llm_notebook.chat("echo")
    chat.input.value = "first line"  # the last state update that reached the kernel
    # The box's Enter message, as the browser sends it (having emptied the box), with the whole text.
    chat.input._on_message(chat.input, {"event": "submit", "value": "first line\nsecond line"}, [])
    chat.wait(10)
    [turn] = chat.history
    assert "> first line\n> second line" in turn.text
    assert chat.input.value == ""
    # A message that is not sent goes back into the box, to be fixed and sent again.
    chat.attach_field.value = "no_such_variable"
    chat.input._on_message(chat.input, {"event": "submit", "value": "look at this"}, [])
    assert chat.input.value == "look at this"
    assert "No file at 'no_such_variable'" in chat.history[-1].error


def test_a_bad_attachment_is_a_message_in_the_chat_and_the_text_is_kept():
    chat = llm_notebook.chat("echo")
    chat.attach_field.value = "no_such_variable"
    chat.input.value = "look at this"
    chat.send_button.click()
    [turn] = chat.history
    assert turn.status == "error" and turn.response is None
    [error] = shown(chat, "error")
    assert error.startswith("**Error:** No file at 'no_such_variable'")
    assert chat.input.value == "look at this" and chat.attach_field.value == "no_such_variable"
    assert not chat.busy and session_usage.by_model() == []


def test_model_errors_and_bad_options_are_messages_in_the_chat():
    class Failing(Model):
        model_id = "failing-in-chat"

        def execute(self, prompt, stream, response, conversation):
            yield "half an "
            raise RuntimeError("the server went away")

    llm_notebook.register(Failing())
    try:
        chat = llm_notebook.chat("failing-in-chat")
        turn = chat.send("hello")
        chat.wait(10)
        assert turn.status == "error" and turn.text == "half an "
        answer, = shown(chat, "answer")
        assert answer.startswith("half an") and "stopped by an error" in answer
        [error] = shown(chat, "error")
        assert "Model 'failing-in-chat' failed: RuntimeError: the server went away" in error
        assert session_usage.by_model()[0].model == "failing-in-chat"
    finally:
        registry.unregister("failing-in-chat")

    chat = llm_notebook.chat("markov", colour="red")
    turn = chat.send("hello")
    assert turn.status == "error" and "unknown option 'colour'" in turn.error
    assert "unknown option 'colour'" in shown(chat, "error")[0]


def test_sending_while_busy_or_empty_is_refused_with_a_notice():
    chat = llm_notebook.chat("echo", delay=0.05)
    assert chat.send("   ") is None and "Write a message" in chat.status.value
    chat.send("one two three four five six")
    assert chat.send("too soon") is None and "Still answering" in chat.status.value
    chat.model_menu.value = "markov"
    assert chat.model.model_id == "echo"
    chat.wait(10)
    assert len(chat.history) == 1


def test_a_given_conversation_is_shown_and_continued():
    conversation = llm_notebook.get_model("echo").conversation()
    conversation.prompt("earlier question").text()
    chat = llm_notebook.chat(conversation=conversation, system="be brief")
    assert shown(chat, "user") == ["earlier question"]
    assert "earlier question" in shown(chat, "answer")[0]
    turn = chat.send("next one")
    chat.wait(10)
    assert "**Earlier turns** (1)" in turn.text and "**System**\n\n> be brief" in turn.text
    assert chat.conversation is conversation and len(conversation.responses) == 2
    assert "2 responses" in chat.footer.value


def test_usage_view_follows_the_session_until_closed():
    view = llm_notebook.usage_view()

    def table():
        return view.outputs[0]["data"]["text/markdown"]

    assert "No responses yet" in table()
    chat = llm_notebook.chat("echo")
    chat.send("one two")
    chat.wait(10)
    assert re.search(r"^\| echo \| 1 \| 2 \| \d+ \|", table(), re.M)
    assert re.search(r"^\| total \| 1 \|", table(), re.M)
    response = llm_notebook.get_model("markov").prompt("three four")
    response.text()  # every finished response counts, not only the magics' and the chat's
    assert "| markov | 1 |" in table() and "| total | 2 |" in table()
    view.close()
    chat.send("after closing")
    chat.wait(10)
    assert "| echo | 1 |" in table() and "| total | 2 |" in table()


def test_model_picker_sets_the_stored_default_and_searches():
    picker = llm_notebook.model_picker()
    assert picker.menu.value == "echo"
    picker.search.value = "mark"
    assert [value for _, value in picker.menu.options] == ["echo", "markov"]  # default kept
    picker.menu.value = "markov"
    assert llm_notebook.get_default_model() == "markov"
    assert "Default model for %%llm: markov" in picker.status.value
    picker.search.value = ""
    assert len(picker.menu.options) >= 2 and picker.menu.value == "markov"
    assert llm_notebook.chat().model.model_id == "markov"


# -- in a real kernel ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("widgets")
    notebook = KernelNotebook(workdir, env={
        "LLM_NOTEBOOK_USER_PATH": str(workdir / "user"), "LLM_NOTEBOOK_LOAD_PLUGINS": ""})
    notebook.run("%load_ext llm_notebook\nimport llm_notebook")
    yield notebook
    notebook.close()


def test_picker_changes_the_model_percent_percent_llm_uses(kernel):
    shown_picker = kernel.run("picker = llm_notebook.model_picker()\npicker")
    [picker_output, saved_text] = shown_picker.displays()
    assert "application/vnd.jupyter.widget-view+json" in picker_output["data"]
    assert saved_text["data"]["text/plain"] == "Default model for %%llm: echo"
    kernel.run("picker.menu.value = 'markov'")
    answer = kernel.run("%%llm -o seed 1 -o length 6\nalpha beta gamma").data("text/markdown")[0]
    assert "Prompt" not in answer and set(answer.split()) <= {"alpha", "beta", "gamma"}
    kernel.run("%llm default echo")
    assert kernel.run("print(picker.menu.value)").stream().strip() == "echo"


def test_chat_in_a_kernel_attaches_plot_and_variables_and_saves_its_text(kernel):
    kernel.run("from IPython.display import display\nfrom PIL import Image\n"
               "img = Image.new('RGB', (12, 34), 'blue')\ndisplay(img)")
    index = len(kernel.nb.cells)
    displayed = kernel.run("chat = llm_notebook.chat('echo')\nchat")
    [widget, record] = displayed.displays()
    assert widget["data"]["text/plain"].startswith("Chat with echo")
    assert record["data"]["text/markdown"] == "_Usage: no responses yet_"
    kernel.run("chat.attach_field.value = '@plot'\nchat.input.value = 'describe the plot'\n"
               "chat.send_button.click()\nchat.wait(10)")
    kernel.run("chat.attach_field.value = 'img'\nchat.input.value = 'and this variable'\n"
               "chat.send_button.click()\nchat.wait(10)")
    texts = kernel.run("for t in chat.history: print(t.status, repr(t.text))").stream()
    assert texts.count("done ") == 2 and texts.count("12×34 px") == 2
    # The chat's cell now holds the conversation as Markdown, for GitHub and nbconvert.
    saved = kernel.nb.cells[index].outputs[1]["data"]
    assert "**You**\n\ndescribe the plot" in saved["text/markdown"]
    assert "> and this variable" in saved["text/markdown"]
    assert "_Usage: 2 responses" in saved["text/markdown"]
    assert "application/vnd.jupyter.widget-view+json" in saved
    error = kernel.run("chat.attach_field.value = '@plot-9'\nchat.input.value = 'x'\n"
                       "chat.send_button.click()\nprint(chat.history[-1].error)").stream()
    assert error.startswith("@plot-9 asks for the image 9 back")


def test_the_saved_example_reads_without_widgets():
    """GitHub and nbconvert render no widgets: the saved outputs still tell the story."""
    import nbformat

    notebook = nbformat.read(str(EXAMPLE), as_version=4)
    shown = "\n".join(output["data"]["text/markdown"] for cell in notebook.cells
                      for output in cell.get("outputs", []) if "text/markdown" in output.get("data", {}))
    asked = "Which **columns** of the sales table hold dates?"
    assert f"**You**\n\n{asked}\n\n**echo**\n\n**Prompt**\n\n> {asked}" in shown
    assert "_Usage: 1 response · 8 input · 14 output tokens" in shown
    assert re.search(r"^\| echo \| 2 \| \d+ \| \d+ \|", shown, re.M)  # the chat's and %%llm's
    assert "_Default model for %%llm: echo_" in shown
