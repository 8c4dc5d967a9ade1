"""Pytest plugin: a real JupyterLab on loopback, driven by a headless Chromium.

Enabled from tests/conftest.py with ``pytest_plugins``. Fixtures:

- ``jupyterlab`` (session): one ``jupyter lab`` server for every browser test,
  with its own config, data, runtime and IPython directories, so nothing from
  the user's Jupyter setup leaks in. Its ``python3`` kernel is this test
  interpreter (which has llm_notebook installed); the ipywidgets labextension
  comes from this interpreter's prefix and is checked at startup.
- ``chromium``: Playwright driving Debian's ``/usr/bin/chromium`` (installed by
  ``scripts/install_browser.sh``; Playwright never downloads one), per test.
- ``browser_page``: a Playwright page in a fresh browser context.
- ``open_notebook``: copies a notebook into the server's root and opens it in
  Lab in ``browser_page``; returns a :class:`LabNotebook` to run cells, find
  outputs and take screenshots (kept in the test's ``tmp_path/screenshots``).
  Its kernels are shut down when the test ends.

A missing browser, Playwright or JupyterLab fails the test rather than
skipping it, so CI can never pass without a real browser rendering the page.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import pytest

from tests.support.server_process import free_port, log_tail

CHROMIUM = os.environ.get("LLM_NOTEBOOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
STARTUP_TIMEOUT_S = float(os.environ.get("JUPYTERLAB_STARTUP_TIMEOUT", "120"))
# Poll page state on a timer: animation-frame polling stalls when the renderer is starved.
POLL_MS = 100
EXPECT_TIMEOUT_MS = 20_000
VIEWPORT = {"width": 1280, "height": 900}
WIDGETS_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
INSTALL_HINT = "run `bash scripts/install_browser.sh` and `pip install -e '.[test]'`"

# Lab settings for a quiet, predictable page: no news/update toasts, and every
# cell attached to the DOM (the default windowing leaves off-screen cells out).
_LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
    },
}

# Variables a developer's shell may carry that would point the server or the
# kernel at their own Jupyter setup, keys or plugins.
_SCRUBBED_ENV = (
    "JUPYTER_PATH",
    "JUPYTER_CONFIG_PATH",
    "JUPYTER_PREFER_ENV_PATH",
    "JUPYTERLAB_DIR",
    "JUPYTERLAB_SETTINGS_DIR",
    "JUPYTERLAB_WORKSPACES_DIR",
    "JUPYTER_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "LLM_NOTEBOOK_LOAD_PLUGINS",
)


@dataclass
class JupyterLab:
    """A running ``jupyter lab`` subprocess."""

    url: str
    """Base URL ending in ``/``, e.g. ``http://127.0.0.1:8888/``."""
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def lab_url(self, path: str) -> str:
        """URL of ``path`` (e.g. ``lab/tree/x.ipynb``) carrying the token."""
        return f"{self.url}{path}?token={self.token}"

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API (``path`` like ``api/sessions``); decoded JSON or None."""
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the server's combined stdout/stderr."""
        return log_tail(self.log_path, lines)


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def _isolated_env(base: Path) -> dict:
    """Environment for the server and its kernels: private Jupyter dirs, this interpreter's kernel."""
    dirs = {
        "JUPYTER_CONFIG_DIR": base / "config",
        "JUPYTER_DATA_DIR": base / "data",
        "JUPYTER_RUNTIME_DIR": base / "runtime",
        "IPYTHONDIR": base / "ipython",
        "LLM_NOTEBOOK_USER_PATH": base / "llm_notebook_user",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    # The user data dir is searched first, so this spec is the `python3` every notebook gets.
    _write_json(
        dirs["JUPYTER_DATA_DIR"] / "kernels" / "python3" / "kernel.json",
        {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "metadata": {"debugger": False},
        },
    )
    for name, settings in _LAB_SETTINGS.items():
        _write_json(dirs["JUPYTER_CONFIG_DIR"] / "lab" / "user-settings" / name, settings)
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update({name: str(path) for name, path in dirs.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_until_answering(lab: JupyterLab) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if lab.process.poll() is not None:
            pytest.fail(
                f"jupyter lab exited with code {lab.process.returncode} before answering; "
                f"log:\n{lab.log_tail()}",
                pytrace=False,
            )
        try:
            lab.api("GET", "api/status")
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"jupyter lab did not answer within {STARTUP_TIMEOUT_S:.0f}s; log:\n{lab.log_tail()}",
                pytrace=False,
            )
        time.sleep(0.2)


def _check_widgets_extension(lab: JupyterLab) -> None:
    """Fail early and clearly when Lab would render widgets as plain text."""
    with urllib.request.urlopen(lab.lab_url("lab"), timeout=30) as reply:
        page = reply.read().decode("utf-8", errors="replace")
    if WIDGETS_EXTENSION not in page:
        pytest.fail(
            f"JupyterLab does not load {WIDGETS_EXTENSION}, so widgets would not render; "
            f"install ipywidgets into {sys.prefix} ({INSTALL_HINT})",
            pytrace=False,
        )


def _stop(lab: JupyterLab) -> None:
    """Shut down kernels and server; kill the process group if that does not finish."""
    try:
        lab.api("POST", "api/shutdown")
        lab.process.wait(timeout=15)
    except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if lab.process.poll() is not None:
            break
        try:
            os.killpg(lab.process.pid, sig)
        except ProcessLookupError:
            break
        try:
            lab.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory) -> Iterator[JupyterLab]:
    """A JupyterLab server on 127.0.0.1 with a private setup, shared by the session."""
    if importlib.util.find_spec("jupyterlab") is None:
        pytest.fail(f"JupyterLab is not installed in {sys.prefix}: {INSTALL_HINT}", pytrace=False)
    base = tmp_path_factory.mktemp("jupyterlab")
    root_dir = base / "root"
    root_dir.mkdir()
    port = free_port()
    token = secrets.token_hex(16)
    log_path = base / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        # window.jupyterapp lets tests run Lab's own commands instead of guessing at menus.
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=None",
        "--LabApp.extension_manager=readonly",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root_dir,
            env=_isolated_env(base),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    lab = JupyterLab(f"http://127.0.0.1:{port}/", token, root_dir, log_path, process)
    try:
        _wait_until_answering(lab)
        _check_widgets_extension(lab)
        yield lab
    finally:
        _stop(lab)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium under Playwright, for one test.

    Not shared across tests: while Playwright's sync API is alive it marks an asyncio loop
    as running in the main thread, so a later test calling ``asyncio.run`` would fail.
    Starting it takes under two seconds.
    """
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL_HINT}", pytrace=False)
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail(f"Playwright is not installed in {sys.prefix}: {INSTALL_HINT}", pytrace=False)
    # expect() waits 5 s by default; a loaded 2-core machine can take longer to
    # fetch a widget's JavaScript and render it.
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember the outcome of a test's call phase, for ``browser_page`` to see at teardown."""
    outcome = yield
    if call.when == "call":
        item.stash[_CALL_FAILED] = outcome.get_result().failed


@pytest.fixture
def browser_page(chromium, request, tmp_path) -> Iterator[Any]:
    """A page in a fresh browser context (no cookies or storage from other tests).

    When the test fails, the page is saved as ``screenshots/failure.png`` in its tmp_path.
    """
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        yield page
        if request.node.stash.get(_CALL_FAILED, False):
            (tmp_path / "screenshots").mkdir(exist_ok=True)
            page.screenshot(path=str(tmp_path / "screenshots" / "failure.png"))
    finally:
        context.close()


# Finds the notebook panel open on `path` in Lab's main area. The page's load event can come
# before Lab has started and exposed window.jupyterapp: that is "not open yet", not an error.
_FIND_PANEL = """
const findPanel = (path) => {
  if (!window.jupyterapp?.shell) return null;
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.context && widget.context.path === path) return widget;
  }
  return null;
};
"""


class LabNotebook:
    """A notebook open in a JupyterLab tab, driven through Lab's own commands."""

    def __init__(self, page: Any, path: str, screenshots: Path):
        self.page = page
        self.path = path
        self.screenshots = screenshots

    def _evaluate(self, body: str, arg: Any = None) -> Any:
        """Run async JS ``body`` with ``panel`` bound to this notebook's panel."""
        script = (
            f"async ([path, arg]) => {{ {_FIND_PANEL} const panel = findPanel(path);"
            f" if (!panel) throw new Error('notebook ' + path + ' is not open'); {body} }}"
        )
        return self.page.evaluate(script, [self.path, arg])

    def wait_until_ready(self, timeout_s: float = 60) -> None:
        """Wait until Lab has loaded the notebook and its kernel is idle."""
        self.page.wait_for_function(
            f"(path) => {{ {_FIND_PANEL} const panel = findPanel(path);"
            " return !!panel && panel.context.isReady"
            " && panel.sessionContext.session?.kernel?.status === 'idle'; }",
            arg=self.path,
            polling=POLL_MS,
            timeout=timeout_s * 1000,
        )

    def wait_for_idle(self, timeout_s: float = 60) -> None:
        """Wait until the kernel is idle (e.g. after a background stream ends)."""
        self.page.wait_for_function(
            f"(path) => {{ {_FIND_PANEL}"
            " return findPanel(path)?.sessionContext.session?.kernel?.status === 'idle'; }",
            arg=self.path,
            polling=POLL_MS,
            timeout=timeout_s * 1000,
        )

    def run_all(self, timeout_s: float = 120) -> None:
        """Run > Run All Cells; returns once every cell has finished and its outputs arrived.

        Fails with the error outputs when a cell raised.
        """
        self._run("notebook:run-all-cells", None, timeout_s)

    def run_cell(self, index: int, timeout_s: float = 120) -> None:
        """Select cell ``index`` (0-based) and run it; returns once it finished."""
        self._run("notebook:run-cell", index, timeout_s)

    def _run(self, command: str, index: Optional[int], timeout_s: float) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        # Lab's run commands resolve after the kernel's replies and outputs arrived, with
        # false when a cell raised. The promise is parked in the page and waited on from
        # here, because page.evaluate itself has no timeout.
        self._evaluate(
            "window.jupyterapp.shell.activateById(panel.id);"
            " if (arg.index !== null) panel.content.activeCellIndex = arg.index;"
            " const runs = (window.testRuns ??= {});"
            " runs[path] = {done: false};"
            " window.jupyterapp.commands.execute(arg.command).then("
            "  (ok) => { runs[path] = {done: true, ok}; },"
            "  (error) => { runs[path] = {done: true, ok: false, error: String(error)}; });",
            {"command": command, "index": index},
        )
        try:
            self.page.wait_for_function(
                "(path) => window.testRuns[path].done",
                arg=self.path,
                polling=POLL_MS,
                timeout=timeout_s * 1000,
            )
        except PlaywrightTimeout:
            raise AssertionError(
                f"{command} in {self.path} was still running after {timeout_s:.0f}s"
            ) from None
        run = self.page.evaluate("(path) => window.testRuns[path]", self.path)
        if run["ok"] is False:
            errors = "\n".join(self.error_outputs()) or run.get("error") or "(no error output)"
            raise AssertionError(f"{command} failed in {self.path}:\n{errors}")

    def error_outputs(self) -> list[str]:
        """``ename: evalue`` of every error output in the notebook."""
        return self._evaluate(
            "return panel.content.widgets.flatMap((cell) =>"
            " cell.model.type === 'code' ? cell.model.outputs.toJSON() : [])"
            " .filter((out) => out.output_type === 'error')"
            " .map((out) => out.ename + ': ' + out.evalue);"
        )

    def cells(self) -> Any:
        """Locator of the notebook's cells, in order (``.nth(i)`` picks one)."""
        panel_id = self._evaluate("return panel.id;")
        return self.page.locator(f"[id='{panel_id}'] .jp-Notebook .jp-Cell")

    def outputs(self, index: int) -> Any:
        """Locator of the rendered outputs of cell ``index`` (one per output)."""
        return self.cells().nth(index).locator(".jp-OutputArea-output")

    def screenshot(self, name: str, locator: Any = None, *, keep_as: Optional[str] = None) -> Path:
        """Save a PNG of the page (or of ``locator``) as ``screenshots/NAME.png``; with
        ``keep_as`` and ``LLM_NOTEBOOK_KEEP_SCREENSHOTS=1``, also as ``docs/images/KEEP_AS``
        (the pictures the README shows are made this way)."""
        path = self.screenshots / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        (locator or self.page).screenshot(path=str(path))
        if keep_as is not None and os.environ.get("LLM_NOTEBOOK_KEEP_SCREENSHOTS") == "1":
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMAGES / keep_as)
        return path


NotebookSource = Union[Path, str, dict]


@pytest.fixture
def open_notebook(jupyterlab, browser_page, tmp_path) -> Iterator[Callable[..., LabNotebook]]:
    """Open a notebook (a file path or an nbformat dict) in Lab; its kernel stops after the test."""
    opened: list[str] = []

    def open_(source: NotebookSource, name: Optional[str] = None) -> LabNotebook:
        import nbformat

        if isinstance(source, dict):
            notebook = nbformat.from_dict(source)
            name = name or "notebook.ipynb"
        else:
            notebook = nbformat.read(str(source), as_version=4)
            name = name or Path(source).name
        # Without a kernelspec Lab asks which kernel to use in a dialog.
        notebook.metadata.setdefault(
            "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
        )
        # A folder per test keeps names from clashing across the shared server.
        path = f"{tmp_path.name}/{name}"
        target = jupyterlab.root_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, str(target))
        opened.append(path)
        # A workspace of its own, so tabs from earlier tests are not restored.
        workspace = f"{tmp_path.name}-{len(opened)}"
        browser_page.goto(
            jupyterlab.lab_url(f"lab/workspaces/{workspace}/tree/{urllib.parse.quote(path)}")
        )
        lab_notebook = LabNotebook(browser_page, path, tmp_path / "screenshots")
        lab_notebook.wait_until_ready()
        return lab_notebook

    yield open_
    _shut_down_sessions(jupyterlab, opened)


def _shut_down_sessions(lab: JupyterLab, paths: list[str]) -> None:
    for session in lab.api("GET", "api/sessions"):
        if session.get("path") in paths:
            lab.api("DELETE", f"api/sessions/{session['id']}")


__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "JupyterLab", "LabNotebook"]
