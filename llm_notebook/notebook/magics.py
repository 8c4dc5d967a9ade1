"""`%%llm` and `%llm`: parse the options, then call the Python API and show the answer.

Loading registers the magics and starts remembering displayed images for `@plot`; it imports
no plugin, no httpx and no pillow.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import shlex
import sys
import time
from collections.abc import Iterator
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Float, Integer, Unicode, observe

from .. import settings
from ..conversations import Conversations
from ..errors import LLMNotebookError
from ..interpolate import interpolate
from ..markdown import safe_markdown
from ..usage import ANSWER_HEADERS, SESSION_HEADERS, answer_row, session_usage
from ..references import resolve_attachment
from . import render
from .plots import PlotHistory

FORMATS = ("markdown", "text", "code", "json")
SUBCOMMANDS = ("models", "default", "alias", "keys", "usage", "logs", "reset", "wait", "help")

#: The prompt options: flags, then argparse keywords. The parser and the line splitter share it.
_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("-m", "--model"), dict(action="append", default=[], metavar="ID",
                             help="model id or alias (default: the default model); repeat it to "
                                  "ask several models at once, answers side by side")),
    (("--models",), dict(metavar="A,B,...", help="several models at once, answers side by side")),
    (("--async",), dict(action="store_true", dest="prefer_async",
                        help="use the model's async variant when it has one (default: the sync one)")),
    (("--background",), dict(action="store_true",
                             help="return at once: the answer streams into this cell while later "
                                  "cells run; the cell's value is a handle with .done(), .cancel(), "
                                  ".result() and await; %%llm wait waits for all")),
    (("-s", "--system"), dict(metavar="TEXT", help="system prompt")),
    (("-o", "--option"), dict(nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                              help="model option, checked against the model's options; repeatable")),
    (("--key",), dict(metavar="KEY", help="API key for this prompt (better: %%llm keys set NAME)")),
    (("--no-stream",), dict(action="store_true", help="ask for the whole answer at once")),
    (("-a", "--attach"), dict(action="append", default=[], metavar="X",
                              help="variable or attribute path, file, URL, or @plot / @plot-2 (the "
                                   "newest / second newest image displayed); repeatable")),
    (("--at",), dict(nargs=2, action="append", default=[], metavar=("PATH", "TYPE"),
                     help="file or URL attached with this content type; repeatable")),
    (("-c", "--continue"), dict(action="store_true", dest="continue_last",
                                help="continue the last conversation with this model")),
    (("--conversation",), dict(metavar="NAME", help="continue (or start) the named conversation")),
    (("--out",), dict(metavar="NAME", help="store the answer's text in the variable NAME")),
    (("-f", "--format"), dict(choices=FORMATS, default="markdown",
                              help="markdown (default); text; code: put the code blocks in a new "
                                   "cell below, not run; json: parse and show the JSON")),
    (("--no-usage",), dict(action="store_true", help="no usage table under the answer")),
    (("--no-log",), dict(action="store_true", help="do not write this response to the log")),
    (("--no-interpolate",), dict(action="store_true", help="send {braces} as they are")),
)
_ARITY = {flag: (0 if kw.get("action") == "store_true" else kw.get("nargs", 1))
          for flags, kw in _OPTIONS for flag in flags}
_WORD = re.compile(r"""(?:"[^"]*"|'[^']*'|[^\s"'])+""")
_CODE_BLOCK = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n(.*?)^ {0,3}\1[ \t]*$", re.M | re.S)


class LLMError(Exception):
    """A user error, shown as one line without a traceback (IPython honours _render_traceback_)."""

    def __init__(self, message: str, kind: str = "Error") -> None:
        super().__init__(message)
        self.kind = kind

    def _render_traceback_(self) -> list[str]:
        return [f"{self.kind}: {self}"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise LLMError(f"{message} (see %llm help)", "UsageError")


def _prompt_parser() -> _Parser:
    parser = _Parser(prog="%%llm", add_help=False, description=(
        "%%llm [options] sends the cell; %llm [options] PROMPT sends one line. {name}, {name.attr}, "
        "{name[key]}, {In[3]}, {Out[3]} are replaced from the notebook; {{x}} is a literal {x}."))
    for flags, keywords in _OPTIONS:
        parser.add_argument(*flags, **keywords)
    return parser


def split_line(line: str) -> tuple[list[str], str]:
    """Leading options of a magic line (unquoted) and the prompt text after them, untouched.

    Only the options are shell-split, so a prompt may hold apostrophes and quotes freely;
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
        tokens.append(word)
        for _ in range(0 if "=" in word else _ARITY.get(word, 0)):
            value = _WORD.match(line, len(line) - len(line[position:].lstrip()))
            if value is None:
                break
            tokens.append(value.group(0))
            position = value.end()
    try:
        unquoted = [part for token in tokens for part in shlex.split(token)]
    except ValueError as exc:
        raise LLMError(f"cannot read the options: {exc}", "UsageError") from None
    return unquoted, line[position:].strip()


def _option_value(text: str) -> Any:
    """JSON lists and objects are parsed; other values go as text for the model's Options to convert."""
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def code_blocks(text: str) -> list[str]:
    return [match.group(2).rstrip("\n") for match in _CODE_BLOCK.finditer(text)]


@magics_class
class LLMMagics(Magics):
    """The %%llm and %llm magics; the traits below are settable with %config LLMMagics.x = ..."""

    default_model = Unicode("", help="Model used when -m is not given; empty: the stored default "
                                     "(llm_notebook.get_default_model())").tag(config=True)
    stream = Bool(True, help="Stream answers as they arrive").tag(config=True)
    show_usage = Bool(True, help="Show a usage table under each answer").tag(config=True)
    display_interval = Float(0.1, help="Least seconds between two display updates").tag(config=True)
    display_budget = Float(4.0, help="Bytes sent while streaming, at most this many times the "
                                     "answer's size (plus 4 KB)").tag(config=True)
    max_image_edge = Integer(settings.max_image_edge, allow_none=True,
                             help="Longest edge in pixels of attached images; None: never "
                                  "downscale").tag(config=True)
    log = Bool(settings.log, help="Write responses to the SQLite log").tag(config=True)
    plot_history = Integer(10, help="How many displayed images @plot-N can reach").tag(config=True)

    def __init__(self, shell=None, **kwargs) -> None:
        super().__init__(shell=shell, **kwargs)
        self.conversations = Conversations()
        self.background: list = []  # --background answers that %llm wait has not reported yet
        self.plots = PlotHistory(self.plot_history)
        self.parser = _prompt_parser()

    @observe("plot_history")
    def _resize_plots(self, change) -> None:
        self.plots.resize(change["new"])

    @observe("log")
    def _set_log(self, change) -> None:
        settings.log = change["new"]

    @observe("max_image_edge")
    def _set_max_image_edge(self, change) -> None:
        settings.max_image_edge = change["new"]

    # -- entry point --------------------------------------------------------------------------
    @no_var_expand  # IPython would expand {name} itself, before our own rules
    @line_cell_magic
    def llm(self, line: str, cell: str | None = None):
        try:
            words = line.split(None, 1)
            if cell is None and words and words[0] in SUBCOMMANDS:
                return getattr(self, f"_do_{words[0]}")(words[1] if len(words) > 1 else "")
            options, text = split_line(line)
            if cell is not None:
                if text:
                    raise LLMError(f"unexpected text on the %%llm line: {text!r} (the prompt is the "
                                   "cell body; quote option values that contain spaces)", "UsageError")
                text = cell
            return self._ask(self.parser.parse_args(options), text)
        except LLMNotebookError as exc:
            raise LLMError(str(exc), type(exc).__name__) from None

    # -- prompts -------------------------------------------------------------------------------
    def _ask(self, args: argparse.Namespace, text: str) -> render.Answer:
        namespace = self.shell.user_ns
        if args.out is not None and not args.out.isidentifier():
            raise LLMError(f"--out needs a variable name, not {args.out!r}", "UsageError")
        if not args.no_interpolate:
            text = interpolate(text, namespace)
            args.system = interpolate(args.system, namespace) if args.system else args.system
        attachments = [self._attachment(x) for x in args.attach]
        attachments += [self._typed_attachment(where, kind) for where, kind in args.at]
        if not text.strip() and not attachments:
            raise LLMError("the prompt is empty: write it after %llm or in the cell body, or "
                           "attach something with -a", "UsageError")
        names = args.model + [name.strip() for name in (args.models or "").split(",") if name.strip()]
        if len(names) > 1:
            return self._compare(names, args, text.strip() or None, attachments)
        model = self._model(names[0] if names else None, args.conversation, args.prefer_async)
        response = self._prompt(model, args, text.strip() or None, attachments)
        if args.background:
            return self._background(response, args)
        return self._show(response, args)

    def _prompt(self, model, args: argparse.Namespace, text: str | None, attachments: list):
        """The (not yet started) response of `model`, in the conversation the options name."""
        conversation = self.conversations.for_prompt(
            model, continue_last=args.continue_last, name=args.conversation)
        response = conversation.prompt(
            text, attachments=attachments, system=args.system,
            stream=self.stream and not args.no_stream, key=args.key,
            **{key: _option_value(value) for key, value in args.option})
        self.conversations.remember(conversation)
        if args.no_log:
            response.log_enabled = False
        return response

    def _model(self, name: str | None, conversation_name: str | None, prefer_async: bool = False):
        """The model to prompt: the sync one when there is one, else the async one (with
        `prefer_async`, the other way round)."""
        from ..plugins import registry

        named = self.conversations.named(conversation_name) if conversation_name else None
        if name is None and named is not None:
            return named.model
        entry = registry.entry(name or self.default_model or None)
        if prefer_async:
            return entry.async_model or entry.model
        return entry.model or entry.async_model

    def _chunks(self, response) -> Iterator[str]:
        """The text chunks of `response` as they arrive: async models stream through the runner."""
        from ..responses import AsyncResponse

        if isinstance(response, AsyncResponse):
            from .. import runner

            return runner.iterate(response)
        return iter(response)

    def _show(self, response, args: argparse.Namespace) -> render.Answer:
        throttle = render.Throttle(self.display_interval, self.display_budget)
        view = render.new_view(self.shell, response, throttle, plain=args.format == "text")
        answer, stopped = render.stream(response, self._chunks(response), view, format=args.format)
        if args.out is not None:
            self.shell.user_ns[args.out] = answer.text
        if self.show_usage and not args.no_usage:
            render.show_table(ANSWER_HEADERS, [answer_row(response.to_dict())])
        if isinstance(stopped, KeyboardInterrupt):
            raise LLMError("streaming stopped; the partial answer above is kept", "KeyboardInterrupt")
        if stopped is not None:
            raise LLMError(str(stopped), type(stopped).__name__)
        if args.format == "code":
            self._next_cell(answer.text)
        if args.format == "json" and answer.parsed is None:
            print("The answer is not valid JSON: it is shown as Markdown", file=sys.stderr)
        answer.skip_display_in(self.shell.execution_count)
        return answer

    def _background(self, response, args: argparse.Namespace):
        """Start streaming `response` into this cell and return its handle at once."""
        from . import background

        if not render.in_kernel(self.shell):
            raise LLMError("--background needs a notebook: in a terminal, leave it out", "UsageError")
        if args.format == "code":
            raise LLMError("-f code cannot add a cell from the background: leave out --background",
                           "UsageError")
        count = self.shell.execution_count
        out = getattr(self.shell.displayhook, "prompt_count", count)  # the n of this cell's Out[n]
        waiting = (f"{response.model.model_id} is answering in the background: Out[{out}] is its "
                   "handle; %llm wait waits for it")
        waiting_data = {"text/plain": waiting, "text/markdown": f"_{safe_markdown(waiting)}_"}
        show_usage = self.show_usage and not args.no_usage
        # the note waits in the status display when a usage table will replace it, else in the
        # answer's own display (the first text replaces it): no output is left empty
        answer_display = background.CellDisplay(self.shell, {"text/plain": ""} if show_usage
                                                else waiting_data)
        status = background.CellDisplay(self.shell, waiting_data) if show_usage else None
        throttle = render.Throttle(self.display_interval, self.display_budget)
        view = background.CellView(response, throttle, answer_display, plain=args.format == "text")

        def finish(answer: render.Answer) -> dict[str, str] | None:
            if args.out is not None:
                self.shell.user_ns[args.out] = answer.text
            return (render.table_data(ANSWER_HEADERS, [answer_row(response.to_dict())])
                    if show_usage else None)

        job = background.BackgroundAnswer(response, view, status, format=args.format, finish=finish)
        self.background.append(job)
        job.skip_display_in(count)
        return job

    def _compare(self, names: list[str], args: argparse.Namespace, text: str | None, attachments: list):
        """Ask every model at once and show the answers side by side, with a comparison table."""
        from IPython.display import publish_display_data

        from . import compare

        for given, why in ((args.conversation, "--conversation names one model's conversation: "
                                               "with several models, -c continues each one's last"),
                           (args.background, "--background takes one model"),
                           (args.format in ("code", "json"), f"-f {args.format} takes one model")):
            if given:
                raise LLMError(why, "UsageError")
        models = [self._model(name, None, args.prefer_async) for name in names]
        responses = [self._prompt(model, args, text, attachments) for model in models]
        throttle = render.Throttle(self.display_interval, self.display_budget)
        view = compare.Columns(responses, throttle, in_kernel=render.in_kernel(self.shell),
                               plain=args.format == "text")
        comparison, stopped = compare.side_by_side(responses, view, format=args.format)
        if args.out is not None:
            self.shell.user_ns[args.out] = [answer.text for answer in comparison.answers]
        if self.show_usage and not args.no_usage:
            publish_display_data(*comparison.table())
        if stopped is not None:
            raise LLMError("streaming stopped; the partial answers above are kept", "KeyboardInterrupt")
        for answer in comparison.answers:
            if answer.status == "error":
                print(answer.response.error, file=sys.stderr)
        comparison.skip_display_in(self.shell.execution_count)
        return comparison

    def _next_cell(self, text: str) -> None:
        blocks = code_blocks(text)
        if blocks:
            self.shell.set_next_input("\n\n".join(blocks), replace=False)
        else:
            print("(no code block in the answer: no cell added)")

    # -- attachments -------------------------------------------------------------------------
    def _attachment(self, what: str):
        return resolve_attachment(what, self.shell.user_ns, self.plots, self.max_image_edge)

    def _typed_attachment(self, where: str, kind: str):
        from ..attachments import Attachment

        if where.startswith(("http://", "https://")):
            return Attachment(type=kind, url=where)
        attachment = Attachment.from_object(where, max_edge=None)
        return Attachment(type=kind, path=attachment.path)

    # -- line subcommands ----------------------------------------------------------------------
    def _do_help(self, rest: str) -> None:
        print(self.parser.format_help() + "\n" + _SUBCOMMAND_HELP)

    def _do_models(self, query: str) -> None:
        from ..keys import has_key
        from ..plugins import get_models_with_aliases

        rows = []
        for entry in get_models_with_aliases():
            model = entry.any_model()
            names = " ".join([entry.model_id, *entry.aliases]).lower()
            if query.strip().lower() not in names:
                continue
            kinds = "/".join(k for k, m in (("sync", entry.model), ("async", entry.async_model)) if m)
            key = ("no" if not (model.needs_key or model.key_env_var) else
                   f"{model.needs_key or model.key_env_var}: "
                   f"{'set' if model.key or has_key(model.needs_key, model.key_env_var) else 'not set'}")
            rows.append((entry.model_id, ", ".join(entry.aliases), kinds,
                         ", ".join(sorted(model.attachment_types)) or "none", key))
        render.show_table(("id", "aliases", "kind", "attachment types", "needs key"), rows)

    def _do_default(self, name: str) -> None:
        from ..plugins import get_default_model, set_default_model

        if name.strip():
            set_default_model(name.strip())
            self.default_model = name.strip()
        print(f"Default model: {self.default_model or get_default_model()}")

    def _do_alias(self, rest: str) -> None:
        from ..plugins import set_alias

        words = rest.split()
        if len(words) != 2:
            raise LLMError("usage: %llm alias NAME MODEL_ID", "UsageError")
        set_alias(*words)
        print(f"Alias {words[0]} -> {words[1]}")

    def _do_keys(self, rest: str) -> None:
        from ..keys import set_key, stored_key_names

        words = rest.split()
        if not words:
            print("Stored keys: " + (", ".join(stored_key_names()) or "none"))
            return
        if words[0] != "set" or len(words) != 2:
            raise LLMError("usage: %llm keys set NAME (or %llm keys to list the stored names)",
                           "UsageError")
        value = getpass.getpass(f"Key for {words[1]}: ").strip()
        if not value:
            raise LLMError("no key entered; nothing stored", "UsageError")
        set_key(words[1], value)
        print(f"Stored key {words[1]!r}")

    def _do_usage(self, rest: str) -> None:
        if rest.strip() == "--reset":
            session_usage.reset()
            print("Usage reset")
            return
        if rest.strip():
            raise LLMError("usage: %llm usage [--reset]", "UsageError")
        render.show_table(SESSION_HEADERS, session_usage.rows())

    def _do_logs(self, rest: str) -> None:
        from ..log import logs

        words = rest.split()
        if words and (len(words) != 2 or words[0] != "-n" or not words[1].isdigit()):
            raise LLMError("usage: %llm logs [-n N]", "UsageError")
        count = int(words[1]) if words else 20
        rows = [(row["datetime_utc"][:19], row["model"], row["status"],
                 _shorten(row["prompt"] or ""), _shorten(row["text"] or ""))
                for row in logs(count)]
        render.show_table(("time (UTC)", "model", "status", "prompt", "answer"), rows)

    def _do_wait(self, rest: str) -> None:
        from .. import runner

        if rest.strip():
            raise LLMError("usage: %llm wait", "UsageError")
        jobs = [job for job in self.background if not job.collected]
        self.background = []
        start = time.monotonic()
        try:
            runner.wait([job.handle for job in jobs])
        except KeyboardInterrupt:
            raise LLMError("stopped waiting: the background answers were cancelled; their partial "
                           "answers are kept", "KeyboardInterrupt") from None
        finally:
            for job in jobs:
                job.refresh()
        if not jobs:
            print("No background answers to wait for")
            return
        states = ", ".join(f"{job.response.model.model_id} {job.response.status}" for job in jobs)
        print(f"Waited {time.monotonic() - start:.2f} s for {len(jobs)} background "
              f"answer{'s' if len(jobs) != 1 else ''}: {states}")

    def _do_reset(self, name: str) -> None:
        count = self.conversations.reset(name.strip() or None)
        print(f"Forgot {count} conversation{'s' if count != 1 else ''}")


def _shorten(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


_SUBCOMMAND_HELP = """Line subcommands:
  %llm models [QUERY]      models: id, aliases, sync/async, attachment types, key
  %llm default [ID]        show or set the default model
  %llm alias NAME ID       add an alias
  %llm keys [set NAME]     list stored key names, or store a key (asked for, never echoed)
  %llm usage [--reset]     this session's usage by model, with totals
  %llm logs [-n N]         the newest logged responses
  %llm reset [NAME]        forget the named conversation, or all of them
  %llm wait                wait for the answers still streaming in the background
  %llm help                this help"""

LLMMagics.llm.__doc__ = _prompt_parser().format_help() + "\n" + _SUBCOMMAND_HELP


def load_ipython_extension(ipython) -> None:
    magics = LLMMagics(shell=ipython)
    ipython.register_magics(magics)
    magics.plots.install(ipython)
    ipython._llm_notebook_magics = magics


def unload_ipython_extension(ipython) -> None:
    magics = getattr(ipython, "_llm_notebook_magics", None)
    if magics is None:
        return
    magics.plots.uninstall()
    ipython.magics_manager.magics["line"].pop("llm", None)
    ipython.magics_manager.magics["cell"].pop("llm", None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
    del ipython._llm_notebook_magics
