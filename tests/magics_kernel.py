"""A real IPython kernel, driven cell by cell through nbclient, shared by a test module.

Each `run()` appends a cell to one notebook and executes it, keeping what a user would see
(the cell's outputs after display updates) and the raw iopub messages (to count display traffic).

    kernel = offline_kernel(SETUP)     # in a test module: the fixture `kernel`, one per module
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.util import ensure_async

DISPLAY_MESSAGES = {"display_data", "update_display_data", "execute_result"}


def unescaped(markdown: str) -> str:
    """Markdown with its backslash escapes undone: the text a reader sees."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def table_rows(table: str) -> dict[str, list[str]]:
    """A Markdown table's rows as a reader sees them, by their first cell."""
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break  # the table has ended (a line under it)
        cells = [unescaped(cell).strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0]] = cells[1:]
    return rows


@dataclass
class CellRun:
    source: str
    outputs: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    reply: dict[str, Any]

    @property
    def error(self) -> dict[str, Any] | None:
        return next((o for o in self.outputs if o["output_type"] == "error"), None)

    def error_text(self) -> str:
        return "\n".join(self.error["traceback"]) if self.error else ""

    def stream(self, name: str = "stdout") -> str:
        return "".join(o["text"] for o in self.outputs
                       if o["output_type"] == "stream" and o["name"] == name)

    def displays(self) -> list[dict[str, Any]]:
        return [o for o in self.outputs if o["output_type"] in ("display_data", "execute_result")]

    def data(self, mime: str) -> list[Any]:
        return [o["data"][mime] for o in self.displays() if mime in o["data"]]

    def display_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in DISPLAY_MESSAGES]

    def payloads(self) -> list[dict[str, Any]]:
        return self.reply.get("content", {}).get("payload", [])


@dataclass
class _Recording:
    messages: list[dict[str, Any]] = field(default_factory=list)
    interrupt_after: int | None = None
    interrupt_after_seconds: float | None = None
    interrupted: bool = False


class _RecordingClient(NotebookClient):
    """Keeps every iopub message of the running cell; can interrupt the kernel mid-cell, after
    some display messages of the cell or some seconds after it started."""

    recording = _Recording()

    def process_message(self, msg, cell, cell_index):
        recording = self.recording
        recording.messages.append(msg)
        if (recording.interrupt_after is not None and not recording.interrupted
                and msg["msg_type"] in DISPLAY_MESSAGES
                and sum(m["msg_type"] in DISPLAY_MESSAGES for m in recording.messages)
                >= recording.interrupt_after):
            self._interrupt()
        if recording.interrupt_after_seconds is not None and msg["msg_type"] == "execute_input":
            # a timer thread, not the loop: a blocking kernel manager keeps the loop busy
            loop = asyncio.get_running_loop()
            threading.Timer(recording.interrupt_after_seconds, self._interrupt, (loop,)).start()
        return super().process_message(msg, cell, cell_index)

    def _interrupt(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if self.recording.interrupted:
            return
        self.recording.interrupted = True
        if loop is None:
            asyncio.ensure_future(ensure_async(self.km.interrupt_kernel()))
            return
        pending = self.km.interrupt_kernel()  # a blocking manager interrupts right here
        if asyncio.iscoroutine(pending):
            asyncio.run_coroutine_threadsafe(pending, loop)


class KernelNotebook:
    """One kernel and one growing notebook; `run(source)` executes a new cell."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None, timeout: int = 60,
                 kernel_manager: Any = None) -> None:
        self.workdir = workdir
        self.nb = nbformat.v4.new_notebook()
        self._replies: list[dict[str, Any]] = []
        self.client = _RecordingClient(
            self.nb, km=kernel_manager, timeout=timeout, kernel_name="python3", allow_errors=True,
            resources={"metadata": {"path": str(workdir)}},
            on_cell_executed=self._keep_reply)
        self.client.recording = _Recording()
        if kernel_manager is None:
            self.client.create_kernel_manager()
        self.client.start_new_kernel(env={**os.environ, **(env or {})})
        self.client.start_new_kernel_client()

    def _keep_reply(self, cell, cell_index, execute_reply):
        self._replies.append(execute_reply)

    def run(self, source: str, *, expect_error: bool = False,
            interrupt_after_displays: int | None = None,
            interrupt_after_seconds: float | None = None) -> CellRun:
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.recording = _Recording(interrupt_after=interrupt_after_displays,
                                           interrupt_after_seconds=interrupt_after_seconds)
        self._replies.clear()
        executed = self.client.execute_cell(cell, len(self.nb.cells) - 1)
        run = CellRun(source, [dict(o) for o in executed.outputs], self.client.recording.messages,
                      self._replies[-1] if self._replies else {})
        if expect_error != (run.error is not None):
            raise AssertionError(f"cell {'did not fail' if expect_error else 'failed'}:\n{source}\n"
                                 f"outputs: {run.outputs}")
        return run

    def close(self) -> None:
        self.client._cleanup_kernel()


def offline_env(workdir: Path, **extra: str) -> dict[str, str]:
    """A test kernel's environment: a user directory of its own under `workdir`, and no plugins
    from entry points (the offline models only), plus `extra`."""
    return {"LLM_NOTEBOOK_USER_PATH": str(workdir / "user"), "LLM_NOTEBOOK_LOAD_PLUGINS": "",
            **extra}


def offline_kernel(setup: str | None = None, *, name: str = "kernel",
                   env: dict[str, str] | None = None, **options: Any):
    """A module-scoped fixture called `name`: one offline kernel (see `offline_env`) for the
    whole test module, with `setup` run in it first. `options` go to KernelNotebook."""

    @pytest.fixture(scope="module", name=name)
    def kernel(tmp_path_factory):
        workdir = tmp_path_factory.mktemp(name)
        with contextlib.closing(KernelNotebook(workdir, env=offline_env(workdir, **(env or {})),
                                               **options)) as notebook:
            if setup:
                notebook.run(setup)
            yield notebook

    return kernel
