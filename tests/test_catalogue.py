"""A catalogue of hostile input and faults: every case is one clear line, never a hang, and
loses nothing.

The cases are data (tests/support/catalogue_cells.py for notebook cells, run in one real kernel
shared by the module; tests/support/catalogue_calls.py for the Python API, the user files and
the widgets). For each, what a user would check: the cell's error output has exactly one entry
that names the problem (a Python error's message is one line of the documented type); nothing
hangs (each case is bounded); the partial answer, the log row and the other user files are kept.
A case that fails today because of a file being changed elsewhere is marked `broken` with that
file named, and is an expected failure until it is fixed.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest

import llm_notebook
from llm_notebook.paths import USER_PATH_ENV
from tests.magics_kernel import KernelNotebook
from tests.support.catalogue_calls import CALLS, Bench, Call
from tests.support.catalogue_calls import KEY as CALL_KEY
from tests.support.catalogue_cells import CELLS, Cell

ROOT = Path(__file__).resolve().parent.parent
CELL_KEY = "sk-catalogue-key-0123456789"
SETUP = """
%load_ext llm_notebook
import os
import llm_notebook
from tests.support.catalogue_kernel import *
_hidden = "private"
"""


def cases(items: list) -> list:
    return [pytest.param(case, id=case.what, marks=[pytest.mark.xfail(strict=True,
                                                                      reason=case.broken)]
                         if case.broken else []) for case in items]


def test_the_catalogue_holds_enough_cases():
    names = [case.what for case in CELLS + CALLS]
    assert len(names) == len(set(names)), "two cases share a description"
    assert len(names) >= 80


def assert_one_line(line: str, words: tuple[str, ...]) -> None:
    assert "\n" not in line.strip() and "Traceback" not in line and 'File "' not in line, line
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"


# -- cells, in one kernel -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kernel(tmp_path_factory, fake_llm_server):
    workdir = tmp_path_factory.mktemp("catalogue")
    notebook = KernelNotebook(workdir, env={
        "LLM_NOTEBOOK_USER_PATH": str(workdir / "user"), "LLM_NOTEBOOK_LOAD_PLUGINS": "",
        "PYTHONPATH": str(ROOT)}, timeout=60)
    notebook.run(SETUP)
    yield notebook
    notebook.close()


def here(text: str, server) -> str:
    return text.replace("@@URL@@", server.url)


def shown_text(run) -> str:
    return "\n".join(data.get("text/markdown", data.get("text/plain", ""))
                     for data in (output["data"] for output in run.displays()))


def check_cell(case: Cell, run, server) -> None:
    if case.says:
        [line] = run.error["traceback"]
        assert_one_line(line, tuple(here(word, server) for word in case.says))
    for word in case.shows:
        assert word in shown_text(run), f"{word!r} not in the answer shown"
    stderr = run.stream("stderr")
    assert "Traceback" not in stderr, stderr
    for word in case.warns:
        assert word in stderr, f"{word!r} not in the warnings: {stderr!r}"
    assert CELL_KEY not in json.dumps(run.outputs)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", cases(CELLS))
def test_a_cell(kernel, fake_llm_server, tmp_path, case: Cell):
    fake_llm_server.reset()
    with case.files(tmp_path / "user") as user:
        kernel.run(f"fresh_case({str(user)!r}, {fake_llm_server.url!r})")
        try:
            if case.setup:
                kernel.run(case.setup)
            if case.replies:
                fake_llm_server.queue(*case.replies())
            run = kernel.run(here(case.source, fake_llm_server), expect_error=bool(case.says))
            check_cell(case, run, fake_llm_server)
            if case.after:
                kept = kernel.run(case.after).stream()
                for word in case.kept:
                    assert here(word, fake_llm_server) in kept, f"{word!r} was not kept: {kept!r}"
        finally:
            if case.cleanup:
                kernel.run(case.cleanup)
    if case.check:
        case.check(user)


# -- Python calls, in this process ----------------------------------------------------------------
@pytest.fixture
def calm_settings(monkeypatch):
    """Every setting (and the model key a case sets) back as it was after the case."""
    for field in dataclasses.fields(llm_notebook.settings):
        monkeypatch.setattr(llm_notebook.settings, field.name,
                            getattr(llm_notebook.settings, field.name))
    for name in ("gpt-4o", "gpt-4o-mini"):
        monkeypatch.setattr(llm_notebook.get_model(name), "key", None)


def package_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught
            if type(w.message).__module__.startswith("llm_notebook")]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", cases(CALLS))
def test_a_call(llm_server, user_dir, monkeypatch, calm_settings, case: Call):
    with case.files(user_dir) as user:
        monkeypatch.setenv(USER_PATH_ENV, str(user))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                shown = case.call(Bench(user, llm_server))
            except Exception as exc:
                if not case.raises:
                    raise
                assert isinstance(exc, case.raises), f"{type(exc).__name__}: {exc}"
                shown = str(exc)
            else:
                assert not case.raises, f"nothing was raised (got {shown!r})"
    if case.says:
        assert_one_line(shown, case.says)
    said = package_warnings(caught)
    for line in said:
        assert_one_line(line, ())
    for word in case.warns:
        assert any(word in line for line in said), f"{word!r} not in the warnings {said}"
    assert all(CALL_KEY not in line for line in [str(shown), *said])
    if case.check:
        case.check(user)
