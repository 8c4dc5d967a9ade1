"""Reading a `%llm` line: the prompt options, the prompt after them, and the line subcommands.

Only the leading options are shell-split, so a prompt may hold quotes and apostrophes freely.
A line whose first word names a subcommand is that subcommand only when the rest fits its
arguments; otherwise the whole line is a prompt (`%llm help me name this function`).
"""

from __future__ import annotations

import argparse
import builtins
import json
import keyword
import re
import shlex
from dataclasses import dataclass
from typing import Any

from .errors import LLMError

FORMATS = ("markdown", "text", "code", "json")

#: The prompt options: flags, then argparse keywords. The parser and the line splitter share it.
OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("-m", "--model"), dict(action="append", default=[], metavar="ID")),
    (("--models",), dict(metavar="A,B,...")),
    (("--async",), dict(action="store_true", dest="prefer_async")),
    (("--background",), dict(action="store_true")),
    (("-s", "--system"), dict(metavar="TEXT")),
    (("-o", "--option"), dict(nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))),
    (("--key",), dict(metavar="KEY")),
    (("--no-stream",), dict(action="store_true")),
    (("-a", "--attach"), dict(action="append", default=[], metavar="X")),
    (("--at",), dict(nargs=2, action="append", default=[], metavar=("PATH", "TYPE"))),
    (("-c", "--continue"), dict(action="store_true", dest="continue_last")),
    (("--conversation",), dict(metavar="NAME")),
    (("--out",), dict(metavar="NAME")),
    (("-f", "--format"), dict(choices=FORMATS, default="markdown")),
    (("--schema",), dict(metavar="SPEC")),
    (("--multi",), dict(action="store_true")),
    (("--no-usage",), dict(action="store_true")),
    (("--no-log",), dict(action="store_true")),
    (("--no-interpolate",), dict(action="store_true")),
    (("--hide-reasoning",), dict(action="store_true")),
    (("-T", "--tool"), dict(action="append", default=[], metavar="NAME")),
    (("--tools",), dict(metavar="A,B,...")),
    (("--chain-limit",), dict(type=int, metavar="N")),
    (("--approve",), dict(action="store_true")),
    (("--refresh",), dict(action="store_true")),
    (("--dry-run",), dict(action="store_true")),
)
_ARITY = {flag: (0 if kw.get("action") == "store_true" else kw.get("nargs", 1))
          for flags, kw in OPTIONS for flag in flags}
_WORD = re.compile(r"""(?:"[^"]*"|'[^']*'|[^\s"'])+""")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise LLMError(f"{message} (see %llm help)", "UsageError")


def tool_names(args: argparse.Namespace) -> list[str]:
    """The names given with -T and --tools, in order."""
    return [*args.tool, *(name.strip() for name in (args.tools or "").split(",") if name.strip())]


def prompt_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%%llm", add_help=False)
    for flags, keywords in OPTIONS:
        parser.add_argument(*flags, **keywords)
    return parser


def split_line(line: str) -> tuple[list[str], str]:
    """Leading options of a magic line (unquoted) and the prompt text after them, untouched.

    `--` ends the options early.
    """
    tokens, position = [], 0
    while True:
        match = _WORD.match(line, len(line) - len(line[position:].lstrip()))
        if match is None or not match.group(0).startswith("-"):
            break
        word, position = match.group(0), match.end()
        if word == "--":
            break
        _check_quotes(line, position, word)
        tokens.append(word)
        for _ in range(0 if "=" in word else _ARITY.get(word, 0)):
            start = len(line) - len(line[position:].lstrip())
            value = _WORD.match(line, start)
            _check_quotes(line, value.end() if value else start, word)
            if value is None:
                break
            tokens.append(value.group(0))
            position = value.end()
    try:
        unquoted = [part for token in tokens for part in shlex.split(token)]
    except ValueError as exc:
        raise LLMError(f"cannot read the options: {exc}", "UsageError") from None
    return unquoted, line[position:].strip()


def _check_quotes(line: str, end: int, option: str) -> None:
    """An option's word or value that runs into a quote never closed is one line naming it
    (the word stops at the quote, so argparse would only say a value is missing)."""
    if line[end:end + 1] not in ("'", '"'):
        return
    quote = line[end]
    rest = line[end:].split("\n", 1)[0]
    shown = rest if len(rest) <= 30 else rest[:29] + "…"
    raise LLMError(f"{option.partition('=')[0]}: the quote {quote} that starts {shown} is never "
                   "closed: close it, or leave the quotes out of a one-word value", "UsageError")


def option_value(text: str) -> Any:
    """JSON lists and objects are parsed; other values go as text for the model's Options to convert."""
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


@dataclass
class ModelOptions:
    """`-o` options: those for every model, and those one model was named for (`-o MODEL.name`)."""

    shared: dict[str, Any]
    own: dict[str, dict[str, Any]]

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> ModelOptions:
        shared: dict[str, Any] = {}
        own: dict[str, dict[str, Any]] = {}
        for name, value in pairs:
            model, dot, option = name.rpartition(".")
            if dot and model and option:
                own.setdefault(model, {})[option] = option_value(value)
            else:
                shared[name] = option_value(value)
        return cls(shared, own)

    def for_one(self, asked: str | None, model: Any) -> dict[str, Any]:
        """The options of a prompt to one model; naming another model is an error."""
        options = dict(self.shared)
        for name, given in self.own.items():
            if name not in (asked, model.model_id):
                raise LLMError(f"-o {name}.{next(iter(given))}: {name} is not the model asked "
                               f"({model.model_id}); leave out the prefix, or ask {name} too",
                               "UsageError")
            options.update(given)
        return options


#: Names that --out must not rebind: the kernel and IPython rely on them.
_KERNEL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "display"}


def check_out_name(name: str) -> None:
    """--out takes a plain variable name that rebinds nothing the notebook relies on."""
    why = None
    if not name.isidentifier():
        why = "is not a variable name"
    elif keyword.iskeyword(name):
        why = "is a Python keyword"
    elif name.startswith("_"):
        why = "starts with _, which IPython keeps for its output history"
    elif name in _KERNEL_NAMES:
        why = "is IPython's own"
    elif hasattr(builtins, name):
        why = f"would hide the builtin {name}"
    if why:
        raise LLMError(f"--out {name} {why}: choose another name, such as answer_text",
                       "UsageError")


# -- subcommands ------------------------------------------------------------------------------
#: What each subcommand takes, word by word: literals, WORD (any word not starting with "-"),
#: INT (a whole number). A subcommand may have several forms.
SUBCOMMANDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "help": ((),),
    "models": ((), ("WORD",)),
    "default": ((), ("WORD",)),
    "alias": (("WORD", "WORD"),),
    "keys": ((), ("set", "WORD")),
    "usage": ((), ("--reset",)),
    "logs": ((), ("-n", "INT")),
    "reset": ((), ("WORD",)),
    "wait": ((),),
}
_INT = re.compile(r"[+-]?\d+")


def _fits(words: list[str], form: tuple[str, ...]) -> bool:
    if len(words) != len(form):
        return False
    for word, expected in zip(words, form):
        if expected == "WORD":
            if word.startswith("-"):
                return False
        elif expected == "INT":
            if not _INT.fullmatch(word):
                return False
        elif word != expected:
            return False
    return True


def subcommand(line: str) -> tuple[str, list[str]] | None:
    """The subcommand a line calls and its words, or None when the line is a prompt."""
    words = line.split()
    if not words or words[0] not in SUBCOMMANDS:
        return None
    rest = words[1:]
    if any(_fits(rest, form) for form in SUBCOMMANDS[words[0]]):
        return words[0], rest
    return None
