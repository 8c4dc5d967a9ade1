"""The chat in a real JupyterLab and a real browser: type, send, watch it stream, and use it.

Real parts only: JupyterLab on loopback, a kernel running this interpreter, headless Chromium
(Debian's, driven by Playwright). Screenshots go to the test's tmp_path/screenshots; the ones
the README shows are also kept in docs/images/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "chat.ipynb"


def cell_index(notebook_path: Path, starts_with: str) -> int:
    cells = nbformat.read(str(notebook_path), as_version=4).cells
    return next(i for i, cell in enumerate(cells) if cell.source.startswith(starts_with))


def notebook_of(*sources: str):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return notebook


def watch_text(locator, done, timeout_s: float = 30.0) -> list[str]:
    """The distinct texts `locator` shows until `done(text)`: what a reader saw, in order."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while True:
        text = locator.inner_text() if locator.count() else ""
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        if text and done(text):
            return seen
        assert time.monotonic() < deadline, f"gave up waiting; seen: {seen[-3:]}"
        time.sleep(0.02)


def echo_responses(usage_view):
    """The `responses` cell of echo's row in the usage view's table."""
    return usage_view.locator("tbody tr", has_text="echo").locator("td").nth(1)


def assert_streamed(seen: list[str]) -> None:
    """More than one growing partial text came before the final one."""
    partial = [text for text in seen[:-1] if text.strip() and text.strip() != "…"]
    assert len(partial) >= 2, seen
    assert all(len(a) <= len(b) for a, b in zip(partial, partial[1:])), seen


def in_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + box["height"] <= size["height"]


def test_chat_and_llm_cell_stream_in_jupyterlab(open_notebook):
    notebook = open_notebook(EXAMPLE, name="chat.ipynb")
    notebook.run_all()
    page = notebook.page
    chat = page.locator(".llm-chat")
    expect(chat).to_have_count(1)
    footer = chat.locator(".llm-chat-footer")
    expect(footer).to_contain_text("Usage: 1 response ")  # the turn sent from code
    expect(page.locator(".llm-model-picker select")).to_have_value("echo")
    usage = page.locator(".llm-usage-view")
    expect(usage.locator("table")).to_contain_text("total")

    # Type and press Send: the answer streams into the chat, then the footer counts it.
    box = chat.locator("textarea.llm-chat-input")
    box.click()
    words = " ".join(f"w{i}" for i in range(40))
    box.type(f"Streamed from the browser: {words}")
    chat.get_by_role("button", name="Send").click()
    # While it streams the answer is the chat's live message; then it joins the transcript.
    answer = chat.locator(".llm-chat-answer, .llm-chat-live:not([hidden])").nth(1)
    seen = watch_text(answer, lambda text: "delay" in text)
    assert_streamed(seen)
    expect(answer).to_contain_text("Streamed from the browser: w0 w1")
    expect(footer).to_contain_text("Usage: 2 responses")
    expect(box).to_have_value("")

    # Shift+Enter adds a line and runs nothing; Enter sends.
    box.click()
    box.type("first line")
    page.keyboard.press("Shift+Enter")
    box.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    expect(chat.locator(".llm-chat-user")).to_have_count(2)
    page.keyboard.press("Enter")
    expect(chat.locator(".llm-chat-user")).to_have_count(3)
    third = chat.locator(".llm-chat-answer").nth(2)
    expect(third).to_contain_text(re.compile(r"first line\s+second line"))
    typed = chat.locator(".llm-chat-user").nth(2).locator("p")
    expect(typed).to_contain_text(re.compile(r"first line\s*second line"))
    expect(typed.locator("br")).to_have_count(1)  # shown as typed, on two lines
    expect(footer).to_contain_text("Usage: 3 responses")
    expect(box).to_have_value("")
    expect(echo_responses(usage)).to_have_text("4")  # three in the chat, one %%llm cell

    # A %%llm cell, run again with Shift+Enter: its Markdown streams, then the usage table.
    index = cell_index(EXAMPLE, "%%llm")
    cell = notebook.cells().nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    output = notebook.outputs(index).first
    seen = watch_text(output, lambda text: "delay" in text)
    assert_streamed(seen)
    expect(output).to_contain_text("in **two** bullet points")
    expect(echo_responses(usage)).to_have_text("5")
    notebook.wait_for_idle()
    notebook.screenshot("page")


CHAT_CELLS = (
    "import llm_notebook",
    "chat = llm_notebook.chat('echo', system='Answer briefly.')\nchat",
    "for i in range(8):\n"
    "    chat.send(f'Question {i}: what is in column {i}?\\n\\n```python\\ndf.iloc[:, {i}]\\n```')\n"
    "    chat.wait()",
)


def test_the_chat_keeps_its_message_box_in_view_and_follows_new_text(open_notebook):
    notebook = open_notebook(notebook_of(*CHAT_CELLS), name="layout.ipynb")
    notebook.run_all()
    page = notebook.page
    chat = page.locator(".llm-chat")
    expect(chat.locator(".llm-chat-footer")).to_contain_text("Usage: 8 responses")
    chat.scroll_into_view_if_needed()
    # Eight turns fit in the chat's own scroll area: the chat stays shorter than the window,
    # with the message box in view and the newest answer shown.
    height = chat.bounding_box()["height"]
    assert height < page.viewport_size["height"] * 0.9, height
    page.evaluate("(node) => node.scrollIntoView({block: 'end'})", chat.element_handle())
    box = chat.locator("textarea.llm-chat-input")
    assert in_viewport(page, box)
    scroll = chat.locator(".llm-chat-scroll")
    at_bottom = scroll.evaluate("(node) => node.scrollHeight - node.scrollTop - node.clientHeight")
    assert at_bottom < 2, at_bottom
    newest = chat.locator(".llm-chat-answer").nth(7)
    expect(newest).to_be_in_viewport()
    expect(chat.locator(".llm-chat-turn")).to_have_count(8)
    # Role labels stand out from what the answer holds: at least the size of its text.
    role_size = chat.locator(".llm-chat-role").first.evaluate(
        "(node) => parseFloat(getComputedStyle(node).fontSize)")
    body_size = chat.locator(".llm-chat-answer .llm-nb-rendered p").first.evaluate(
        "(node) => parseFloat(getComputedStyle(node).fontSize)")
    assert role_size >= body_size * 0.9, (role_size, body_size)

    # A new message scrolls the transcript to it while it streams.
    box.click()
    box.type("And the last one?")
    page.keyboard.press("Enter")
    expect(chat.locator(".llm-chat-user")).to_have_count(9)
    expect(chat.locator(".llm-chat-answer").nth(8)).to_contain_text("And the last one?")
    expect(chat.locator(".llm-chat-answer").nth(8)).to_be_in_viewport()

    # Copy on a code block of an answer puts the code on the clipboard.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    code = chat.locator(".llm-chat-answer").nth(8).locator(".llm-nb-code").first
    code.hover()
    code.get_by_role("button", name="Copy").click()
    expect(code.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert "And the last one?" in copied
    notebook.wait_for_idle()
    notebook.screenshot("chat-light", chat, keep_as="chat.png")

    # The same chat in the dark theme.
    notebook._evaluate("await window.jupyterapp.commands.execute('apputils:change-theme',"
                       " {theme: 'JupyterLab Dark'});")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'"
                           " && !document.querySelector('#jupyterlab-splash')")
    background = chat.evaluate("(node) => getComputedStyle(node).backgroundColor")
    assert background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), background
    notebook.screenshot("chat-dark", chat, keep_as="chat-dark.png")
    notebook._evaluate("await window.jupyterapp.commands.execute('apputils:change-theme',"
                       " {theme: 'JupyterLab Light'});")


def test_a_message_that_fails_keeps_its_text_in_the_box(open_notebook):
    notebook = open_notebook(notebook_of("import llm_notebook",
                                         "chat = llm_notebook.chat('echo')\nchat"),
                             name="kept.ipynb")
    notebook.run_all()
    page = notebook.page
    chat = page.locator(".llm-chat")
    chat.locator(".llm-chat-attach").fill("no_such_variable")
    box = chat.locator("textarea.llm-chat-input")
    box.click()
    typed = "Look at this table, please"
    box.type(typed)
    page.keyboard.press("Enter")
    expect(chat.locator(".llm-chat-error")).to_contain_text("'no_such_variable' is neither a variable nor a file")
    notebook.wait_for_idle()
    expect(box).to_have_value(typed)
    expect(chat.locator(".llm-chat-attach")).to_have_value("no_such_variable")
    # Fixed, it goes: the box and the attach field empty once the kernel has sent it.
    chat.locator(".llm-chat-attach").fill("")
    box.click()
    page.keyboard.press("Enter")
    expect(chat.locator(".llm-chat-answer")).to_contain_text(typed)
    expect(box).to_have_value("")


def test_the_options_editor_and_a_model_switch(open_notebook):
    notebook = open_notebook(notebook_of("import llm_notebook",
                                         "chat = llm_notebook.chat('markov', length=200, seed=1)\n"
                                         "chat"),
                             name="options.ipynb")
    notebook.run_all()
    page = notebook.page
    chat = page.locator(".llm-chat")
    options = chat.locator(".llm-chat-options")
    expect(options.locator("summary")).to_have_text("Options (2 set)")
    options.locator("summary").click()
    length = options.locator("input[data-option='length']")
    expect(length).to_have_value("200")
    expect(options.locator("input[data-option='delay']")).to_have_attribute(
        "placeholder", "default 0.0")
    expect(options).to_contain_text("Number of words to generate")
    length.fill("0")
    length.press("Enter")
    expect(options.locator(".llm-chat-option-error")).to_contain_text("option 'length'")
    length = options.locator("input[data-option='length']")
    length.fill("5")
    length.press("Enter")
    expect(options.locator(".llm-chat-option-error")).to_have_count(0)
    notebook.screenshot("options", chat)
    box = chat.locator("textarea.llm-chat-input")
    box.click()
    box.type("alpha beta gamma delta")
    page.keyboard.press("Enter")
    answer = chat.locator(".llm-chat-answer").first
    expect(answer).to_have_text(re.compile(r"^markov\s*(\S+\s+){4}\S+\s*$"))

    # Switching to echo keeps seed? No: echo takes only delay. Both are dropped, with a note,
    # and the next message works.
    chat.locator("select.llm-chat-model").select_option("echo")
    expect(chat.locator(".llm-chat-notice")).to_contain_text(
        "Dropped options echo does not take: length, seed")
    expect(options.locator("summary")).to_have_text("Options")
    box.click()
    box.type("after the switch")
    page.keyboard.press("Enter")
    expect(chat.locator(".llm-chat-answer").nth(1)).to_contain_text("after the switch")
    expect(chat.locator(".llm-chat-error")).to_have_count(0)


def test_code_actions_copy_and_insert_a_block_below_the_cell(open_notebook):
    answer = "Two ways:\n\n```python\nprint('first')\n```\n\n```python\nprint('second')\n```"
    notebook = open_notebook(notebook_of(
        "from llm_notebook.notebook.widgets import code_actions",
        f"code_actions({answer!r})", "print('the cell after')"), name="code.ipynb")
    notebook.run_all()
    page = notebook.page
    actions = page.locator(".llm-code-actions .llm-code-action")
    expect(actions).to_have_count(2)
    expect(actions.nth(1)).to_contain_text("python · 1 line")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    actions.nth(0).get_by_role("button", name="Copy").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == "print('first')"
    actions.nth(1).get_by_role("button", name="Insert below").click()
    expect(notebook.cells()).to_have_count(4)
    inserted = notebook._evaluate(
        "const cell = panel.content.model.cells.get(2);"
        " return [cell.sharedModel.getSource(), cell.type, cell.executionCount,"
        " cell.outputs.length];")
    assert inserted == ["print('second')", "code", None, 0]  # under the widget's cell, not run
    notebook.screenshot("code-actions", notebook.cells().nth(1))
