"""The SQLite log of finished responses; a broken log warns once and never fails a prompt."""

from __future__ import annotations

import atexit
import json
import queue
import sqlite3
import threading
import warnings
from pathlib import Path
from typing import Any

from .paths import user_dir

LOG_FILE = "logs.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    prompt TEXT,
    system TEXT,
    options TEXT,
    text TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    usage_details TEXT,
    duration_ms INTEGER,
    datetime_utc TEXT,
    conversation_id TEXT,
    attachments TEXT
);
CREATE INDEX IF NOT EXISTS responses_datetime ON responses (datetime_utc);
"""
_COLUMNS = ("id", "model", "status", "error", "prompt", "system", "options", "text", "input_tokens",
            "output_tokens", "usage_details", "duration_ms", "datetime_utc", "conversation_id",
            "attachments")
_JSON_COLUMNS = ("options", "usage_details", "attachments")
_warned: set[str] = set()


class LogWarning(UserWarning):
    """The log could not be written or read; the prompt itself went on."""


def log_path() -> Path:
    return user_dir() / LOG_FILE


def _connect(path: Path | None = None) -> sqlite3.Connection:
    connection = sqlite3.connect(path or log_path(), timeout=0.5)
    connection.executescript(_SCHEMA)
    return connection


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, LogWarning, stacklevel=2)


def record(response: Any) -> None:
    """Queue one finished (or failed, or interrupted) response for writing; never raises.

    The row is taken now, and written by a writer thread, so an event loop finishing a response
    never waits on SQLite.
    """
    _writer.put((log_path(), _row(response)))


def flush() -> None:
    """Wait until every queued response has been written (reads call it first)."""
    _writer.flush()


def _row(response: Any) -> dict[str, Any]:
    data = response.to_dict()
    usage = data["usage"]
    return {
        **{k: data[k] for k in ("id", "model", "status", "error", "prompt", "system", "text",
                                "duration_ms", "datetime_utc", "conversation_id")},
        "options": json.dumps(data["options"], default=str),
        "input_tokens": usage["input"], "output_tokens": usage["output"],
        "usage_details": json.dumps(usage["details"]) if usage["details"] else None,
        "attachments": json.dumps([{k: a[k] for k in ("id", "type", "size")} for a in data["attachments"]]),
    }


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    try:
        connection = _connect(path)
        try:
            with connection:
                connection.executemany(
                    f"INSERT OR REPLACE INTO responses ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
                    [[row[c] for c in _COLUMNS] for row in rows])
        finally:
            connection.close()
    except sqlite3.Error as exc:
        _warn_once(f"llm_notebook: could not write the log at {path} ({exc}); "
                   "the answer is unaffected. Turn logging off with llm_notebook.settings.log = False")


class _Writer:
    """One daemon thread writing queued rows in batches; started on the first row."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def put(self, item: tuple[Path, dict[str, Any]]) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="llm_notebook-log", daemon=True)
                self._thread.start()
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            try:
                by_path: dict[Path, list[dict[str, Any]]] = {}
                for path, row in items:
                    by_path.setdefault(path, []).append(row)
                for path, rows in by_path.items():
                    _write(path, rows)
            finally:
                for _ in items:
                    self._queue.task_done()

    def flush(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.join()


_writer = _Writer()
atexit.register(flush)


def logs(n: int | None = 20, *, model: str | None = None, conversation_id: str | None = None,
         status: str | None = None) -> list[dict[str, Any]]:
    """The newest `n` logged responses (all with n=None), newest first, as dicts."""
    where, params = [], []
    for column, value in (("model", model), ("conversation_id", conversation_id), ("status", status)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    query = "SELECT * FROM responses" + (f" WHERE {' AND '.join(where)}" if where else "")
    query += " ORDER BY datetime_utc DESC, id DESC"
    if n is not None:
        query += " LIMIT ?"
        params.append(int(n))
    flush()
    if not log_path().exists():
        return []
    try:
        connection = _connect()
        try:
            connection.row_factory = sqlite3.Row
            rows = [dict(row) for row in connection.execute(query, params)]
        finally:
            connection.close()
    except sqlite3.Error as exc:
        _warn_once(f"llm_notebook: could not read the log at {log_path()} ({exc})")
        return []
    for row in rows:
        for column in _JSON_COLUMNS:
            if row[column]:
                row[column] = json.loads(row[column])
    return rows
