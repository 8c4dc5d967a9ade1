"""Running the tool calls a model asked for, the way llm runs them.

Each call goes through `before_call(tool, tool_call)` (which may raise `CancelToolCall`; `tool` is
None for a tool that was not offered), then the tool, then `after_call(tool, tool_call, result)`.
Whatever goes wrong becomes the result the model reads ("Error: ...", "Cancelled: ..."), never an
exception in the notebook: the model can then explain or try again. Results that are not text are
sent as JSON. Sync chains run the calls one after another; async chains run them at once.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from .tools import TOOL_CALL_PARAMETER, CancelToolCall, Tool, ToolCall, ToolOutput, ToolResult, Toolbox

__all__ = ["aexecute_tool_calls", "execute_tool_calls"]

BeforeCall = Callable[[Tool | None, ToolCall], Any]
AfterCall = Callable[[Tool, ToolCall, ToolResult], Any]


def _by_name(tools: Iterable[Any]) -> dict[str, Tool]:
    return {tool.name: tool for tool in tools if isinstance(tool, Tool)}


def _refusal(call: ToolCall, tool: Tool | None) -> ToolResult | None:
    """The result for a call that cannot run at all, or None when it can."""
    if tool is None:
        return ToolResult(name=call.name, output=f"Error: there is no tool called {call.name!r}",
                          tool_call_id=call.tool_call_id,
                          exception=KeyError(f"no tool called {call.name!r}"))
    if "_invalid_json" in call.arguments:
        return ToolResult(name=call.name, tool_call_id=call.tool_call_id,
                          output=f"Error: the arguments were not a JSON object: "
                                 f"{call.arguments['_invalid_json'][:200]}",
                          exception=ValueError("arguments not a JSON object"))
    if tool.implementation is None:
        return ToolResult(name=call.name, output=f"Error: tool {call.name!r} has no implementation",
                          tool_call_id=call.tool_call_id,
                          exception=ValueError("no implementation"))
    return None


def _cancelled(call: ToolCall, exc: CancelToolCall) -> ToolResult:
    return ToolResult(name=call.name, output=f"Cancelled: {exc}" if str(exc) else "Cancelled",
                      tool_call_id=call.tool_call_id, exception=exc)


def _arguments(tool: Tool, call: ToolCall) -> dict[str, Any]:
    arguments = dict(call.arguments)
    try:
        parameters = inspect.signature(tool.implementation).parameters
    except (TypeError, ValueError):
        return arguments
    if TOOL_CALL_PARAMETER in parameters:
        arguments[TOOL_CALL_PARAMETER] = call
    return arguments


def _result(call: ToolCall, tool: Tool, value: Any, error: Exception | None,
            started: float) -> ToolResult:
    """A ToolResult from what the tool returned (or raised)."""
    attachments: list[Any] = []
    if error is not None:
        output = f"Error: {type(error).__name__}: {error}" if not str(error) else f"Error: {error}"
    else:
        if isinstance(value, ToolOutput):
            attachments, value = list(value.attachments), value.output
        output = value if isinstance(value, str) else json.dumps(value, default=repr)
    instance = getattr(tool.implementation, "__self__", None)
    return ToolResult(name=call.name, output=output, attachments=attachments,
                      tool_call_id=call.tool_call_id,
                      instance=instance if isinstance(instance, Toolbox) else None,
                      exception=error, duration_ms=int((time.monotonic() - started) * 1000))


def _prepare_toolboxes(tools: dict[str, Tool]) -> list[Toolbox]:
    """Toolboxes whose prepare() has not run yet (it runs once, before their first call)."""
    boxes = []
    for tool in tools.values():
        box = getattr(tool.implementation, "__self__", None)
        if isinstance(box, Toolbox) and not box.__dict__.get("_prepared") and box not in boxes:
            box.__dict__["_prepared"] = True
            boxes.append(box)
    return boxes


def execute_tool_calls(calls: Iterable[ToolCall], tools: Iterable[Any], *,
                       before_call: BeforeCall | None = None,
                       after_call: AfterCall | None = None) -> list[ToolResult]:
    """Run `calls` one after another; async tools run on the package's background loop."""
    from . import runner

    offered = _by_name(tools)
    for box in _prepare_toolboxes(offered):
        box.prepare()
    results = []
    for call in calls:
        tool = offered.get(call.name)
        try:
            if before_call is not None:
                _sync_hook(before_call(tool, call), "before_call")
        except CancelToolCall as exc:
            results.append(_cancelled(call, exc))
            continue
        refused = _refusal(call, tool)
        if refused is not None:
            results.append(refused)
            continue
        started, value, error = time.monotonic(), None, None
        try:
            value = tool.implementation(**_arguments(tool, call))
            if inspect.isawaitable(value):
                value = runner.run(_awaited(value))
        except Exception as exc:  # the model reads the error and may try again
            error = exc
        result = _result(call, tool, value, error, started)
        if after_call is not None:
            _sync_hook(after_call(tool, call, result), "after_call")
        results.append(result)
    return results


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _sync_hook(returned: Any, name: str) -> None:
    if inspect.isawaitable(returned):
        if inspect.iscoroutine(returned):
            returned.close()
        raise TypeError(f"an async {name} hook needs an async model's chain: use a plain "
                        f"function here")


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def aexecute_tool_calls(calls: Iterable[ToolCall], tools: Iterable[Any], *,
                              before_call: BeforeCall | None = None,
                              after_call: AfterCall | None = None) -> list[ToolResult]:
    """Run `calls` at once; sync tools in worker threads, so none blocks the loop or another.
    Hooks may be plain or async functions. Results keep the order of the calls."""
    offered = _by_name(tools)
    for box in _prepare_toolboxes(offered):
        await box.prepare_async()

    async def one(call: ToolCall) -> ToolResult:
        tool = offered.get(call.name)
        try:
            if before_call is not None:
                await _maybe_await(before_call(tool, call))
        except CancelToolCall as exc:
            return _cancelled(call, exc)
        refused = _refusal(call, tool)
        if refused is not None:
            return refused
        started, value, error = time.monotonic(), None, None
        try:
            if inspect.iscoroutinefunction(tool.implementation):
                value = await tool.implementation(**_arguments(tool, call))
            else:
                value = await asyncio.to_thread(tool.implementation, **_arguments(tool, call))
                value = await _maybe_await(value)
        except Exception as exc:
            error = exc
        result = _result(call, tool, value, error, started)
        if after_call is not None:
            await _maybe_await(after_call(tool, call, result))
        return result

    return list(await asyncio.gather(*(one(call) for call in calls)))
