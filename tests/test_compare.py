"""The Python API under the magics, without IPython: models side by side, named conversations and
answers in the background, on the offline models and models defined here."""

from __future__ import annotations

import threading

import pytest

import llm_notebook
from llm_notebook import Model, Options
from llm_notebook.comparison import HEADERS
from llm_notebook.conversations import session_conversations


class Gate(Options):
    name: str = "default"


class Waiter(Model):
    """Says its first word, then waits for a gate the test opens: proves streams run at once."""

    model_id = "waiter"
    Options = Gate
    gates: dict[str, threading.Event] = {}
    started: dict[str, threading.Event] = {}

    def execute(self, prompt, stream, response, conversation):
        name = prompt.options.name
        yield f"{name} "
        type(self).started[name].set()
        if not type(self).gates[name].wait(30):
            yield "(gate never opened)"
            return
        yield "done"
        response.set_usage(input=1, output=2)


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_NOTEBOOK_USER_PATH", str(tmp_path))
    llm_notebook.register(Waiter())
    session_conversations.reset()


def test_compare_streams_every_model_at_once_and_returns_a_table():
    Waiter.gates = {"a": threading.Event()}
    Waiter.started = {"a": threading.Event()}
    heard = []

    def on_chunk(index, chunk):
        heard.append((index, chunk))
        if index == 1:  # echo has begun: the waiter, blocked mid-answer, may go on
            Waiter.gates["a"].set()

    comparison = llm_notebook.compare(
        "go", models=["waiter", "echo", "markov"], on_chunk=on_chunk,
        waiter={"name": "a"}, markov={"length": 3, "seed": 1})
    assert [a.status for a in comparison] == ["done", "done", "done"]
    assert comparison[0].text == "a done", "echo waited for the waiter: they did not run at once"
    assert "```text\n> go\n" in comparison[1].text and len(comparison[2].text.split()) == 3
    assert {index for index, _ in heard} == {0, 1, 2} and not comparison.interrupted
    data, metadata = comparison.table()
    lines = data["text/markdown"].splitlines()
    assert lines[0] == "| " + " | ".join(HEADERS) + " |"
    assert lines[2].startswith("| waiter | done | 1 | 2 |")
    assert "3 answers side by side in" in lines[-1]
    assert [r["model"] for r in metadata["llm_notebook"]["comparison"]] == ["waiter", "echo", "markov"]


def test_shared_options_must_fit_every_model_and_own_options_one():
    with pytest.raises(llm_notebook.OptionsError, match=(
            r"Option 'length' goes to every model, but echo has no such option: give it to markov "
            r"alone \(markov.length as -o in %llm, markov=\{'length': \.\.\.\} in compare\(\)\)")):
        llm_notebook.compare("hi", models=["echo", "markov"], length=3)
    with pytest.raises(llm_notebook.OptionsError, match="not one of the models asked"):
        llm_notebook.compare("hi", models=["echo", "markov"], model_options={"gpt": {"x": 1}})
    with pytest.raises(llm_notebook.OptionsError, match="give its own options as a dict"):
        llm_notebook.compare("hi", models=["echo", "markov"], markov=3)
    with pytest.raises(llm_notebook.OptionsError, match="at least two models"):
        llm_notebook.compare("hi", models=["echo"])
    shared = llm_notebook.compare("hi", models=["echo", "markov"], delay=0, markov={"length": 2})
    assert "- `delay`: `0.0`" in shared[0].text and len(shared[1].text.split()) == 2


def test_a_comparison_displays_as_columns_and_prints_as_sections():
    comparison = llm_notebook.compare("<b>x</b>", models=["echo", "markov"], markov={"length": 2})
    data, metadata = comparison._repr_mimebundle_()
    assert data["text/markdown"].count('<div style="flex: 1 1 0;') == 2
    assert [a["model"] for a in metadata["llm_notebook"]["answers"]] == ["echo", "markov"]
    assert str(comparison).startswith("── echo ──\n**Prompt**")
    assert repr(comparison) == "<Comparison echo, markov>"


def test_named_conversations_keep_their_model_and_turns():
    story = llm_notebook.conversation("story", model="markov")
    story.prompt("once upon a time", length=3, seed=1).text()
    again = llm_notebook.conversation("story")
    assert again is story and len(again.responses) == 1
    with pytest.raises(llm_notebook.LLMNotebookError, match="is with model 'markov', not 'echo'"):
        llm_notebook.conversation("story", model="echo")
    with pytest.raises(llm_notebook.LLMNotebookError, match="needs a name"):
        llm_notebook.conversation("  ")
    assert llm_notebook.conversation("other").model.model_id == "echo"  # the default model


def test_in_background_without_a_notebook_is_a_handle_to_wait_for():
    Waiter.gates = {"bg": threading.Event()}
    Waiter.started = {"bg": threading.Event()}
    handle = llm_notebook.in_background("go", model="waiter", name="bg")
    assert Waiter.started["bg"].wait(30) and not handle.done()
    assert str(handle) == "bg "
    Waiter.gates["bg"].set()
    [waited] = llm_notebook.wait_for_background(timeout=30)
    assert waited is handle and handle.result().text == "bg done"
    assert llm_notebook.wait_for_background() == []
