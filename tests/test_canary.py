"""A canary key given every way a user gives one never shows: not in outputs, tracebacks (plain
and `%xmode Verbose`), warnings, the log database or saved notebooks.

Two runs, each in real kernels: every example notebook as tests/test_examples.py runs it
(offline), with the canary supplied every way in a first cell; and every fault of the fault
server through both HTTP plugins, sync, async and through `%llm`, for each way of giving the key.
Then everything they left is searched for the key in every form `keys.redact` knows (as is,
escaped as in a repr or JSON, base64, URL-encoded).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest

from llm_notebook.keys import redact
from tests.magics_kernel import KernelNotebook
from tests.support import fault_server as faults
from tests.support.catalogue_canary import MODELS, ways_for
from tests.test_examples import NOTEBOOKS, OFFLINE_SITE, run_examples

ROOT = Path(__file__).resolve().parent.parent
CANARY = "sk-canary-" + secrets.token_hex(16)
XMODES = ["Context", "Verbose"]
#: Files that hold the key because the user asked for it to be stored there.
STORED_KEYS = {"keys.json", "keys.json.lock"}


@dataclass
class Search:
    """Where the key was looked for, how much, and where it was found."""

    files: int = 0
    rows: int = 0
    characters: int = 0
    found: list[str] = field(default_factory=list)

    def text(self, where: str, text: str) -> None:
        self.characters += len(text)
        if redact(text, CANARY) != text:
            self.found.append(where)

    def folder(self, folder: Path) -> None:
        """Every file the package wrote there (the key store aside), and the log's rows."""
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if path.name in STORED_KEYS:
                continue
            self.files += 1
            self.text(str(path), path.read_bytes().decode("latin-1"))
        database = folder / "logs.db"
        if database.exists():
            self.database(database)

    def database(self, path: Path) -> None:
        """Every column of every row of every table, as SQLite gives them back."""
        connection = sqlite3.connect(path)
        try:
            tables = [row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in connection.execute(f'SELECT * FROM "{table}"'):
                    self.rows += 1
                    self.text(f"{path}:{table}", repr(row))
        finally:
            connection.close()

    def report(self) -> str:
        return (f"{self.files} files, {self.rows} log rows, {self.characters:,} characters "
                f"searched; the canary found in {len(self.found)}: {self.found}")


def requests_with_the_key(server) -> int:
    """How many requests really carried the canary (in either API's header)."""
    return sum(CANARY in r.headers.get("authorization", "") + r.headers.get("x-api-key", "")
               for r in server.requests)


def test_the_search_finds_the_key_in_each_form_and_each_place(tmp_path):
    """A search that found nothing must have been able to find it: in a file, URL-encoded; in
    a log row, base64; in outputs, escaped as a repr shows it."""
    (tmp_path / "aliases.json").write_text(f'{{"url": "https://h/?key={quote(CANARY + "/")}"}}')
    connection = sqlite3.connect(tmp_path / "logs.db")
    connection.execute("CREATE TABLE responses (text)")
    connection.execute("INSERT INTO responses VALUES (?)",
                       (base64.b64encode(f"user:{CANARY}".encode()).decode(),))
    connection.commit()
    connection.close()
    search = Search()
    search.folder(tmp_path)
    search.text("the outputs", json.dumps({"traceback": [repr(f"Bearer {CANARY}\n")]}))
    assert search.found == [str(tmp_path / "aliases.json"), str(tmp_path / "logs.db"),
                            f"{tmp_path / 'logs.db'}:responses", "the outputs"]
    assert search.rows == 1 and search.files == 2


# -- the example notebooks --------------------------------------------------------------------------
FIRST_CELL = """\
%xmode {xmode}
import os, warnings
os.environ["LLM_NOTEBOOK_USER_PATH"] = os.environ["CANARY_USER_PATH"]
warnings.simplefilter("always")
from tests.support.catalogue_canary import supply_every_way
supply_every_way()"""
#: The last cell: the log's queued rows written before the kernel is stopped.
LAST_CELL = "import llm_notebook.log\nassert llm_notebook.log.flush(timeout=30)"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("xmode", XMODES)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_an_example_with_the_canary_shows_it_nowhere(path, xmode, tmp_path, monkeypatch,
                                                     fake_llm_server):
    fake_llm_server.reset()
    user = tmp_path / "user"
    for name, value in (("CANARY", CANARY), ("CANARY_SERVER", fake_llm_server.url),
                        ("CANARY_USER_PATH", str(user)),
                        ("PYTHONPATH", f"{OFFLINE_SITE}{os.pathsep}{ROOT}")):
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(FIRST_CELL.format(xmode=xmode)))
    notebook.cells.append(nbformat.v4.new_code_cell(LAST_CELL))
    copy = tmp_path / path.name
    nbformat.write(notebook, copy)

    executed = run_examples.execute(copy)

    first, *cells, last = executed.cells
    for added in (first, last):
        assert [o for o in added.outputs if o["output_type"] == "error"] == [], added.outputs
    assert requests_with_the_key(fake_llm_server) >= 9, "each way sent the key"
    for index, cell in enumerate(cells):
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and cell.source.strip() and run_examples.SKIP_TAG not in tags:
            assert cell.execution_count is not None, f"cell {index} did not run"
    saved = tmp_path / "saved" / path.name
    saved.parent.mkdir()
    nbformat.write(executed, saved)
    search = Search()
    for index, cell in enumerate(executed.cells):
        search.text(f"cell {index}", json.dumps(cell.get("outputs", [])))
    search.files += 1
    search.text(str(saved), saved.read_text())
    search.folder(user)
    print(f"{path.name} ({xmode}): {search.report()}")
    assert search.found == [], search.report()


# -- every fault, every way, both plugins -------------------------------------------------------------
#: The path each API asks on, for a redirect that keeps the request where it was.
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
#: fault -> (the replies to queue for an API, whether the answer fails).
FAULTS = {
    "reset before the reply": (lambda api: [faults.reset_before_reply()], True),
    "reset mid-stream": (lambda api: [faults.reset_mid_stream()], True),
    "a byte drip past the deadline": (lambda api: [faults.drip(0.001)], True),
    "an endless stream": (lambda api: [faults.endless_stream()], True),
    "a stall after the end": (lambda api: [faults.stall_after_done()], False),
    "a same-origin 307": (lambda api: [faults.redirect(307, "/moved" + PATHS[api]), faults.echo()], False),
    "a 302": (lambda api: [faults.redirect(302, "/elsewhere")], True),
    "a 307 to another origin": (lambda api: [faults.redirect(307, "http://127.0.0.1:9/x")], True),
    "gzip": (lambda api: [faults.gzipped()], False),
    "broken chunking": (lambda api: [faults.bad_chunking()], True),
    "huge headers": (lambda api: [faults.huge_headers()], True),
    "random bytes": (lambda api: [faults.random_bytes()], True),
    "the key echoed in a 401": (lambda api: [faults.echo_key_in_error(401)], True),
    "the key echoed base64 in a 403": (lambda api: [faults.echo_key_in_error(403, encoding="base64")],
                                       True),
    "the key echoed in the answer": (lambda api: [faults.echo_key_in_answer()], True),
    "the prompt echoed": (lambda api: [faults.echo()], False),
}
SETUP = """\
%load_ext llm_notebook
import warnings
import llm_notebook
from tests.support.catalogue_canary import *
point_at_the_server()
llm_notebook.settings.answer_timeout = 0.5
llm_notebook.settings.cache = "off"
warnings.simplefilter("always")"""
#: The cells asking for one answer, by way of asking: sync, async, and %llm (whose line would
#: hold the key itself for prompt(key=), so that way is left to the other two).
ASKING = {
    "sync": "response = ask({way!r}, {api!r})\nresponse.text()",
    "async": "response = ask_async({way!r}, {api!r})\nawait response.text()",
    "%llm": ("model, _ = supply({way!r}, {api!r})\n"
             "get_ipython().run_line_magic('llm', f'-m {{model}} Hi')"),
}


@pytest.fixture(scope="module")
def canary_kernel(tmp_path_factory, fake_llm_server):
    workdir = tmp_path_factory.mktemp("canary")
    notebook = KernelNotebook(workdir, env={
        "LLM_NOTEBOOK_USER_PATH": str(workdir / "user"), "LLM_NOTEBOOK_LOAD_PLUGINS": "",
        "CANARY": CANARY, "CANARY_SERVER": fake_llm_server.url, "PYTHONPATH": str(ROOT)},
        timeout=60)
    notebook.run(SETUP)
    yield notebook, workdir / "user"
    notebook.close()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("xmode", XMODES)
def test_every_fault_with_the_canary_given_every_way_shows_it_nowhere(canary_kernel,
                                                                      fake_llm_server, tmp_path,
                                                                      xmode):
    kernel, user = canary_kernel
    kernel.run(f"%xmode {xmode}")
    frames = 0
    for api in MODELS:
        for way in ways_for(api):
            for fault, (replies, fails) in FAULTS.items():
                for asking, source in ASKING.items():
                    if asking == "%llm" and way == "prompt(key=)":
                        continue
                    fake_llm_server.reset()
                    fake_llm_server.queue(*replies(api))
                    run = kernel.run(source.format(way=way, api=api), expect_error=fails)
                    assert requests_with_the_key(fake_llm_server) or fault == "reset before the reply", (
                        f"{api}, {way}, {fault}, {asking}: the key was not sent")
                    if fails and asking != "%llm":
                        frames += run.error_text().count("llm_notebook/")
    if xmode == "Verbose":
        assert frames > 100, "verbose tracebacks show the package's frames"
    saved = tmp_path / "faults.ipynb"
    nbformat.write(kernel.nb, saved)
    search = Search()
    for index, cell in enumerate(kernel.nb.cells):
        search.text(f"cell {index} ({cell.source.splitlines()[0]})", json.dumps(cell.outputs))
    search.files += 1
    search.text(str(saved), saved.read_text())
    kernel.run("assert llm_notebook.log.flush(timeout=30)")
    search.folder(user)
    print(f"faults ({xmode}): {len(kernel.nb.cells)} cells; {search.report()}")
    assert search.found == [], search.report()
