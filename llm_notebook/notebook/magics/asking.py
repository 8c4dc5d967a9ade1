"""What a prompt cell does once its options are read: ask, show the answer, report how it ended.

One answer streams into its own display (a terminal gets the plain text); several models stream
side by side (`llm_notebook.compare`); `--background` returns a handle at once
(`llm_notebook.in_background`). The Python API does the asking; this module only shows it.

How an answer ends decides what the cell shows: a finished one, its answer and usage table; one
that failed, what arrived (marked) and the error as one line (nothing else when nothing
arrived); an interrupted one, what arrived (marked) and one short line, with the cell ending
normally so the kernel is ready at once.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from .. import render
from ..thumbnails import show_thumbnails
from .errors import LLMError

INTERRUPTED = "Interrupted: the partial answer above is kept"
INTERRUPTED_EARLY = "Interrupted before the model sent any text"
#: Text that starts a fence or an indented block: an answer without any holds no code block.
_MAY_HOLD_CODE = ("```", "~~~", "\n    ", "\n\t")
#: The variable a --schema reference starts with.
_ROOT = re.compile(r"\s*([A-Za-z_]\w*)")
_CODE_BLOCK = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n(.*?)^ {0,3}\1[ \t]*$", re.M | re.S)


def code_blocks(text: str) -> list[str]:
    return [match.group(2).rstrip("\n") for match in _CODE_BLOCK.finditer(text)]


def _chunks(response: Any):
    """The text chunks of `response` as they arrive: async models stream through the runner."""
    from ... import runner

    return runner.iterate(response)


def _throttle(magics: Any) -> render.Throttle:
    return render.Throttle(magics.display_interval, magics.display_budget)


def has_something(answer: Any) -> bool:
    """Whether an answer gets a usage row and a `--out` value: it finished, or said something."""
    return answer.status == "done" or answer.said_anything


def cell_number(shell: Any) -> int:
    """The number of the cell running now, as its `In [n]` shows it."""
    return getattr(shell.displayhook, "prompt_count", shell.execution_count)


def failed(error: BaseException, cell: int) -> LLMError:
    """The one line a cell shows for an answer that ended in `error`."""
    return LLMError(render.failure_line(error, cell), type(error).__name__)


def check_schema_options(args: argparse.Namespace, names: list[str], *, tools: bool) -> None:
    """--schema (and --multi) go with one model asked in the foreground, without tools, its
    answer shown as a table; anything else is one line."""
    for given, why in (
            (args.schema is None, "--multi says the answer is a list of --schema items: give "
                                  "--schema too"),
            (args.format in ("code", "json"), f"--schema shows the answer as a table: leave out "
                                              f"-f {args.format}"),
            (len(names) > 1, "--schema takes one model: ask the others without --schema"),
            (tools, "--schema does not go with tools (-T): ask with the tools first, then ask "
                    "for the structured answer"),
            (args.background, "--schema reads the answer in this cell: leave out --background")):
        if given:
            raise LLMError(why, "UsageError")


def resolve_schema(spec: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema `--schema SPEC` names: the pydantic model class or JSON schema dict the
    notebook holds under that name or attribute path, else SPEC read as llm's schema DSL
    ("name, age int, good bool")."""
    from ...interpolate import InterpolationError, is_reference, resolve
    from ...schemas import SchemaError, as_json_schema

    value: Any = spec
    root = _ROOT.match(spec)
    if spec.isidentifier() and spec[0].isupper() and spec not in namespace:
        # a class's name (capitalised, as classes are) mistyped or not yet defined; a field name
        # alone ("name") is a schema of one field
        raise LLMError(f"--schema {spec}: there is no {spec!r} in the notebook. For a schema of "
                       f"one text field, write --schema \"{spec} str\"", "UsageError")
    try:
        if is_reference(spec) and root and root.group(1) in namespace:
            value = resolve(spec, namespace)
        return as_json_schema(value)
    except (InterpolationError, SchemaError) as exc:
        raise LLMError(f"--schema {spec}: {exc}", "UsageError") from None


class _ReadStructured:
    """A view that checks the finished answer against the schema before its final render, so
    that render is the table of its value (or, when it does not fit, the text as it came)."""

    def __init__(self, view: Any, schema: dict[str, Any], multi: bool) -> None:
        self._view, self._schema, self._multi = view, schema, multi

    def add(self, chunk: str) -> None:
        self._view.add(chunk)

    def finish(self, answer: Any) -> None:
        answer.read_structured(self._schema, multi=self._multi)
        self._view.finish(answer)


def show_answer(magics: Any, response: Any, args: argparse.Namespace, *,
                schema: dict[str, Any] | None = None):
    """Stream one answer into the cell; its Answer is the cell's value. With a `schema`, a
    finished answer is checked against it: its value (`Answer.parsed`) shows as a table and
    is what --out stores; one that does not fit shows as it came, with one line saying why."""
    shell = magics.shell
    show_thumbnails(response.attachments)
    view = render.new_view(shell, response, _throttle(magics), plain=args.format == "text")
    if schema is not None:
        view = _ReadStructured(view, schema, args.multi)
    answer, stopped = render.stream(response, _chunks(response), view, format=args.format)
    structured = schema is not None and answer.status == "done" and answer.schema_error is None
    if args.out is not None and has_something(answer):
        shell.user_ns[args.out] = answer.parsed if structured else answer.text
    if magics.show_usage and not args.no_usage and has_something(answer):
        from ...usage import answer_table

        render.show_table_data(answer_table(response.to_dict(), answer.cost()))
    if isinstance(stopped, KeyboardInterrupt):
        print(INTERRUPTED if answer.said_anything else INTERRUPTED_EARLY)
    elif stopped is not None:
        raise failed(stopped, cell_number(shell))
    elif schema is not None:
        if answer.schema_error is not None:
            print(answer.schema_error, file=sys.stderr)
    elif args.format == "code":
        next_cell(shell, answer.text)
    elif args.format == "json" and answer.parsed is None:
        print("The answer is not valid JSON: it is shown as Markdown", file=sys.stderr)
    elif args.format in ("markdown", "text") and render.in_kernel(shell):
        show_code_actions(answer.text)
    answer.skip_display_in(shell.execution_count)
    return answer


def show_code_actions(text: str) -> None:
    """Copy and Insert below for the code blocks of a finished answer (the widgets load only
    for an answer that may hold one)."""
    if not any(mark in text for mark in _MAY_HOLD_CODE):
        return
    from IPython.display import display

    from ..widgets import code_actions

    actions = code_actions(text)
    if actions is not None:
        display(actions)


def show_previews(responses: list[Any]):
    """`--dry-run`: what each response would send and cost; nothing is sent. One preview is the
    cell's value (`Out[n].check(0.01)`); several are shown one under the other."""
    from IPython.display import display

    from ...request_preview import preview

    previews = [preview(response) for response in responses]
    if len(previews) == 1:
        return previews[0]
    for shown in previews:
        display(shown)
    return None


def next_cell(shell: Any, text: str) -> None:
    blocks = code_blocks(text)
    if blocks:
        shell.set_next_input("\n\n".join(blocks), replace=False)
    else:
        print("(no code block in the answer: no cell added)")


def start_background(magics: Any, response: Any, args: argparse.Namespace):
    """Start streaming `response` into this cell and return its handle at once."""
    from ..background import BackgroundAnswer

    shell = magics.shell
    if not render.in_kernel(shell):
        raise LLMError("--background needs a notebook: in a terminal, leave it out", "UsageError")
    if args.format == "code":
        raise LLMError("-f code cannot add a cell from the background: leave out --background",
                       "UsageError")

    def store(answer) -> None:
        if args.out is not None and has_something(answer):
            shell.user_ns[args.out] = answer.text

    show_thumbnails(response.attachments)
    job = BackgroundAnswer(response, shell=shell, format=args.format,
                           show_usage=magics.show_usage and not args.no_usage,
                           throttle=_throttle(magics), on_finish=store)
    job.skip_display_in(shell.execution_count)
    return job


def show_comparison(magics: Any, names: list[str], args: argparse.Namespace, text: str | None,
                    attachments: list, options: Any):
    """Ask every model at once and show the answers side by side, with a comparison table."""
    from IPython.display import publish_display_data

    from ...comparison import prepare
    from ..compare import Columns

    for given, why in ((args.conversation, "--conversation names one model's conversation: "
                                           "with several models, -c continues each one's last"),
                       (args.background, "--background takes one model"),
                       (args.format in ("code", "json"), f"-f {args.format} takes one model")):
        if given:
            raise LLMError(why, "UsageError")
    shell = magics.shell
    comparison = prepare(text, names, system=args.system, attachments=attachments,
                         stream=magics.stream and not args.no_stream, key=args.key,
                         continue_last=args.continue_last, prefer_async=args.prefer_async,
                         log=not args.no_log, format=args.format,
                         hide_reasoning=args.hide_reasoning, model_options=options.own,
                         remember=not args.dry_run, **options.shared)
    if args.dry_run:
        return show_previews(comparison.responses)
    show_thumbnails(attachments)
    view = Columns(comparison.responses, _throttle(magics), in_kernel=render.in_kernel(shell),
                   plain=args.format == "text")
    interrupted = comparison.stream(view.add)
    view.finish(comparison.answers)
    if args.out is not None:
        shell.user_ns[args.out] = [answer.text for answer in comparison.answers]
    if magics.show_usage and not args.no_usage:
        publish_display_data(*comparison.table())
    if interrupted:
        print("Interrupted: the partial answers above are kept")
    comparison.skip_display_in(shell.execution_count)
    return comparison

