"""The chat example in a real JupyterLab and a real browser: type, send, watch it stream.

Real parts only: JupyterLab on loopback, a kernel running this interpreter, headless Chromium
(Debian's, driven by Playwright). Screenshots go to the test's tmp_path/screenshots.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "chat.ipynb"


def cell_index(notebook_path: Path, starts_with: str) -> int:
    import nbformat

    cells = nbformat.read(str(notebook_path), as_version=4).cells
    return next(i for i, cell in enumerate(cells) if cell.source.startswith(starts_with))


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
    partial = [text for text in seen[:-1] if text.strip() and text != "…"]
    assert len(partial) >= 2, seen
    assert all(len(a) <= len(b) for a, b in zip(partial, partial[1:])), seen


def test_chat_and_llm_cell_stream_in_jupyterlab(open_notebook, tmp_path):
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
    answer = chat.locator(".llm-chat-answer").nth(1)
    seen = watch_text(answer, lambda text: "delay" in text)
    assert_streamed(seen)
    expect(answer.locator("blockquote")).to_contain_text("Streamed from the browser: w0 w1")
    expect(footer).to_contain_text("Usage: 2 responses")
    expect(box).to_have_value("")
    footer.scroll_into_view_if_needed()
    notebook.screenshot("chat-after-send")

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
    expect(third.locator("blockquote")).to_contain_text(re.compile(r"first line\s+second line"))
    typed = chat.locator(".llm-chat-user").nth(2).locator("p")
    expect(typed).to_contain_text(re.compile(r"first line\s*second line"))
    expect(typed.locator("br")).to_have_count(1)  # shown as typed, on two lines
    expect(footer).to_contain_text("Usage: 3 responses")
    expect(box).to_have_value("")
    expect(echo_responses(usage)).to_have_text("4")  # three in the chat, one %%llm cell
    footer.scroll_into_view_if_needed()
    notebook.screenshot("chat-after-enter")

    # A %%llm cell, run again with Shift+Enter: its Markdown streams, then the usage table.
    index = cell_index(EXAMPLE, "%%llm")
    cell = notebook.cells().nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    output = notebook.outputs(index).first
    seen = watch_text(output, lambda text: "delay" in text)
    assert_streamed(seen)
    expect(output.locator("blockquote li")).to_have_text(
        ["revenue grew 12% on the year", "costs fell in Q3, mostly shipping"])
    expect(output.locator("strong", has_text="two")).to_be_visible()
    table = notebook.outputs(index).locator("table")
    expect(table.locator("th")).to_have_text(
        ["model", "input", "output", "details", "duration", "output tok/s"])
    expect(table.locator("tbody tr td").first).to_have_text("echo")
    expect(echo_responses(usage)).to_have_text("5")
    notebook.wait_for_idle()
    notebook.screenshot("streamed-answer", cell)
    notebook.screenshot("page")
