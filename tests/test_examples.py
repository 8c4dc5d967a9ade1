"""Every notebook in examples/ runs top to bottom in a fresh kernel, as a newcomer would run it.

Each runs through `scripts/run_examples.py` (the script that saves their outputs): this
interpreter's kernel, a fresh temporary user directory, no API keys in the environment, and here
no network either (tests/support/offline_site refuses every non-loopback connection and lookup,
in the kernel and in anything it starts). A notebook fails on any error output or text on stderr.

Run a second time against the first run's user directory, in cache mode "only" and still
offline, every notebook gives the same answers: the examples replay from the answer cache.

Cells tagged `skip-execution`, exactly that tag (nbclient's `skip_cells_with_tag`), are not run:
they are the cells that need something a CI machine lacks, such as a local model server.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
OFFLINE_SITE = ROOT / "tests" / "support" / "offline_site"


def _load_runner():
    spec = importlib.util.spec_from_file_location("run_examples", ROOT / "scripts" / "run_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_examples = _load_runner()
NOTEBOOKS = run_examples.example_paths()


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(OFFLINE_SITE))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")


def _skipped(cell) -> bool:
    return run_examples.SKIP_TAG in cell.metadata.get("tags", [])


def test_the_examples_are_there():
    names = {path.name for path in NOTEBOOKS}
    assert {"quickstart.ipynb", "plots.ipynb", "data_analysis.ipynb", "async_and_compare.ipynb",
            "chat.ipynb", "writing_a_plugin.ipynb", "local_models.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_example_runs_without_errors(path, offline):
    saved = nbformat.read(path, as_version=4)
    executed = run_examples.execute(path)

    assert run_examples.error_outputs(executed) == []
    for index, (cell, before) in enumerate(zip(executed.cells, saved.cells)):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        if _skipped(cell):
            assert cell.execution_count is None and cell.outputs == [], f"cell {index} ran"
            assert before.outputs == [], f"cell {index} is not run, yet has saved outputs"
        else:
            assert cell.execution_count is not None, f"cell {index} did not run"
            # the outputs shown on GitHub are saved: a cell that prints something has saved output
            assert bool(before.outputs) == bool(cell.outputs), (
                f"cell {index}: saved outputs are stale; run `python scripts/run_examples.py {path.name}`")



#: What changes from one run to the next in an answer's text: how long things took.
_TIMING = re.compile(r"\b\d+(?:\.\d+)? ?(?:ms|s)\b")


def answer_texts(notebook) -> list[tuple[int, str]]:
    """Each answer's text (single, side by side, or a chain's), by cell, timings left out."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            about = output.get("metadata", {}).get("llm_notebook", {})
            if {"response_id", "answers", "tool_calls"} & set(about):
                found.append((index, _TIMING.sub("…", output["data"]["text/plain"])))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_example_run_again_in_only_mode_offline_gives_the_same_answers(path, offline, tmp_path):
    user = str(tmp_path / "user")
    first = run_examples.execute(path, user_path=user)
    again = run_examples.execute(path, user_path=user, env={"LLM_NOTEBOOK_CACHE": "only"})

    assert run_examples.error_outputs(again) == []  # every request was answered from the cache
    assert answer_texts(again) == answer_texts(first)
    ran = [index for index, cell in enumerate(first.cells) if cell.get("outputs")]
    assert [index for index, cell in enumerate(again.cells) if cell.get("outputs")] == ran


def test_saved_examples_carry_no_errors_and_no_keys():
    key_like = re.compile(r"sk-[A-Za-z0-9_-]{16,}|(?:OPENAI|ANTHROPIC)_API_KEY=\S")
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        assert run_examples.error_outputs(notebook) == [], path.name
        outputs = json.dumps([cell.get("outputs", []) for cell in notebook.cells])
        assert not key_like.search(outputs), path.name
        assert "llm_notebook-example-" not in outputs, f"{path.name} shows a temporary path"


def test_only_the_skip_execution_tag_skips_a_cell(tmp_path, offline):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("ran = ['first']"),
        nbformat.v4.new_code_cell("raise RuntimeError('needs a server')",
                                  metadata={"tags": [run_examples.SKIP_TAG]}),
        nbformat.v4.new_code_cell("ran.append('other tag')", metadata={"tags": ["skip"]}),
        nbformat.v4.new_code_cell("print(ran)"),
    ])
    path = tmp_path / "tagged.ipynb"
    nbformat.write(notebook, path)

    executed = run_examples.execute(path)

    assert run_examples.error_outputs(executed) == []
    assert executed.cells[1].outputs == [] and executed.cells[1].execution_count is None
    assert executed.cells[3].outputs[0]["text"] == "['first', 'other tag']\n"


def test_an_error_output_is_reported(tmp_path, offline):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext llm_notebook"),
        nbformat.v4.new_code_cell("%llm -m no-such-model hello"),
        nbformat.v4.new_code_cell("import urllib.request\nurllib.request.urlopen('https://example.com')"),
    ])
    path = tmp_path / "broken.ipynb"
    nbformat.write(notebook, path)

    errors = run_examples.error_outputs(run_examples.execute(path))

    assert len(errors) == 2
    assert errors[0].startswith("cell 1: ") and "no-such-model" in errors[0]
    assert errors[1].startswith("cell 2: ") and "network access is off" in errors[1]


def test_the_script_saves_outputs_only_of_notebooks_without_errors(tmp_path, offline, capsys):
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")]), good)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)"),
                                                   nbformat.v4.new_code_cell("1 / 0")]), bad)

    status = run_examples.main([str(good), str(bad)])

    assert status == 1
    assert nbformat.read(good, as_version=4).cells[0].outputs[0]["text"] == "42\n"
    assert nbformat.read(bad, as_version=4).cells[0].outputs == []
    printed = capsys.readouterr()
    assert printed.out.splitlines() == [f"{good}: ok, saved", f"{bad}: errors"]
    assert "bad.ipynb: cell 1: ZeroDivisionError: division by zero" in printed.err
