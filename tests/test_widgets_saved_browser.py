"""A notebook with every widget, saved in JupyterLab, its kernel shut down, then reopened.

Real parts only: JupyterLab on loopback with its default settings (and once with "save widget
state" on), a kernel running this interpreter, headless Chromium, nbconvert. What a reader of
the reopened notebook sees is checked on the page, in nbconvert's HTML in the browser, and in
the saved file's mimebundles. Screenshots go to the test's tmp_path/screenshots; the
reopened page is also kept in docs/images/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect

VIEW_MIME = "application/vnd.jupyter.widget-view+json"
STATE_MIME = "application/vnd.jupyter.widget-state+json"
WIDGETS_PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"
ASKED = "Which columns of the sales table hold dates?"

CELLS = [
    "%load_ext llm_notebook\nimport llm_notebook",
    "llm_notebook.model_picker()",
    "chat = llm_notebook.chat('echo')\nchat",
    f"turn = chat.send({ASKED!r})\nchat.wait()\nprint(turn.status)",
    "llm_notebook.usage_view()",
    "answers = llm_notebook.map('Say {}', ['one', 'two', 'three'], model='echo')",
    "from llm_notebook.notebook.widgets import code_actions\n"
    "code_actions('Run:\\n\\n```python\\nprint(\"saved\")\\n```')",
]
PICKER_CELL, CHAT_CELL, USAGE_CELL, MAP_CELL = 1, 2, 4, 5


def widget_notebook():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    return notebook


def save(notebook) -> None:
    notebook._evaluate("await window.jupyterapp.commands.execute('docmanager:save');")


def shut_down_kernel(lab, path: str) -> None:
    for session in lab.api("GET", "api/sessions"):
        if session.get("path") == path:
            lab.api("DELETE", f"api/sessions/{session['id']}")


def set_lab_setting(lab, plugin: str, values: dict) -> None:
    body = json.dumps({"raw": json.dumps(values)}).encode()
    request = urllib.request.Request(f"{lab.url}lab/api/settings/{plugin}", data=body,
                                     method="PUT", headers={"Authorization": f"token {lab.token}",
                                                            "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def run_and_reopen(open_notebook, jupyterlab, name: str):
    """Run every cell, save in the browser, shut the kernel down, reopen: the page and file."""
    notebook = open_notebook(widget_notebook(), name=name)
    notebook.run_all()
    expect(notebook.page.locator(".llm-chat-footer")).to_contain_text("Usage: 1 response")
    notebook.screenshot("live")
    save(notebook)
    shut_down_kernel(jupyterlab, notebook.path)
    notebook.page.reload()
    notebook.wait_until_ready()
    return notebook, jupyterlab.root_dir / notebook.path


def assert_every_widget_shows_its_saved_form(notebook) -> None:
    page = notebook.page
    chat = page.locator(".llm-chat")
    expect(chat).to_have_count(1)
    expect(chat.locator(".llm-chat-user")).to_contain_text(ASKED)
    expect(chat.locator(".llm-chat-answer").first).to_contain_text("Prompt")
    expect(chat.locator(".llm-chat-footer")).to_contain_text("Usage: 1 response")
    expect(chat.get_by_text("A saved chat: run its cell again")).to_be_visible()
    expect(chat.locator("textarea")).to_be_hidden()  # no kernel behind it: no message box
    expect(page.locator(".llm-model-picker")).to_contain_text("Default model for %%llm: echo")
    usage = page.locator(".llm-usage-view")
    expect(usage.locator("tbody tr").first.locator("td").first).to_have_text("echo")
    expect(notebook.outputs(MAP_CELL)).to_contain_text("echo: 3 of 3 prompts done in")
    expect(page.locator(".llm-code-actions")).to_contain_text('print("saved")')
    # Each widget once: the text copies that follow them stay hidden where they are drawn.
    expect(page.get_by_text("Error displaying widget")).to_have_count(0)
    expect(page.get_by_text("Loading widget")).to_have_count(0)
    for cell in (PICKER_CELL, CHAT_CELL, USAGE_CELL):
        widget, text_copy = notebook.outputs(cell).nth(0), notebook.outputs(cell).nth(1)
        expect(widget).to_be_visible()
        expect(text_copy).to_be_hidden()
    # Restored widgets are disconnected: no broken-link badge on them.
    badges = page.evaluate(
        "() => [...document.querySelectorAll('.llm-nb-widget, .llm-nb-widget *')]"
        ".map((node) => getComputedStyle(node, '::before').content)"
        ".filter((content) => content && content !== 'none' && content !== 'normal')")
    assert badges == []


def test_a_reopened_notebook_shows_every_widget_as_saved(open_notebook, jupyterlab, tmp_path):
    notebook, path = run_and_reopen(open_notebook, jupyterlab, "reopened.ipynb")
    assert_every_widget_shows_its_saved_form(notebook)
    notebook.screenshot("reopened", keep_as="reopened-notebook.png")

    saved = nbformat.read(str(path), as_version=4)
    states = saved.metadata["widgets"][STATE_MIME]["state"]
    kinds = sorted(state["state"]["_anywidget_id"].rsplit(".", 1)[-1]
                   for state in states.values() if "_anywidget_id" in state["state"])
    assert kinds == ["ChatView", "CodeActions", "ModelPicker", "UsageView"]
    # Readers of the mimebundles: every widget output is followed by its text copy (no widget
    # in it), and the map's progress is plain text and HTML.
    chat_outputs = saved.cells[CHAT_CELL].outputs
    assert VIEW_MIME in chat_outputs[0].data and chat_outputs[0].data["text/plain"].startswith(
        "Chat with echo")
    assert set(chat_outputs[1].data) == {"text/markdown", "text/plain"}
    assert f"**You**\n\n{ASKED}" in chat_outputs[1].data["text/markdown"]
    assert "| echo | 4 |" in saved.cells[USAGE_CELL].outputs[1].data["text/markdown"]
    [progress] = saved.cells[MAP_CELL].outputs
    assert VIEW_MIME not in progress.data and "3 of 3 prompts done" in progress.data["text/plain"]

    # nbconvert's HTML, offline in the browser: each widget's saved text, no widget error.
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", "--output-dir",
                    str(tmp_path), str(path)], check=True, capture_output=True)
    page = notebook.page
    page.goto((tmp_path / "reopened.html").as_uri())
    notebook.screenshot("nbconvert")
    expect(page.locator(".jp-OutputArea-output", has_text=f"You {ASKED}")).to_have_count(1)
    expect(page.locator("table").filter(has_text="total")).to_have_count(1)
    expect(page.get_by_text("Default model for %%llm: echo")).to_have_count(1)
    expect(page.get_by_text(re.compile("echo: 3 of 3 prompts done in"))).to_have_count(1)
    expect(page.get_by_text("Error displaying widget")).to_have_count(0)
    notebook.screenshot("nbconvert")


def test_with_save_widget_state_on_the_widgets_reopen_without_broken_links(
        open_notebook, jupyterlab):
    set_lab_setting(jupyterlab, WIDGETS_PLUGIN, {"saveState": True})
    try:
        notebook, path = run_and_reopen(open_notebook, jupyterlab, "state-on.ipynb")
        assert_every_widget_shows_its_saved_form(notebook)
        notebook.screenshot("reopened-state-on", keep_as="reopened-notebook-state-on.png")
    finally:
        set_lab_setting(jupyterlab, WIDGETS_PLUGIN, {})
    states = nbformat.read(str(path), as_version=4).metadata["widgets"][STATE_MIME]["state"]
    # Lab saved every model (the layouts too); the package's are among them.
    assert sum("_anywidget_id" in state["state"] for state in states.values()) == 4
    assert len(states) > 4
