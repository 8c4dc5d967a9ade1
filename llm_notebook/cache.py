"""The answer cache: an identical request is answered from the answer stored the first time.

    llm_notebook.settings.cache = "replay"     # or LLM_NOTEBOOK_CACHE=replay
    with llm_notebook.cache.mode("refresh"):   # this block asks again and updates the cache
        ...

Modes: "replay" (an identical request is answered from the cache at once, costing nothing),
"off", "refresh" (always ask the model, then update the cache), "only" (never ask a model: a
request with no stored answer fails with `CacheMiss`), and the default "auto": "replay" inside a
Jupyter kernel (where re-running cells is the way of working), "off" in scripts and terminals.

Answers live in the database the log uses (one SQLite file in the user directory, WAL mode,
written by the store's thread), under the hash of their request (`request_key`): only finished
answers, never interrupted or failed ones. A response kept out of the log (`--no-log`,
`settings.log = False`) is kept out of the cache too, so nothing of it is written to disk; it
may still be answered from the cache. `export()` copies the answers a notebook used into a small
file, and `use(path)` (or LLM_NOTEBOOK_CACHE_FILES) reads such files, so a notebook replays on
another machine with no key and no network.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as _dt
import json
import os
import sqlite3
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from . import store
from .errors import LLMNotebookError
from .migrations import ANSWERS_TABLE
from .parts import ReasoningPart, StreamEvent, TextPart, ToolCallPart, ToolResultPart
from .request_key import request_key
from .responses import Recorded, Status, Usage

__all__ = ["CacheMiss", "CacheModeError", "CacheWarning", "MODES", "current_mode", "export", "key_of", "lookup",
           "mode", "replayed_line", "sources", "stop_using", "use"]

MODES = ("replay", "off", "refresh", "only")
FILES_ENV = "LLM_NOTEBOOK_CACHE_FILES"
#: Keys asked of SQLite in one query.
_KEYS_PER_QUERY = 500


class CacheMiss(LLMNotebookError):
    """Cache mode "only" and no stored answer for the request: nothing was sent."""


class CacheModeError(LLMNotebookError, ValueError):
    """A cache mode that does not exist."""


class CacheWarning(store.StoreWarning):
    """The answer cache could not be written or read; the answer itself is unaffected."""


_CACHE = store.Feature(name="the answer cache", item="answer", warning=CacheWarning,
                       remedy='Turn it off with llm_notebook.settings.cache = "off"')
_INSERT = store.Insert("answers", ("key", "model", "resolved_model", "datetime_utc",
                                   "input_tokens", "output_tokens", "answer"))
_SELECT = ("SELECT key, model, resolved_model, datetime_utc, input_tokens, output_tokens, answer "
           "FROM answers WHERE key")


# -- modes -----------------------------------------------------------------------------------------

_chosen: contextvars.ContextVar[str | None] = contextvars.ContextVar("llm_notebook_cache_mode",
                                                                   default=None)
#: Responses whose mode (and, for map, whose answer) was settled where they were made.
_bound: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_NOT_LOOKED_UP = object()


def _checked(name: str, where: str) -> str:
    value = str(name).strip().lower()
    if value == "auto" or value in MODES:
        return value
    raise CacheModeError(f"{where} is {name!r}: use one of replay, off, refresh, only, auto")


def _in_kernel() -> bool:
    """A Jupyter kernel (notebook, JupyterLab, nbclient) is running this code; a terminal IPython
    and plain scripts are not. IPython is not imported to find out."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    return getattr(ipython.get_ipython(), "kernel", None) is not None


def current_mode() -> str:
    """The mode in force here: `mode()`'s, else `settings.cache`'s, with "auto" decided."""
    from .settings import settings

    chosen = _chosen.get() or _checked(settings.cache, "llm_notebook.settings.cache")
    if chosen == "auto":
        return "replay" if _in_kernel() else "off"
    return chosen


@contextlib.contextmanager
def mode(name: str) -> Iterator[None]:
    """Use cache mode `name` for the responses started in this block (this thread or task, and
    the work it hands to the package's runner); `%%llm --refresh` is `mode("refresh")`."""
    token = _chosen.set(_checked(name, "cache.mode()"))
    try:
        yield
    finally:
        _chosen.reset(token)


def bind(responses: list[Any], mode: str | None = None) -> list[Recorded | None]:
    """Settle each response's mode now (default: the mode in force here), wherever it later
    starts, and look the answers up now, many to a query (`map` counts the rows the cache answers
    before it starts). Returns the stored answer each will replay, or None."""
    chosen = mode or current_mode()
    keys = [request_key(r.prompt) if chosen != "off" else None for r in responses]
    found = lookup_many(keys) if chosen in ("replay", "only") else [None] * len(keys)
    for response, key, recorded in zip(responses, keys, found):
        _bound[response] = (chosen, recorded, key)
    return found


# -- the start hook and the finish callback -----------------------------------------------------------

def start(response: Any) -> Recorded | None:
    """The start hook: the stored answer to replay, or None to ask the model (see the modes)."""
    chosen, found, key = _bound.pop(response, (None, _NOT_LOOKED_UP, None))
    chosen = chosen or current_mode()
    if chosen == "off":
        return None
    key = key or request_key(response.prompt)
    if chosen != "refresh":
        recorded = lookup(response, key=key) if found is _NOT_LOOKED_UP else found
        if recorded is not None:
            return _with_savings(recorded, response)
        if chosen == "only":  # nothing is asked, so nothing new is stored
            raise CacheMiss(
                f"No stored answer for this request to {response.model.model_id!r}, and the cache "
                f'mode is "only", which never asks a model: set llm_notebook.settings.cache = '
                f'"replay" (or LLM_NOTEBOOK_CACHE=replay) to ask it, or add the file that holds '
                f"its answers with llm_notebook.cache.use(path)")
    response.on_done(lambda finished: _store(finished, key))
    return None


def _store(response: Any, key: str) -> None:
    """Queue a finished answer for writing; kept in memory until it is written."""
    if response.status is not Status.DONE or response.replayed is not None:
        return
    if not response.log_enabled:
        return
    started = response.started_utc or _dt.datetime.now(_dt.timezone.utc)
    usage = response.recorded_usage()
    about = {"key": key, "datetime_utc": started.isoformat(), "model": response.model.model_id,
             "resolved_model": response.resolved_model, "duration_ms": response.elapsed_ms(),
             "first_chunk_ms": response.first_chunk_ms(), "saved_tokens": _tokens(usage)}
    recorded = Recorded(chunks=tuple(_chunks(response.parts_so_far())), usage=usage,
                        resolved_model=response.resolved_model,
                        tool_calls=tuple(response.tool_calls_so_far()),
                        response_json=response.response_json, about=about)
    path = store.database_path()
    _pending[key] = (recorded, path)
    store.write(_CACHE, _INSERT, recorded, key=key, make=_row, path=path)
    _queued_for_writing(key, recorded)


_unconfirmed: list[tuple[str, Recorded]] = []  # queued for writing, oldest first
_confirming = [0]  # how many of them a marker in the store's queue will confirm (0: none out)
_unconfirmed_lock = threading.Lock()


def _queued_for_writing(key: str, recorded: Recorded) -> None:
    """Note an answer queued for writing; one marker at a time follows the rows in the store's
    queue (not one per answer), and confirms every answer queued before it."""
    with _unconfirmed_lock:
        _unconfirmed.append((key, recorded))
        if _confirming[0]:
            return
        _confirming[0] = len(_unconfirmed)
    store.after_written(_written)


def _written(_: Any = None) -> None:
    """The answers queued before the marker are in the database: forget them here (unless a
    newer answer for the key is still queued), and send a marker after the ones since."""
    with _unconfirmed_lock:
        done = _unconfirmed[:_confirming[0]]
        del _unconfirmed[:_confirming[0]]
        _confirming[0] = len(_unconfirmed)
        more = bool(_unconfirmed)
    for key, recorded in done:
        if _pending.get(key, (None,))[0] is recorded:
            _pending.pop(key, None)
    if more:
        store.after_written(_written)


def _with_savings(recorded: Recorded, response: Any) -> Recorded:
    """The replayed answer's provenance with what asking again would have cost (priced now, at
    today's prices: the price data knows no other)."""
    from .prices import Bill

    bill = dataclasses.replace(Bill.planned(response.model, recorded.usage),
                               resolved_model=recorded.resolved_model)
    saved = bill.cost().dollars
    about = {**recorded.about, "saved_cost": None if saved is None else float(saved)}
    return dataclasses.replace(recorded, about=about)


def _tokens(usage: Usage) -> int | None:
    if usage.input is None and usage.output is None:
        return None
    return (usage.input or 0) + (usage.output or 0)


def _chunks(parts: list[Any]) -> Iterator[Any]:
    """What replaying must yield to rebuild the parts exactly: plain text for a text-only answer,
    else one event (two for a tool call) per part, each at its own part_index."""
    if all(type(p) is TextPart and not p.provider_metadata for p in parts):
        text = "".join(p.text for p in parts)
        if text:
            yield text
        return
    for index, part in enumerate(parts):
        meta = part.provider_metadata
        if isinstance(part, TextPart):
            yield StreamEvent("text", part.text, part_index=index, provider_metadata=meta)
        elif isinstance(part, ReasoningPart):
            yield StreamEvent("reasoning", part.text, part_index=index, redacted=part.redacted,
                              provider_metadata=meta)
        elif isinstance(part, ToolCallPart):
            common = {"part_index": index, "tool_call_id": part.tool_call_id,
                      "server_executed": part.server_executed}
            yield StreamEvent("tool_call_name", part.name, provider_metadata=meta, **common)
            yield StreamEvent("tool_call_args", json.dumps(part.arguments), **common)
        elif isinstance(part, ToolResultPart):
            yield StreamEvent("tool_result", part.output, part_index=index,
                              tool_call_id=part.tool_call_id, server_executed=part.server_executed,
                              tool_name=part.name, provider_metadata=meta)


def _row(recorded: Recorded) -> tuple[Any, ...]:
    """The table row (made on the store's thread: encoding it costs an answer nothing)."""
    about, usage = recorded.about, recorded.usage
    answer = {"chunks": [c if isinstance(c, str) else dataclasses.asdict(c) for c in recorded.chunks],
              "usage": {"input": usage.input, "output": usage.output, "details": usage.details},
              "tool_calls": [dataclasses.asdict(call) for call in recorded.tool_calls],
              "response_json": recorded.response_json, "duration_ms": about["duration_ms"],
              "first_chunk_ms": about["first_chunk_ms"]}
    return (about["key"], about["model"], about["resolved_model"], about["datetime_utc"],
            usage.input, usage.output, json.dumps(answer, default=str))


# -- looking answers up ---------------------------------------------------------------------------

_pending: dict[str, tuple[Recorded, Path]] = {}  # written soon; found here until then
_sources: list[Path] = []
_env_sources_read = False
_local = threading.local()


def lookup(response: Any, *, key: str | None = None) -> Recorded | None:
    """The stored answer to `response`'s request, from this session's newest answers, the cache
    database, then the files added with `use()`; None if there is none. Never waits on writes."""
    return lookup_many([key or request_key(response.prompt)])[0]


def lookup_many(keys: list[str]) -> list[Recorded | None]:
    """The stored answers under `keys` (None where there is none), many to a query."""
    order = _read_order()
    found: dict[str, Recorded] = {}
    for key in keys:
        waiting = _pending.get(key)
        if waiting is not None and waiting[1] == order[0][0]:
            found[key] = _replayed(waiting[0], "this session")
    for path, source in order:
        todo = [key for key in dict.fromkeys(keys) if key not in found]
        for row in _read_rows(path, todo):
            found[row[0]] = _from_row(row, source)
    return [found.get(key) for key in keys]


def _replayed(recorded: Recorded, source: str) -> Recorded:
    return dataclasses.replace(recorded, about={**recorded.about, "source": source})


def _from_row(row: tuple, source: str) -> Recorded:
    key, model, resolved, when, input_tokens, output_tokens, text = row
    answer = json.loads(text)
    usage = answer.get("usage") or {}
    from .tools import ToolCall

    recorded = Recorded(
        chunks=tuple(c if isinstance(c, str) else StreamEvent(**c) for c in answer["chunks"]),
        usage=Usage(input=usage.get("input"), output=usage.get("output"),
                    details=usage.get("details")),
        resolved_model=resolved,
        tool_calls=tuple(ToolCall(**call) for call in answer.get("tool_calls") or ()),
        response_json=answer.get("response_json"),
        about={"key": key, "datetime_utc": when, "model": model, "resolved_model": resolved,
               "duration_ms": answer.get("duration_ms"),
               "first_chunk_ms": answer.get("first_chunk_ms"),
               "saved_tokens": None if input_tokens is None and output_tokens is None
               else (input_tokens or 0) + (output_tokens or 0)})
    return _replayed(recorded, source)


def _read_order() -> list[tuple[Path, str]]:
    global _env_sources_read
    if not _env_sources_read:
        _env_sources_read = True
        for name in filter(None, os.environ.get(FILES_ENV, "").split(os.pathsep)):
            try:
                use(name)
            except (LLMNotebookError, OSError, ValueError) as exc:
                store.warn_once(_CACHE, f"{FILES_ENV}: {exc}")
    return [(store.database_path(), "cache"), *((path, str(path)) for path in _sources)]


def _read_rows(path: Path, keys: list[str]) -> list[tuple]:
    """The rows of `path` under `keys` ([] when it cannot be read: the model is asked instead)."""
    rows: list[tuple] = []
    try:
        connection = _connection(path)
        if connection is None:
            return rows
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = keys[start:start + _KEYS_PER_QUERY]
            if len(chunk) == 1:
                rows += connection.execute(_SELECT + " = ?", chunk).fetchall()
            else:
                marks = ", ".join("?" for _ in chunk)
                rows += connection.execute(f"{_SELECT} IN ({marks})", chunk).fetchall()
    except sqlite3.Error as exc:
        _forget_connection(path)
        store.warn_once(_CACHE, f"could not read {_CACHE.name} at {path} ({exc}); the model is "
                                "asked instead")
    return rows


def _connection(path: Path) -> sqlite3.Connection | None:
    """This thread's connection to `path` (None while the database does not exist)."""
    opened = getattr(_local, "opened", None)
    if opened is None or opened[0] != os.getpid():  # a forked child opens its own
        opened = _local.opened = (os.getpid(), {})
    connection = opened[1].get(path)
    if connection is None:
        if path in _sources:
            connection = _open_read_only(path)
        elif not path.exists():
            return None
        else:
            connection = store.connect(path)  # brings the schema up to date
        opened[1][path] = connection
    return connection


def _forget_connection(path: Path) -> None:
    opened = getattr(_local, "opened", None)
    if opened is not None:
        connection = opened[1].pop(path, None)
        if connection is not None:
            connection.close()


def _open_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


# -- provenance ------------------------------------------------------------------------------------

def key_of(response: Any) -> str:
    """The cache key of `response`'s request: what the notebook keeps as
    `metadata["llm_notebook"]["cache_key"]`, so `export()` finds the answers a notebook used."""
    replayed = getattr(response, "replayed", None)
    if replayed and replayed.get("key"):
        return replayed["key"]
    return request_key(response.prompt)


def replayed_line(replayed: Any) -> str:
    """"replayed from 2026-11-30 14:02 · saved 1,234 tokens, $0.004", from a response or its
    `replayed` dict ("" for an answer the model gave). The time is local."""
    about = getattr(replayed, "replayed", replayed)
    if not about:
        return ""
    line = "replayed"
    when = about.get("datetime_utc")
    if when:
        try:
            line += " from " + _dt.datetime.fromisoformat(when).astimezone().strftime("%Y-%m-%d %H:%M")
        except ValueError:
            pass
    from .prices import format_dollars

    saved = []
    if about.get("saved_tokens") is not None:
        saved.append(f"{about['saved_tokens']:,} tokens")
    if about.get("saved_cost") is not None:
        saved.append(format_dollars(about["saved_cost"]))
    return line + (f" · saved {', '.join(saved)}" if saved else "")


# -- portable files ---------------------------------------------------------------------------------

def use(path: str | os.PathLike) -> None:
    """Read answers from `path` (a file `export()` wrote) too, read-only, after the cache."""
    where = Path(path).expanduser()
    if not where.is_file():
        raise LLMNotebookError(f"No cache file at {where}: give the path of a file that "
                               "llm_notebook.cache.export() wrote")
    try:
        connection = _open_read_only(where)
        try:
            connection.execute("SELECT key FROM answers LIMIT 1").fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        raise LLMNotebookError(f"{where} is not a cache file (it holds no answers table): give "
                               "the path of a file that llm_notebook.cache.export() wrote") from None
    if where not in _sources:
        _sources.append(where)


def stop_using(path: str | os.PathLike | None = None) -> None:
    """Stop reading `path` (every file added with `use()`, when None)."""
    if path is None:
        _sources.clear()
    else:
        where = Path(path).expanduser()
        if where in _sources:
            _sources.remove(where)


def sources() -> list[Path]:
    """The read-only files in use (see `use()`), in the order they are searched."""
    _read_order()
    return list(_sources)


def notebook_keys(notebook: str | os.PathLike) -> list[str]:
    """The cache keys a saved notebook's outputs record (`metadata["llm_notebook"]["cache_key"]`,
    at any depth under it: side-by-side answers record one each)."""
    where = Path(notebook).expanduser()
    try:
        document = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LLMNotebookError(f"Cannot read the notebook {where}: {exc}") from None
    keys: list[str] = []
    for cell in document.get("cells") or ():
        for output in cell.get("outputs") or ():
            metadata = output.get("metadata") or {}
            keys += _keys_in(metadata.get("llm_notebook"))
    return list(dict.fromkeys(keys))


def _keys_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["cache_key"]] if isinstance(value.get("cache_key"), str) else []
        return found + [k for v in value.values() for k in _keys_in(v)]
    if isinstance(value, list):
        return [k for v in value for k in _keys_in(v)]
    return []


def export(path: str | os.PathLike, notebook: str | os.PathLike | None = None,
           keys: Iterable[str] | None = None) -> int:
    """Copy the answers a saved notebook used (and/or the answers under `keys`) into the SQLite
    file `path`, to give with the notebook; returns how many it holds of those asked for.

    An existing cache file gains the answers; any other existing file is left alone (an error).
    Answers not in the cache are named in one warning.
    """
    if notebook is None and keys is None:
        raise ValueError("export() needs notebook= (a saved .ipynb) or keys= (cache keys)")
    wanted = list(dict.fromkeys([*(notebook_keys(notebook) if notebook is not None else ()),
                                 *(keys or ())]))
    where = Path(path).expanduser()
    if where.exists() and where.resolve() == store.database_path().resolve():
        raise LLMNotebookError(f"{where} is the cache database itself: export to another file")
    store.flush(store.READ_WAIT)
    rows = _rows_for(wanted)
    _write_file(where, rows)
    missing = len(wanted) - len(rows)
    if missing:
        store.warn_once(_CACHE, f"{missing} of the {len(wanted)} answers asked for are not in the "
                                "cache (asked with the cache off, or not finished); run them again "
                                "with the cache on, then export again")
    return len(rows)


def _rows_for(keys: list[str]) -> dict[str, tuple]:
    found: dict[str, tuple] = {}
    for path, _ in _read_order():
        for row in _read_rows(path, [k for k in keys if k not in found]):
            found[row[0]] = row
    return found


def _write_file(where: Path, rows: dict[str, tuple]) -> None:
    """Add `rows` to the cache file `where` in one transaction (one file: no WAL beside it)."""
    existed = where.exists()
    try:
        connection = sqlite3.connect(where, isolation_level=None)
    except sqlite3.Error as exc:
        raise LLMNotebookError(f"Cannot write {where}: {exc}") from None
    try:
        if existed:
            try:
                connection.execute("SELECT key FROM answers LIMIT 1").fetchall()
            except sqlite3.Error:
                raise LLMNotebookError(f"{where} exists and is not a cache file: it was left as "
                                       "it is; export to another path") from None
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(ANSWERS_TABLE)
        connection.executemany(f"INSERT OR REPLACE INTO answers ({', '.join(_INSERT.columns)}) "
                               f"VALUES ({', '.join('?' for _ in _INSERT.columns)})",
                               rows.values())
        connection.execute("COMMIT")
    except sqlite3.Error as exc:
        raise LLMNotebookError(f"Cannot write {where}: {exc}") from None
    finally:
        connection.close()
