"""--approve in JupyterLab, with a real click: the approval widget appears under the chain's
answer, Allow lets the call run (its block then says done), and the notebook, saved and reopened
without a kernel, shows the call and what was decided, with no widget error.

Real parts only: JupyterLab on loopback, a kernel running this interpreter, headless Chromium.
"""

from __future__ import annotations

import json

import nbformat
from playwright.sync_api import expect

from tests.test_widgets_saved_browser import save, shut_down_kernel

SCRIPT = json.dumps({"tool_calls": [{"name": "lookup", "arguments": {"q": "panda"}}]})
CELLS = [
    "%load_ext llm_notebook\nran = []\n\ndef lookup(q: str) -> str:\n"
    "    \"\"\"Look q up.\"\"\"\n    ran.append(q)\n    return f'found {q}'",
    f"%%llm -m echo -T lookup --approve\nFind it {SCRIPT}",
]


def test_allow_clicked_in_jupyterlab_runs_the_call_and_the_decision_is_saved(open_notebook,
                                                                              jupyterlab):
    notebook_source = nbformat.v4.new_notebook()
    notebook_source.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    notebook = open_notebook(notebook_source, name="approve.ipynb")
    notebook.run_all()
    page = notebook.page
    question = page.locator(".llm-approval")
    expect(question).to_contain_text("Allow lookup(q='panda')?")
    expect(notebook.outputs(1).first).to_contain_text("waiting for approval")
    notebook.screenshot("asking")
    question.locator("button[data-decision='allow']").click()
    expect(question).to_contain_text("allowed")
    expect(notebook.outputs(1).first).to_contain_text("done in")
    expect(notebook.outputs(1).first).to_contain_text("found panda")
    notebook.screenshot("allowed")

    save(notebook)
    shut_down_kernel(jupyterlab, notebook.path)
    page.reload()
    notebook.wait_until_ready()
    restored = page.locator(".llm-approvals")
    expect(restored.locator(".llm-approval-question")).to_have_text("Allow lookup(q='panda')?")
    expect(restored.locator(".llm-approval-decision")).to_have_text("allowed")
    expect(restored.locator("button")).to_have_count(0)
    expect(page.get_by_text("Error displaying widget")).to_have_count(0)
    notebook.screenshot("reopened")
    saved = nbformat.read(str(jupyterlab.root_dir / notebook.path), as_version=4)
    texts = [output.get("data", {}).get("text/plain", "") for output in saved.cells[1].outputs]
    assert any(text.endswith("Allow lookup(q='panda')? allowed") for text in texts)
