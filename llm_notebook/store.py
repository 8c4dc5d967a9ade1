"""The SQLite database that the log (and the answer cache) share, written without losing a row.

Writes are queued and written by one thread per process, in batches a moment after they are
queued, so finishing an answer never waits on SQLite. WAL mode, a busy timeout and a retry loop
let several processes write at once; a row SQLite refuses is one warning and is skipped, never its
batch; a database that stays locked keeps its rows in memory until it is free. Nothing here raises
into a prompt: problems are warnings, each said once.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import os
import queue
import sqlite3
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from .keys import known_secrets, redact_known
from .paths import USER_PATH_ENV, UserFileError, user_dir
from .migrations import MIGRATIONS

DATABASE_FILE = "logs.db"  # the name the first releases gave the log, kept so it is found
BUSY_TIMEOUT = 5.0  # seconds SQLite waits for another connection's lock, per attempt
GATHER = 0.1  # seconds the writer waits for more rows after the last one came
LONGEST_DELAY = 0.7  # seconds a row may wait while rows keep coming (a burst of answers)
READ_WAIT = 10.0  # seconds a read waits for queued rows before it reads what is there
EXIT_WAIT = 10.0  # seconds the interpreter's exit waits for queued rows
# Rows bound to one INSERT: few statements a batch, and few distinct ones to prepare.
CHUNK_SIZES = (500, 100, 25, 5, 1)
# How many `?` one statement may hold: SQLite raised its limit from 999 in 3.32.
_MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


class StoreWarning(UserWarning):
    """The database could not be written or read; the answer itself is unaffected."""


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: cheap per row
class Feature:
    """A user of the database (the log, the answer cache): what its warnings call things."""

    name: str  # "the log"
    item: str  # what one row is: "response"
    warning: type[Warning]
    remedy: str  # how to stop the warnings, e.g. how to turn the feature off


@dataclass(frozen=True, eq=False)
class Insert:
    """`INSERT OR <conflict> INTO table (columns)`: what a queued row is written with.

    Rows are written many to a statement: each statement has a cost of its own, in SQLite and in
    handing the interpreter lock back and forth, that one per row would add to every answer.
    """

    table: str
    columns: tuple[str, ...]
    conflict: str = "REPLACE"  # or "IGNORE", for content-addressed rows

    def chunks(self, rows: int) -> Iterator[int]:
        """How many of `rows` rows each statement takes, largest first."""
        for size in CHUNK_SIZES:
            if size * len(self.columns) <= _MAX_VARIABLES or size == 1:
                while rows >= size:
                    yield size
                    rows -= size

    @functools.lru_cache(maxsize=None)  # a few Inserts, each alive as long as the process
    def statement(self, rows: int) -> str:
        values = "(" + ", ".join("?" for _ in self.columns) + ")"
        return (f"INSERT OR {self.conflict} INTO {self.table} ({', '.join(self.columns)}) "
                f"VALUES {', '.join(values for _ in range(rows))}")


_warned: set[str] = set()
_paths: dict[str | None, Path] = {}
_inherited: list[Any] = []  # connections a forked child got from its parent (see _Writer)


def warn_once(feature: Feature, message: str) -> None:
    """One warning per distinct problem; a warnings filter set to "error" cannot break a prompt."""
    message = redact_known(message)
    if message in _warned:
        return
    _warned.add(message)
    try:
        warnings.warn(f"llm_notebook: {message}", feature.warning, stacklevel=3)
    except Exception:  # the filter turned it into an error; nobody may see it raise
        pass


def database_path() -> Path:
    """The database in the user directory (creating the directory, once per user path).

    A user directory that cannot be created holds no database: reading it finds nothing (the
    offline models still answer) and writing warns why (see `write`).
    """
    try:
        return _creating_database_path()
    except UserFileError:  # not remembered: the directory may be fixed later in the session
        return user_dir(create=False) / DATABASE_FILE


def _creating_database_path() -> Path:
    """`database_path()`, or the UserFileError saying why its directory cannot be created."""
    override = os.environ.get(USER_PATH_ENV)
    path = _paths.get(override)
    if path is None:  # user_dir() touches the disk: too slow to repeat for every row
        path = _paths[override] = user_dir() / DATABASE_FILE
    return path


def connect(path: Path | None = None) -> sqlite3.Connection:
    """An autocommit connection in WAL mode with the schema brought up to date; close it after."""
    connection = sqlite3.connect(path or database_path(), timeout=BUSY_TIMEOUT,
                                 isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a killed process
        connection.execute("PRAGMA journal_size_limit=67108864")  # a big batch leaves no big WAL
        _migrate(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _migrate(connection: sqlite3.Connection) -> None:
    """Apply the missing schema steps under the write lock, so racing processes apply each once."""
    if _user_version(connection) >= len(MIGRATIONS):
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(connection)  # another process may have migrated meanwhile
        for step in MIGRATIONS[version:]:
            for statement in step:
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {max(version, len(MIGRATIONS))}")
        connection.execute("COMMIT")
    except BaseException:
        _roll_back(connection)
        raise


def _roll_back(connection: sqlite3.Connection) -> None:
    """Undo the open transaction, if SQLite has not already undone it (as it does when full)."""
    if connection.in_transaction:
        connection.execute("ROLLBACK")


def _user_version(connection: sqlite3.Connection) -> int:
    return connection.execute("PRAGMA user_version").fetchone()[0]


def write(feature: Feature, insert: Insert, row: Sequence[Any], *, key: str,
          path: Path | None = None,
          make: Callable[[Sequence[Any]], Sequence[Any]] | None = None) -> None:
    """Queue one row (values in `insert.columns` order); never raises, never waits on SQLite.

    With `make`, `row` is what the writer thread makes the row from (`make(row)`), so the caller
    pays nothing for encoding it. `key` names the row in warnings (a response id, a cache key).
    The row is written within a fraction of a second (at most LONGEST_DELAY after it, while rows
    keep coming), at exit at the latest, to `path` (default: `database_path()` now).
    """
    try:
        _writer.put((feature, path or _creating_database_path(), insert,
                     row if make is None else _Unmade(make, row), key))
    except Exception as exc:  # a user directory that cannot be created; a shutting-down interpreter
        warn_once(feature, f"could not write {feature.name} ({type(exc).__name__}: {exc}); "
                           f"the answer is unaffected. {feature.remedy}")


def flush(timeout: float | None = None) -> bool:
    """Wait until every row queued so far is written (or given up); False if `timeout` passed."""
    return _writer.flush(timeout)


def after_written(callback: Callable[[], Any]) -> None:
    """Call `callback()` on the writer thread once every row queued so far is written (or given
    up): the answer cache keeps its newest answers in memory until then, so a lookup never waits
    for the writer. An exception in it is ignored (it must not stop the writer)."""
    _writer.put(_Callback(callback))


class _Callback:
    """A marker in the writer's queue; the writer calls `set()` on markers after their batch."""

    __slots__ = ("_callback",)

    def __init__(self, callback: Callable[[], Any]) -> None:
        self._callback = callback

    def set(self) -> None:
        try:
            self._callback()
        except Exception:  # the writer thread must outlive any callback
            pass


def read(feature: Feature, query: str, params: Sequence[Any] = (), *,
         path: Path | None = None) -> list[dict[str, Any]]:
    """The rows of `query` as dicts, once the rows queued so far are written; [] if unreadable."""
    flush(READ_WAIT)
    try:
        path = path or database_path()
        if not path.exists():
            return []
        connection = connect(path)
        try:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(query, params)]
        finally:
            connection.close()
    except (OSError, sqlite3.Error) as exc:
        where = f" at {path}" if path else ""
        warn_once(feature, f"could not read {feature.name}{where} ({exc})")
        return []


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc)
    return "locked" in message or "busy" in message


def _replace_surrogates(row: Sequence[Any]) -> tuple[Any, ...]:
    """Text with lone surrogates (which UTF-8 cannot hold) with U+FFFD in their place."""
    return tuple(value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
                 if isinstance(value, str) else value for value in row)


def _write_rows(connection: sqlite3.Connection, items: list[tuple]) -> None:
    """Insert `items` in the open transaction, many to a statement; one by one if one is refused.

    A statement that fails changes nothing (SQLite undoes it; a value that cannot be bound stops
    it before it runs), so its rows can be tried again one at a time.
    """
    for insert, same in itertools.groupby(items, key=itemgetter(2)):
        same = list(same)
        start = 0
        for size in insert.chunks(len(same)):
            chunk = same[start:start + size]
            start += size
            try:
                connection.execute(insert.statement(size),
                                   tuple(itertools.chain.from_iterable(item[3] for item in chunk)))
            except sqlite3.OperationalError:  # locked, disk full: not the rows' fault
                raise
            except Exception:  # some row is bad: find it, keep the others
                for item in chunk:
                    _write_one(connection, item)


def _write_one(connection: sqlite3.Connection, item: tuple) -> None:
    feature, _, insert, row, key = item
    statement = insert.statement(1)
    try:
        try:
            connection.execute(statement, row)
        except UnicodeEncodeError:
            connection.execute(statement, _replace_surrogates(row))
            warn_once(feature, f"{feature.item} {key} holds text that is not valid Unicode (a lone "
                               f"surrogate); {feature.name} keeps it with U+FFFD in its place")
    except sqlite3.OperationalError:
        raise
    except Exception as exc:  # this row only; the others are written
        warn_once(feature, f"could not write {feature.item} {key} to {feature.name} "
                           f"({type(exc).__name__}: {exc}); it was skipped, the others were kept")


class _Unmade(tuple):
    """A row still to be made: (make, values)."""

    __slots__ = ()

    def __new__(cls, make: Callable, values: Sequence[Any]) -> _Unmade:
        return super().__new__(cls, (make, values))


def _made(item: tuple) -> tuple | None:
    """The item with its row made, if it was queued unmade; None if making it failed."""
    feature, path, insert, row, key = item
    if type(row) is not _Unmade:
        return item
    try:
        return feature, path, insert, tuple(row[0](row[1])), key
    except Exception as exc:  # this row only
        warn_once(feature, f"could not describe {feature.item} {key} for {feature.name} "
                           f"({type(exc).__name__}: {exc}); it was skipped, the others were kept")
        return None


def _redacted(item: tuple) -> tuple:
    """The row with every key this process knows masked: no key reaches the database."""
    feature, path, insert, row, key = item
    return (feature, path, insert,
            tuple(redact_known(value) if isinstance(value, str) else value for value in row), key)


def _features(items: list[tuple]) -> list[Feature]:
    return list(dict.fromkeys(item[0] for item in items))


class _Writer:
    """The one thread of a process that writes queued rows; started by the first row."""

    def __init__(self) -> None:
        self._open: dict[Path, tuple[sqlite3.Connection, int]] = {}  # connection, file inode
        self._start_afresh()

    def _start_afresh(self) -> None:
        """Also the state of a forked child: its parent's thread, queue and locks are not its own.

        The parent's connections are kept, never closed: SQLite forbids using them in a child.
        """
        if self._open:
            _inherited.append(self._open)
        self._open = {}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._hurry = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def put(self, item: tuple) -> None:
        if self._thread is None:
            self._start()
        self._queue.put(item)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="llm_notebook-store", daemon=True)
                thread.start()
                self._thread = thread
                _flush_when_a_forked_child_exits()

    def flush(self, timeout: float | None) -> bool:
        if self._thread is None or threading.current_thread() is self._thread:
            return True
        written = threading.Event()
        self._queue.put(written)
        self._hurry.set()
        return written.wait(timeout)

    def _drain(self, batch: list) -> bool:
        """Move what is queued into `batch`; whether anything was."""
        before = len(batch)
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return len(batch) > before

    def _gather(self) -> list:
        """The next batch: rows keep being gathered while they keep coming (the writer stays off
        the interpreter lock during a burst of answers), for at most LONGEST_DELAY."""
        batch = [self._queue.get()]
        first = time.monotonic()
        while not self._hurry.wait(GATHER):  # flush() cuts the wait short
            if not self._drain(batch) or time.monotonic() - first >= LONGEST_DELAY:
                break
        self._hurry.clear()
        self._drain(batch)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._gather()
            rows = [_made(item) for item in batch if type(item) is tuple]
            rows = [item for item in rows if item is not None]
            try:
                if known_secrets():
                    rows = [_redacted(item) for item in rows]
                by_path: dict[Path, list[tuple]] = {}
                for item in rows:
                    by_path.setdefault(item[1], []).append(item)
                for path, items in by_path.items():
                    self._write_until_done(path, items)
                for path in set(self._open) - set(by_path):  # keep only the databases in use
                    self._close(path)
            except Exception as exc:  # the thread must outlive any batch
                for feature in _features(rows):
                    warn_once(feature, f"could not write {feature.name} ({type(exc).__name__}: "
                                       f"{exc}); the answer is unaffected. {feature.remedy}")
            for item in batch:
                if type(item) is not tuple:
                    item.set()

    def _write_until_done(self, path: Path, items: list[tuple]) -> None:
        """Write one database's rows, waiting out other programs' locks for as long as they last."""
        backoff = 0.05
        while True:
            try:
                connection = self._connection(path)
                connection.execute("BEGIN IMMEDIATE")
                try:
                    _write_rows(connection, items)
                    connection.execute("COMMIT")
                except BaseException:
                    _roll_back(connection)
                    raise
                return
            except (OSError, sqlite3.Error) as exc:
                if not (isinstance(exc, sqlite3.OperationalError) and _is_busy(exc)):
                    self._give_up(path, items, exc)
                    return
            for feature in _features(items):
                warn_once(feature, f"{feature.name} at {path} is locked by another program; its "
                                   "rows wait in memory and are written once it is free")
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def _connection(self, path: Path) -> sqlite3.Connection:
        """The open connection to `path`; a new one if the file was removed or replaced."""
        opened = self._open.get(path)
        if opened is not None:
            try:
                if os.stat(path).st_ino == opened[1]:
                    return opened[0]
            except FileNotFoundError:
                pass
            self._close(path)
        connection = connect(path)
        self._open[path] = (connection, os.stat(path).st_ino)
        return connection

    def _close(self, path: Path) -> None:
        connection, _ = self._open.pop(path)
        try:
            connection.close()
        except sqlite3.Error:  # closing is all that is left to do with it
            pass

    def _give_up(self, path: Path, items: list[tuple], problem: Exception) -> None:
        if path in self._open:  # a file that failed is opened afresh next time
            self._close(path)
        if "unable to open" in str(problem):  # its folder may be gone: find it again next time
            _paths.clear()
        for feature in _features(items):
            warn_once(feature, f"could not write {feature.name} at {path} ({problem}); the answer "
                               f"is unaffected. {feature.remedy}")


def _flush_at_exit() -> None:
    if not flush(EXIT_WAIT):
        warnings.warn(f"llm_notebook: some rows were not written before exit: the database stayed "
                      f"locked for {EXIT_WAIT:.0f} s", StoreWarning, stacklevel=1)


def _flush_when_a_forked_child_exits() -> None:
    """multiprocessing's forked children end with os._exit, skipping atexit: use its own hook."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None and multiprocessing.parent_process() is not None:
        from multiprocessing import util

        util.Finalize(None, _flush_at_exit, exitpriority=0)


_writer = _Writer()
atexit.register(_flush_at_exit)
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_writer._start_afresh)
