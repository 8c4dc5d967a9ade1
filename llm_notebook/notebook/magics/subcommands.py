"""The line subcommands: `%llm models`, `default`, `alias`, `keys`, `usage`, `logs`, `reset`,
`wait` and `help`. Each gets the words after its name, already known to fit its arguments
(see `arguments.SUBCOMMANDS`), and checks their values with one clear line."""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable
from typing import Any

from .errors import LLMError
from .help import HELP

#: Plain tables fit a terminal this wide.
TERMINAL_WIDTH = 100
MAX_LOG_ROWS = 10_000
_KIND_NAMES = (("image/", "images"), ("audio/", "audio"), ("video/", "video"), ("text/", "text"))


def _show(data: dict[str, str]) -> None:
    from IPython.display import publish_display_data

    publish_display_data(data, {})


def _table(headers, rows) -> None:
    from ...tables import table_data

    _show(table_data(headers, rows, plain_width=TERMINAL_WIDTH))


def attachment_kinds(types: set[str]) -> str:
    """Attachment types in a few words: "images, audio, pdf"."""
    kinds = []
    for kind in sorted(types):
        name = next((word for prefix, word in _KIND_NAMES if kind.startswith(prefix)),
                    kind.rpartition("/")[2])
        if name not in kinds:
            kinds.append(name)
    order = [word for _, word in _KIND_NAMES]
    kinds.sort(key=lambda name: (order.index(name) if name in order else len(order), name))
    return ", ".join(kinds) or "none"


def key_status(model: Any) -> str:
    from ...keys import has_key

    name = model.needs_key or model.key_env_var
    if not name:
        return "not needed"
    found = model.key or has_key(model.needs_key, model.key_env_var)
    return f"{name}: {'set' if found else 'not set'}"


def _kinds(entry: Any) -> str:
    return "/".join(k for k, m in (("sync", entry.model), ("async", entry.async_model)) if m)


def _default_id(magics: Any) -> str | None:
    from ...errors import LLMNotebookError
    from ...plugins import get_default_model, registry

    try:
        return registry.resolve(magics.default_model or get_default_model())
    except LLMNotebookError:  # a stored default that no longer exists marks nothing
        return None


def models(magics: Any, words: list[str]) -> None:
    from ...errors import UnknownModelError
    from ...plugins import get_models_with_aliases, registry

    query = words[0] if words else ""
    default = _default_id(magics)
    if query:
        try:
            entry = registry.entry(query)
        except UnknownModelError:
            pass  # not a model's name: a filter over the list
        else:
            _show(model_info(entry, is_default=entry.model_id == default))
            return
    rows = []
    entries = get_models_with_aliases()
    for entry in entries:
        names = " ".join([entry.model_id, *entry.aliases]).lower()
        if query.lower() not in names:
            continue
        model = entry.any_model()
        rows.append((entry.model_id + (" (default)" if entry.model_id == default else ""),
                     ", ".join(entry.aliases), _kinds(entry),
                     attachment_kinds(set(model.attachment_types)), key_status(model)))
    if not rows:
        print(nothing_matched(query, [name for e in entries for name in (e.model_id, *e.aliases)]))
        return
    _table(("id", "aliases", "kind", "attachments", "key"), rows)


def nothing_matched(query: str, names: list[str]) -> str:
    """The line for a `%llm models QUERY` that no id or alias holds, with the closest names."""
    import difflib

    if not names:
        return "No models are registered: install a plugin, or register one with llm_notebook.register()"
    close = difflib.get_close_matches(query, names, n=3, cutoff=0.5)
    hint = f" Close names: {', '.join(close)}." if close else ""
    return f"No model's id or alias contains {query!r}.{hint} %llm models lists them all."


def _type_name(annotation: Any) -> str:
    """A field's type in words: "number", "whole number or none", "list of text"."""
    import types
    import typing

    names = {int: "whole number", float: "number", str: "text", bool: "true/false",
             dict: "JSON object", list: "list", type(None): "none"}
    if annotation in names:
        return names[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin in (list, tuple, set) and args:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "JSON object"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(field: Any) -> str:
    signs = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))
    found = [f"{sign} {getattr(item, name)}" for item in field.metadata
             for name, sign in signs if getattr(item, name, None) is not None]
    return f" ({', '.join(found)})" if found else ""


def option_rows(model: Any) -> list[tuple[str, str, str, str]]:
    """One row per option of `model`: name, type (with bounds), default, description."""
    rows = []
    for name, field in model.Options.model_fields.items():
        default = "required" if field.is_required() else repr(field.get_default())
        rows.append((name, _type_name(field.annotation) + _bounds(field), default,
                     field.description or ""))
    return rows


def model_info(entry: Any, *, is_default: bool) -> dict[str, str]:
    """One model: what it is, its aliases, attachment types, key, and options with their types,
    defaults and descriptions."""
    from ...markdown import safe_markdown
    from ...tables import table_data

    model = entry.any_model()
    title = f"{entry.model_id} ({_kinds(entry)}{', the default model' if is_default else ''})"
    types = sorted(model.attachment_types)
    facts = [("aliases", ", ".join(entry.aliases) or "none"),
             ("attachments", f"{attachment_kinds(set(types))} ({', '.join(types)})" if types
              else "none"),
             ("key", key_status(model))]
    rows = option_rows(model)
    options = (table_data(("option", "type", "default", "description"), rows,
                          plain_width=TERMINAL_WIDTH) if rows
               else {"text/plain": "No options.", "text/markdown": "No options."})
    about = model.description or ""
    plain = "\n".join([title, *([about] if about else []),
                       *(f"{name}: {value}" for name, value in facts), "", options["text/plain"]])
    markdown = "\n\n".join([f"**{safe_markdown(title)}**", *([safe_markdown(about)] if about else []),
                            "\n".join(f"- {name}: {safe_markdown(value)}" for name, value in facts),
                            options["text/markdown"]])
    return {"text/plain": plain, "text/markdown": markdown}


def default(magics: Any, words: list[str]) -> None:
    from ...plugins import get_default_model, set_default_model

    if words:
        set_default_model(words[0])
        magics.default_model = words[0]
    print(f"Default model: {magics.default_model or get_default_model()}")


def alias(magics: Any, words: list[str]) -> None:
    from ...plugins import set_alias

    set_alias(*words)
    print(f"Alias {words[0]} -> {words[1]}")


def keys(magics: Any, words: list[str]) -> None:
    from IPython.core.error import StdinNotImplementedError

    from ...keys import set_key, stored_key_names

    if not words:
        print("Stored keys: " + (", ".join(stored_key_names()) or "none"))
        return
    name = words[1]
    try:
        value = getpass.getpass(f"Key for {name}: ").strip()
    except StdinNotImplementedError:
        raise LLMError(f"this frontend cannot ask for a key (it has no input box, as when a notebook "
                       f"runs headless): store it from Python with llm_notebook.set_key({name!r}, "
                       "...), or set the model's environment variable", "UsageError") from None
    if not value:
        raise LLMError("no key entered; nothing stored", "UsageError")
    set_key(name, value)
    print(f"Stored key {name!r}")


def usage(magics: Any, words: list[str]) -> None:
    from ...usage import SESSION_HEADERS, session_usage

    if words:
        session_usage.reset()
        print("Usage reset")
        return
    _table(SESSION_HEADERS, session_usage.rows())


def _shorten(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def logs(magics: Any, words: list[str]) -> None:
    from ...log import logs as logged

    count = int(words[1]) if words else 20
    if not 1 <= count <= MAX_LOG_ROWS:
        raise LLMError(f"%llm logs -n takes a number of answers from 1 to {MAX_LOG_ROWS:,}, not "
                       f"{words[1]}", "UsageError")
    rows = [(row["datetime_utc"][:19], row["model"], row["status"],
             _shorten(row["prompt"] or ""), _shorten(row["text"] or ""))
            for row in logged(count)]
    _table(("time (UTC)", "model", "status", "prompt", "answer"), rows)


def reset(magics: Any, words: list[str]) -> None:
    conversations = magics.conversations
    if words and conversations.named(words[0]) is None:
        known = ", ".join(conversations.names()) or "none yet"
        raise LLMError(f"no conversation is named {words[0]!r} (named ones: {known}); %llm reset "
                       "alone forgets every conversation", "UsageError")
    count = conversations.reset(words[0] if words else None)
    print(f"Forgot {count} conversation{'s' if count != 1 else ''}")


def wait(magics: Any, words: list[str]) -> None:
    from ..background import waited_line, wait_for_background

    start = time.monotonic()
    try:
        jobs = wait_for_background()
    except KeyboardInterrupt:
        print("Stopped waiting: the background answers were cancelled; their partial answers "
              "are kept")
        return
    print(waited_line(jobs, time.monotonic() - start))


def help(magics: Any, words: list[str]) -> None:
    print(HELP)


COMMANDS: dict[str, Callable[[Any, list[str]], None]] = {
    "models": models, "default": default, "alias": alias, "keys": keys, "usage": usage,
    "logs": logs, "reset": reset, "wait": wait, "help": help,
}
