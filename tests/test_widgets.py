"""The chat, model picker, usage view, code actions and map's progress, driven through their
public methods and the messages their front-ends send.

The offline models (echo, markov) answer; requests run on the real runner loop. A front-end's
message reaches a widget through its comm (`comm.handle_msg`), as one from the browser does.
The first tests need no IPython; the last ones run in a real kernel (nbclient), where the
widgets meet the magics and a saved notebook.
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
from llm_notebook.notebook.widgets import code_actions
from llm_notebook.notebook.widgets.rendered import markdown_html
from llm_notebook.plugins import registry
from llm_notebook.usage import session_usage
from tests.magics_kernel import offline_kernel, unescaped

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chat.ipynb"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(autouse=True)
def fresh_session_usage():
    session_usage.reset()
    yield
    session_usage.reset()


def shown(chat, kind: str) -> list[str]:
    return [markdown for shown_kind, markdown in chat.transcript() if shown_kind == kind]


def from_front_end(widget, content: dict, buffers: tuple[bytes, ...] = ()) -> None:
    """A custom message from the widget's front-end, as the browser sends it over the comm."""
    widget.comm.handle_msg({"content": {"data": {"method": "custom", "content": content}},
                            "buffers": list(buffers)})


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
    assert turn.status == "running" and chat.busy and chat.widget.busy
    renders = []
    while chat.busy:
        answers = shown(chat, "answer")
        if answers and (not renders or renders[-1] != answers[0]):
            renders.append(answers[0])
        time.sleep(0.005)
    assert chat.wait(10)
    final = shown(chat, "answer")[0]
    assert "word29" in final and chat.widget.live == {}
    partial = [r for r in renders if r and r != final]
    assert len(partial) >= 3, renders
    assert all(len(a) < len(b) for a, b in zip(partial, partial[1:]))
    assert shown(chat, "user") == [words]
    assert turn.status == "done" and turn.usage.output == len(turn.text.split())
    assert not chat.widget.busy
    [row] = session_usage.by_model()
    assert (row.model, row.responses, row.output) == ("echo", 1, turn.usage.output)
    assert f"{turn.usage.output} output tokens" in chat.widget.footer
    assert "1 response " in chat.widget.footer
    # What the widget draws from: the messages, in order, as HTML made from them.
    kinds = [(m["kind"], m["who"]) for m in chat.widget.messages]
    assert kinds == [("user", "You"), ("answer", "echo")]
    assert "word29" in chat.widget.messages[1]["html"]


def test_a_stopped_answer_stays_in_the_conversation_and_counts_as_an_estimate():
    chat = llm_notebook.chat("markov", length=400, delay=0.02, seed=3)
    turn = chat.send("alpha beta gamma delta epsilon")
    poll(lambda: len(turn.text.split()) >= 3)
    from_front_end(chat.widget, {"event": "stop"})  # the Stop button
    assert chat.wait(10)
    assert turn.status == "interrupted" and turn.partial
    assert 3 <= len(turn.text.split()) < 400
    answer = shown(chat, "answer")[0]
    assert answer.startswith(turn.text.strip()) and "interrupted" in answer
    assert chat.widget.messages[-1]["partial"] is True
    # The next model sees it: the turn is in the conversation.
    assert chat.conversation.responses == [turn.response]
    # The model never counted (it was stopped): the footer says what it probably cost.
    assert turn.usage_estimated and turn.usage.output >= 1 and turn.usage.input >= 1
    assert "0 input · 0 output" not in chat.widget.footer
    assert f"{turn.usage.input} input · {turn.usage.output} output tokens" in chat.widget.footer
    assert "estimated" in chat.widget.footer
    chat.model = "echo"
    after = chat.send("what did you say?")
    chat.wait(10)
    assert "**Earlier turns** (1)" in after.text and "alpha beta gamma" in after.text
    # A Stop right after Send stops that one too; nothing said, nothing kept.
    again = chat.send("again")
    chat.stop()
    assert chat.wait(10) and not chat.busy
    assert again.status == "interrupted" and len(chat.history) == 3


def test_switching_model_from_the_menu_keeps_the_history():
    chat = llm_notebook.chat("markov")
    chat.send("alpha beta gamma")
    chat.wait(10)
    from_front_end(chat.widget, {"event": "model", "id": "echo"})
    assert chat.model.model_id == "echo" and chat.widget.current_model == "echo"
    assert "Now talking to echo" in chat.widget.notice
    second = chat.send("second question")
    chat.wait(10)
    assert "**Earlier turns** (1)" in second.text
    assert "1. **user:** alpha beta gamma" in second.text
    assert [t.model for t in chat.history] == ["markov", "echo"]
    assert len(chat.conversation.responses) == 2
    assert "2 responses" in chat.widget.footer and "(markov 1, echo 1)" in chat.widget.footer


def test_switching_model_keeps_the_options_it_takes_and_drops_the_rest_with_a_note():
    chat = llm_notebook.chat("markov", length=200, delay=0.0)
    from_front_end(chat.widget, {"event": "model", "id": "echo"})
    assert chat.options == {"delay": 0.0}
    assert "Dropped options echo does not take: length" in chat.widget.notice
    turn = chat.send("still works")
    chat.wait(10)
    assert turn.status == "done" and "unknown option" not in (turn.error or "")
    assert [field["name"] for field in chat.widget.option_fields] == ["delay"]


def test_the_options_editor_shows_the_models_fields_and_checks_what_is_typed():
    chat = llm_notebook.chat("markov", seed=4)
    fields = {field["name"]: field for field in chat.widget.option_fields}
    assert set(fields) == {"delay", "length", "seed"}
    assert (fields["length"]["type"], fields["length"]["default"]) == ("integer", "50")
    assert (fields["length"]["minimum"], fields["length"]["maximum"]) == (1, 10_000)
    assert fields["seed"]["set"] and fields["seed"]["value"] == 4 and not fields["length"]["set"]
    assert fields["delay"]["type"] == "number" and "streaming" in fields["delay"]["description"]
    # Typed text, as the editor sends it, becomes the option's type.
    from_front_end(chat.widget, {"event": "option", "name": "length", "value": "7"})
    assert chat.options == {"seed": 4, "length": 7} and chat.widget.option_error == ""
    turn = chat.send("one two three four")
    chat.wait(10)
    assert len(turn.text.split()) == 7
    # A bad value is a note in the editor; the options stay as they were.
    from_front_end(chat.widget, {"event": "option", "name": "length", "value": "0"})
    assert chat.options == {"seed": 4, "length": 7}
    assert "option 'length'" in chat.widget.option_error and "greater than or equal to 1" in \
        chat.widget.option_error
    from_front_end(chat.widget, {"event": "option", "name": "colour", "value": "red"})
    assert "markov has no option 'colour'" in chat.widget.option_error
    # An empty value unsets the option (its default applies again).
    from_front_end(chat.widget, {"event": "option", "name": "seed", "value": ""})
    assert chat.options == {"length": 7} and chat.widget.option_error == ""
    assert [f["name"] for f in chat.widget.option_fields if f["set"]] == ["length"]


def test_enter_sends_an_uploaded_file_and_the_attach_field():
    png = png_bytes()
    chat = llm_notebook.chat("echo")
    # What the box sends on Enter: the text, the attach field, the files' bytes as buffers.
    from_front_end(chat.widget, {"event": "submit", "id": 1, "text": "what is in the picture?",
                                 "attach": "", "files": [{"name": "dot.png", "type": "image/png"}]},
                   (png,))
    chat.wait(10)
    [turn] = chat.history
    assert f"1. `image/png`, {len(png):,} bytes, 4×3 px" in turn.text
    assert "_Attached:_ `image/png`" in shown(chat, "user")[0]



def test_a_message_keeps_its_line_breaks_and_its_code_block_as_typed():
    chat = llm_notebook.chat("echo")
    chat.send("two lines\nhere\n\n```\nx = 1\ny = 2\n```")
    chat.wait(10)
    [asked] = shown(chat, "user")
    assert markdown_html(asked).startswith("<p>two lines<br />\nhere</p>")
    assert "<code>x = 1\ny = 2\n</code>" in markdown_html(asked)  # the code as typed, no spaces added


def test_a_message_that_cannot_be_sent_is_an_error_in_the_chat():
    chat = llm_notebook.chat("echo")
    turn = chat.submit("look at this", attach="no_such_variable")
    assert turn.status == "error" and turn.response is None
    [error] = shown(chat, "error")
    assert unescaped(error).startswith("**Error:** 'no_such_variable' is neither a variable nor a file")
    assert chat.widget.messages[-1]["kind"] == "error"
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
        assert "Model 'failing-in-chat' failed: RuntimeError: the server went away" in unescaped(error)
        assert session_usage.by_model()[0].model == "failing-in-chat"
    finally:
        registry.unregister("failing-in-chat")

    chat = llm_notebook.chat("markov", colour="red")
    turn = chat.send("hello")
    assert turn.status == "error" and "unknown option 'colour'" in turn.error
    assert "unknown option 'colour'" in shown(chat, "error")[0]


def test_sending_while_busy_or_empty_is_refused_with_a_notice():
    chat = llm_notebook.chat("echo", delay=0.05)
    assert chat.send("   ") is None and "Write a message" in chat.widget.notice
    chat.send("one two three four five six")
    assert chat.send("too soon") is None and "Still answering" in chat.widget.notice
    from_front_end(chat.widget, {"event": "model", "id": "markov"})
    assert chat.model.model_id == "echo" and chat.widget.current_model == "echo"
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
    assert "**Earlier turns** (1)" in turn.text
    assert re.search(r"\*\*System\*\*\n\n> (```text\n> )?be brief", turn.text)
    assert chat.conversation is conversation and len(conversation.responses) == 2
    assert "2 responses" in chat.widget.footer


def test_model_text_reaches_the_widget_as_text_never_as_markup():
    hostile = ('<img src=x onerror="alert(1)"> <script>alert(2)</script> '
               '[click](javascript:alert(3))\n\n```python\nprint("<b>")\n```')
    chat = llm_notebook.chat("echo")
    chat.send(hostile)
    chat.wait(10)
    for message in chat.widget.messages:
        assert "<img" not in message["html"] and "<script" not in message["html"]
        assert 'href="javascript' not in message["html"]
    assert "&lt;img src=x" in chat.widget.messages[0]["html"]
    # Code is highlighted in classes the theme colours, its text escaped.
    assert 'class="nb">print</span>' in markdown_html("```python\nprint('<b>')\n```")


def test_usage_view_follows_the_session_until_closed():
    view = llm_notebook.usage_view()

    def table():
        return view.saved_text["text/markdown"]

    assert "No responses yet" in table() and view.rows == []
    chat = llm_notebook.chat("echo")
    chat.send("one two")
    chat.wait(10)
    assert re.search(r"^\| echo \| 1 \| 2 \| \d+ \|", table(), re.M)
    assert [row[:3] for row in view.rows] == [["echo", "1", "2"], ["total", "1", "2"]]
    response = llm_notebook.get_model("markov").prompt("three four")
    response.text()  # every finished response counts, not only the magics' and the chat's
    assert "| markov | 1 |" in table() and "| total | 2 |" in table()
    view.close()
    chat.send("after closing")
    chat.wait(10)
    assert "| echo | 1 |" in table() and "| total | 2 |" in table()


def test_model_picker_sets_the_stored_default():
    picker = llm_notebook.model_picker()
    assert picker.selected == "echo" and {"id": "markov", "aliases": []} in picker.choices
    from_front_end(picker, {"event": "choose", "id": "markov"})
    assert llm_notebook.get_default_model() == "markov" and picker.selected == "markov"
    assert picker.status == "Default model for %%llm: markov"
    assert picker.saved_text["text/plain"] == "Default model for %%llm: markov"
    assert llm_notebook.chat().model.model_id == "markov"
    from_front_end(picker, {"event": "choose", "id": "no-such-model"})
    assert "no-such-model" in picker.status and picker.selected == "markov"


def test_code_actions_list_the_code_blocks_of_an_answer():
    answer = ("Try this:\n\n```python\nimport math\nprint(math.pi)\n```\n\nor in a shell:\n\n"
              "```bash\necho hi\n```\n\n    indented = True\n")
    actions = code_actions(answer)
    assert actions.blocks == [{"language": "python", "code": "import math\nprint(math.pi)"},
                              {"language": "bash", "code": "echo hi"},
                              {"language": "", "code": "indented = True"}]
    assert actions.key == actions.model_id
    data, metadata = actions._repr_mimebundle_()
    assert data[VIEW_MIME]["model_id"] == actions.model_id
    assert data["text/plain"] == ("Code actions (a widget): Copy and Insert below for the 3 code "
                                  "blocks above")
    assert metadata["llm_notebook"] == {"widget": "code actions"}
    assert code_actions("No code here, only `inline` code.") is None


# -- in a real kernel ------------------------------------------------------------------------------

kernel = offline_kernel("%load_ext llm_notebook\nimport llm_notebook")


def test_picker_changes_the_model_percent_percent_llm_uses(kernel):
    shown_picker = kernel.run("picker = llm_notebook.model_picker()\npicker")
    [picker_output, saved_text] = shown_picker.displays()
    assert VIEW_MIME in picker_output["data"] and VIEW_MIME not in saved_text["data"]
    assert saved_text["data"]["text/plain"] == "Default model for %%llm: echo"
    kernel.run("picker.value = 'markov'")
    answer = kernel.run("%%llm -o seed 1 -o length 6\nalpha beta gamma").data("text/markdown")[0]
    assert "Prompt" not in answer and set(answer.split()) <= {"alpha", "beta", "gamma"}
    kernel.run("%llm default echo")
    assert kernel.run("print(picker.selected)").stream().strip() == "echo"


def test_chat_in_a_kernel_attaches_plot_and_variables_and_saves_its_text(kernel):
    kernel.run("from IPython.display import display\nfrom PIL import Image\n"
               "img = Image.new('RGB', (12, 34), 'blue')\ndisplay(img)")
    index = len(kernel.nb.cells)
    displayed = kernel.run("chat = llm_notebook.chat('echo')\nchat")
    [widget, record] = displayed.displays()
    assert widget["data"]["text/plain"].startswith("Chat with echo")
    assert widget["metadata"]["llm_notebook"] == {"widget": "chat"}
    assert record["data"] == {"text/markdown": "_Usage: no responses yet_",
                              "text/plain": "Usage: no responses yet"}
    assert record["metadata"]["llm_notebook"] == {"text_of": "chat"}
    kernel.run("chat.submit('describe the plot', attach='@plot')\nchat.wait(10)")
    kernel.run("chat.submit('and this variable', attach='img')\nchat.wait(10)")
    texts = kernel.run("for t in chat.history: print(t.status, repr(t.text))").stream()
    assert texts.count("done ") == 2 and texts.count("12×34 px") == 2
    # The chat's cell now holds the conversation as Markdown, for GitHub and nbconvert, in an
    # output that is no widget at all.
    saved = kernel.nb.cells[index].outputs[1]["data"]
    assert "**You**\n\ndescribe the plot" in saved["text/markdown"]
    assert "> and this variable" in saved["text/markdown"]
    assert "_Usage: 2 responses" in saved["text/markdown"]
    assert set(saved) == {"text/markdown", "text/plain"}
    error = kernel.run("print(chat.submit('x', attach='@plot-9').error)").stream()
    assert error.startswith("@plot-9 asks for the image 9 back")


def test_map_shows_progress_in_one_display_that_ends_as_its_summary(kernel):
    run = kernel.run("answers = llm_notebook.map('say {}', ['a', 'b', 'c'], model='echo')")
    [shown_progress] = run.displays()
    assert VIEW_MIME not in shown_progress["data"]  # not a widget: no widget manager needed
    for mime in ("text/plain", "text/html"):
        assert "echo: 3 of 3 prompts done in" in shown_progress["data"][mime]
    assert '<progress value="3" max="3">' in shown_progress["data"]["text/html"]
    updates = [m for m in run.display_messages() if m["msg_type"] == "update_display_data"]
    assert updates, "the bar is updated in place"
    kernel.run("from llm_notebook.models import Model\n"
               "class Failing(Model):\n"
               "    model_id = 'fails-in-map'\n"
               "    def execute(self, prompt, stream, response, conversation):\n"
               "        raise RuntimeError('no')\n"
               "llm_notebook.register(Failing())")
    failed = kernel.run("answers = llm_notebook.map('{}', ['a', 'b'], model='fails-in-map', "
                        "retries=0)").displays()[0]
    assert "fails-in-map: 2 of 2 prompts done · 2 failed in" in failed["data"]["text/plain"]


def test_the_saved_example_reads_without_widgets():
    """GitHub and nbconvert render no widgets: the saved outputs still tell the story."""
    import nbformat

    notebook = nbformat.read(str(EXAMPLE), as_version=4)
    shown = "\n".join(output["data"]["text/markdown"] for cell in notebook.cells
                      for output in cell.get("outputs", []) if "text/markdown" in output.get("data", {}))
    asked = "Which **columns** of the sales table hold dates?"
    assert f"**You**\n\n{asked}\n\n**echo**\n\n**Prompt**\n\n> ```text\n> {asked}\n> ```" in shown
    # the chat's footer, with its cost: "—", since no price is known for echo
    assert re.search(r"^_Usage: 1 response · 8 input · \d+ output tokens · [\d.]+ s · cost —_$",
                     shown, re.M)
    assert re.search(r"^\| echo \| 2 \| \d+ \| \d+ \|", shown, re.M)  # the chat's and %%llm's
    assert "_Default model for %%llm: echo_" in shown
