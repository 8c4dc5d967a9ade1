"""`%%llm -T f -T g`: a prompt with tools from the notebook, run as a chain and shown as it goes.

The tools are the notebook's functions, Toolbox instances and Tool objects, named with `-T` (or
`--tools f,g`). The chain runs on the package's runner (see `chain_run`); its answer display
shows each round's text and a block per tool call, updated while the call runs.

`--approve` asks before each call. Where a person can answer (the frontend takes input, as
JupyterLab, Notebook 7 and VS Code do), an approval widget in the cell asks; a kernel hears a
widget's click only while no cell runs, so such a chain runs in the background of its cell (the
cell's value is its handle). Elsewhere (a terminal) a plain prompt asks; where there is no stdin
at all (a notebook run headless), every call is denied and one line says why.
"""

from __future__ import annotations

import argparse
import queue
import sys
from typing import Any

from .. import render
from .arguments import tool_names
from .errors import LLMError

#: What the waiting note says while a chain runs in the background of its cell.
_IN_BACKGROUND = ("{model} is running with tools in the background: Out[{out}] is its handle "
                  "(Out[{out}].result() waits for it){approving}")
_APPROVING = "; approve each call above (a kernel hears the buttons only between cells)"


def resolve_tools(names: list[str], namespace: dict[str, Any]) -> list[Any]:
    """The tools `names` give: variables (or attribute paths) holding functions, Toolbox
    instances or Tool objects; anything else is one line naming what it is."""
    from ...tools import ServerSideTool, Tool, Toolbox, as_tools

    found = []
    for name in names:
        head, *attributes = name.split(".")
        if head not in namespace:
            raise LLMError(f"-T {name}: there is no variable {head!r} in the notebook; define the "
                           "function (or toolbox) first", "UsageError")
        value = namespace[head]
        for attribute in attributes:
            if not hasattr(value, attribute):
                raise LLMError(f"-T {name}: {type(value).__name__} has no attribute "
                               f"{attribute!r}", "UsageError")
            value = getattr(value, attribute)
        is_toolbox_class = isinstance(value, type) and issubclass(value, Toolbox)
        if not (isinstance(value, (Tool, ServerSideTool, Toolbox)) or is_toolbox_class
                or (callable(value) and not isinstance(value, type))):
            raise LLMError(f"-T {name}: {name} is a {type(value).__name__}, not a function, a "
                           "Toolbox instance or a Tool", "UsageError")
        found.append(value)
    try:
        as_tools(found)
    except (TypeError, ValueError) as exc:
        raise LLMError(f"-T: {exc}", "UsageError") from None
    return found


def frontend_takes_input(shell: Any) -> bool:
    """Whether the frontend running this cell lets the kernel ask for input (a person is there:
    JupyterLab, Notebook 7, VS Code), as the cell's execute request says; headless runners such
    as nbclient and papermill do not."""
    kernel = getattr(shell, "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)
    request = get_parent() if callable(get_parent) else {}
    content = request.get("content") if isinstance(request, dict) else None
    return bool(isinstance(content, dict) and content.get("allow_stdin"))


def _checked(args: argparse.Namespace, names: list[str]) -> None:
    for given, why in ((len(names) > 1, "tools take one model: ask the others without -T"),
                       (args.format == "code" and args.background,
                        "-f code cannot add a cell from the background: leave out --background"),
                       (args.chain_limit is not None and args.chain_limit < 1,
                        f"--chain-limit takes the rounds of tool calls to allow, 1 or more, not "
                        f"{args.chain_limit}")):
        if given:
            raise LLMError(why, "UsageError")


def ask_with_tools(magics: Any, args: argparse.Namespace, names: list[str], text: str | None,
                   attachments: list, options: Any):
    """Run the chain the cell asks for; its answer (or, in the background, its handle)."""
    from ...tool_blocks import CallLog
    from ..approval import Approvals
    from ..chain_run import ChainHooks

    _checked(args, names)
    shell = magics.shell
    tools = resolve_tools(tool_names(args), shell.user_ns)
    model, conversation = magics.conversation_for(names[0] if names else None, args)
    if not model.supports_tools:
        raise LLMError(f"{model.model_id} does not call tools: leave out -T, or ask a model that "
                       "does (echo does, offline)", "UsageError")
    if args.dry_run:  # the first round's request, with the tools' definitions; nothing runs
        from .asking import show_previews

        return show_previews([conversation.prompt(
            text, tools=tools, attachments=attachments, system=args.system, key=args.key,
            hide_reasoning=args.hide_reasoning,
            **options.for_one(names[0] if names else None, model))])
    in_kernel = render.in_kernel(shell)
    use_widget = args.approve and in_kernel and frontend_takes_input(shell)
    if args.approve and args.background and not use_widget:
        raise LLMError("--approve --background needs a frontend that can ask (JupyterLab, "
                       "Notebook 7, VS Code): leave out --background", "UsageError")
    calls = CallLog()
    questions: queue.SimpleQueue = queue.SimpleQueue()
    approval_view = None
    if use_widget:
        from ..widgets.approval_widget import ApprovalView

        approval_view = ApprovalView()

        def ask(request):
            approval_view.ask(request)
            questions.put(request)
    else:
        ask = questions.put
    approvals = Approvals(ask) if args.approve else None
    hooks = ChainHooks(calls, approvals)
    chain = conversation.chain(
        text, tools=tools, chain_limit=args.chain_limit, **hooks.hooks_for(model),
        attachments=attachments, system=args.system,
        stream=magics.stream and not args.no_stream, key=args.key,
        hide_reasoning=args.hide_reasoning, **options.for_one(names[0] if names else None, model))
    magics.conversations.remember(conversation)
    shown = _Shown(magics, args, chain, calls, approval_view, attachments)
    if args.background or use_widget:
        return shown.in_background(questions, approvals)
    return shown.in_foreground(questions, approvals)


class _Shown:
    """The displays of one chain in its cell, and how the cell ends."""

    def __init__(self, magics: Any, args: argparse.Namespace, chain: Any, calls: Any,
                 approval_view: Any, attachments: list) -> None:
        from ...answers import ChainAnswer
        from ..background import CellDisplay
        from ..thumbnails import show_thumbnails

        self.magics, self.args, self.shell = magics, args, magics.shell
        self.answer = ChainAnswer(chain, calls, format=args.format)
        show_thumbnails(attachments)
        self.displays: list[Any] = []
        if render.in_kernel(self.shell):
            answer_display = CellDisplay(self.shell, {"text/plain": ""})
            self.displays.append(answer_display)
            self.view: Any = render.ChainView(
                self.answer, render.Throttle(magics.display_interval, magics.display_budget),
                answer_display.update, plain=args.format == "text")
        else:
            self.view = render.TerminalChainView(self.answer)
        calls.on_change = self.view.changed
        self.approval_view = approval_view
        if approval_view is not None:
            from IPython.display import display

            display(approval_view)

    def _run(self, questions: queue.SimpleQueue, approvals: Any, on_end: Any = None):
        from ..chain_run import ChainRun

        def on_round(response: Any) -> None:
            if self.args.no_log:
                response.log_enabled = False

        run = ChainRun(self.answer.chain, self.answer, self.view, questions=questions,
                       on_round=on_round, on_stop=approvals.deny_open if approvals else None,
                       on_end=on_end)
        run.displays = self.displays
        return run

    def _store(self, answer: Any) -> None:
        from .asking import has_something

        if self.args.out is not None and has_something(answer):
            self.shell.user_ns[self.args.out] = answer.text

    def _usage_data(self, answer: Any) -> dict[str, str] | None:
        from ...usage import answer_table
        from .asking import has_something

        if not (self.magics.show_usage and not self.args.no_usage and has_something(answer)):
            return None
        return answer_table(answer.usage_summary(), answer.cost())

    def in_foreground(self, questions: queue.SimpleQueue, approvals: Any):
        from ..approval import PromptAsker
        from .asking import INTERRUPTED, INTERRUPTED_EARLY

        run = self._run(questions, approvals)
        interrupted = False
        try:
            run.answer_questions(PromptAsker())
        except KeyboardInterrupt:
            interrupted = True
        answer = run.answer
        self._store(answer)
        usage = self._usage_data(answer)
        if usage is not None:
            render.show_table_data(usage)
        if interrupted:
            print(INTERRUPTED if answer.said_anything else INTERRUPTED_EARLY)
        elif run.error is not None:
            from .asking import cell_number, failed

            raise failed(run.error, cell_number(self.shell))
        elif self.args.format == "code":
            from .asking import next_cell

            next_cell(self.shell, answer.final_text)
        elif self.args.format == "json" and answer.parsed is None:
            print("The answer is not valid JSON: it is shown as Markdown", file=sys.stderr)
        answer.skip_display_in(self.shell.execution_count)
        return answer

    def in_background(self, questions: queue.SimpleQueue, approvals: Any):
        from ...markdown import escape_inline
        from ..background import CellDisplay, track
        from .asking import cell_number

        if not render.in_kernel(self.shell):
            raise LLMError("--background needs a notebook: in a terminal, leave it out",
                           "UsageError")
        out = cell_number(self.shell)
        note = _IN_BACKGROUND.format(model=self.answer.chain.conversation.model_id, out=out,
                                     approving=_APPROVING if self.approval_view else "")
        status = CellDisplay(self.shell, {"text/plain": note, "text/markdown": escape_inline(note)})
        self.displays.append(status)

        def on_end(answer: Any, error: BaseException | None) -> None:
            if self.approval_view is not None:
                self.approval_view.close_open()
            self._store(answer)
            line = ""
            if error is not None:
                line = f"{type(error).__name__}: {render.failure_line(error, out)}"
            elif answer.status == "interrupted":
                line = "Stopped: what was done above is kept"
            usage = self._usage_data(answer) or {"text/plain": "", "text/markdown": ""}
            shown = {"text/plain": line, "text/markdown": escape_inline(line)}
            status.update({mime: "\n\n".join([shown[mime], usage[mime]]).strip()
                           for mime in ("text/plain", "text/markdown")})

        run = self._run(questions, approvals, on_end)
        run.skip_display_in(self.shell.execution_count)
        track(run)  # %llm wait waits for it too
        return run
