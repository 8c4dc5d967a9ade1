"""The browser harness works end to end: Lab renders ipywidgets and streamed display updates.

Real parts only: a JupyterLab server on loopback, its kernel running this
interpreter, and headless Chromium rendering the page.
"""

import re
import sys

import nbformat
from playwright.sync_api import expect

WIDGET_CELL = """\
import ipywidgets as widgets
widgets.HBox([
    widgets.Textarea(value="typed in the kernel", description="Note"),
    widgets.Button(description="Smoke button"),
])
"""

STREAM_CELL = """\
import llm_notebook
from IPython.display import Markdown, display

handle = display(Markdown("_waiting for the first chunk_"), display_id=True)
text = ""
for chunk in llm_notebook.get_model("echo").prompt("streamed into the browser", delay=0.05):
    text += chunk
    handle.update(Markdown(text))
"""

KERNEL_CELL = "import sys; print(sys.executable)"


def smoke_notebook():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(WIDGET_CELL),
        nbformat.v4.new_code_cell(STREAM_CELL),
        nbformat.v4.new_code_cell(KERNEL_CELL),
    ]
    return notebook


def test_widgets_and_streamed_markdown_render_in_jupyterlab(open_notebook):
    notebook = open_notebook(smoke_notebook(), name="smoke.ipynb")
    notebook.run_all()

    button = notebook.outputs(0).locator("button.jupyter-button", has_text="Smoke button")
    expect(button).to_be_visible()
    textarea = notebook.outputs(0).locator("textarea")
    expect(textarea).to_be_visible()
    expect(textarea).to_have_value("typed in the kernel")
    notebook.screenshot("widgets", notebook.cells().nth(0))

    # Each update replaced the one display in place: one output, the final text.
    streamed = notebook.outputs(1)
    expect(streamed).to_have_text([re.compile(r"^Prompt\s+streamed into the browser\s+Options")])
    expect(streamed.locator("blockquote")).to_have_text("streamed into the browser")
    expect(streamed.locator("strong", has_text="Options")).to_be_visible()
    expect(streamed).not_to_contain_text("waiting for the first chunk")
    notebook.screenshot("streamed_markdown", notebook.cells().nth(1))

    expect(notebook.outputs(2)).to_have_text(sys.executable)
    notebook.screenshot("page")
