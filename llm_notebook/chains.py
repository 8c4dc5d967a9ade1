"""A chain: prompt a model with tools, run the calls it asks for, send the results back, until
it answers without asking for more (or `chain_limit` rounds of calls have run).

Every round is an ordinary response in one conversation, so each is streamed, logged and counted
like any other; the chain sums their usage and keeps every tool result, with its duration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from .responses import Usage
from .tool_execution import AfterCall, BeforeCall, aexecute_tool_calls, execute_tool_calls
from .tools import ToolResult, as_tools

__all__ = ["AsyncChainResponse", "ChainResponse", "DEFAULT_CHAIN_LIMIT"]

#: Rounds of tool calls a chain runs before it stops asking the model.
DEFAULT_CHAIN_LIMIT = 10
#: What every round carries on from the first prompt (attachments and the text do not repeat).
_CARRIED = ("schema", "hide_reasoning", "stream", "key")


def sum_usage(usages: list[Usage]) -> Usage:
    """Token counts added up; None where no response reported that count."""
    inputs = [u.input for u in usages if u.input is not None]
    outputs = [u.output for u in usages if u.output is not None]
    details: dict[str, Any] = {}
    for usage in usages:
        for name, value in (usage.details or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                details[name] = details.get(name, 0) + value
    return Usage(input=sum(inputs) if inputs else None, output=sum(outputs) if outputs else None,
                 details=details or None)


class _BaseChain:
    """What sync and async chains share: the rounds so far, the tool results, why it stopped."""

    def __init__(self, conversation: Any, prompt: str | None, *, tools: Any,
                 before_call: BeforeCall | None, after_call: AfterCall | None,
                 chain_limit: int | None, arguments: dict[str, Any]) -> None:
        self.conversation = conversation
        self.tools = as_tools(tools)
        self.before_call = before_call
        self.after_call = after_call
        self.chain_limit = DEFAULT_CHAIN_LIMIT if chain_limit is None else chain_limit
        self._prompt = prompt
        self._arguments = arguments
        self._options = {k: v for k, v in arguments.items() if k not in _PROMPT_FIELDS}
        self._made: list[Any] = []
        #: Every tool call's result, in the order they ran.
        self.tool_results: list[ToolResult] = []
        #: Why the chain ended before the model stopped asking for tools, if it did.
        self.stopped: str | None = None

    def _first(self) -> Any:
        response = self.conversation.prompt(self._prompt, tools=self.tools, **self._arguments)
        self._made.append(response)
        return response

    def _wants_more(self, response: Any, rounds: int) -> list[Any]:
        """The calls to run after `response` (none: the chain is over)."""
        if response.status != "done":
            return []
        calls = response.tool_calls_so_far()
        if calls and rounds >= self.chain_limit:
            self.stopped = (f"stopped after {rounds} rounds of tool calls (chain_limit="
                            f"{self.chain_limit}); {len(calls)} call(s) the model asked for "
                            "last were not run")
            return []
        return calls

    def _next(self, results: list[ToolResult]) -> Any:
        self.tool_results.extend(results)
        carried = {k: v for k, v in self._arguments.items() if k in _CARRIED}
        response = self.conversation.prompt(None, tools=self.tools, tool_results=results,
                                            **carried, **self._options)
        self._made.append(response)
        return response

    def responses_so_far(self) -> list[Any]:
        return list(self._made)

    def usage_so_far(self) -> Usage:
        return sum_usage([r.recorded_usage() for r in self._made])

    def text_so_far(self) -> str:
        return "".join(r.text_so_far() for r in self._made)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.conversation.model_id!r} rounds={len(self._made)} "
                f"tool calls={len(self.tool_results)}>")


#: Prompt arguments that are not model options.
_PROMPT_FIELDS = frozenset({"attachments", "system", "schema", "tool_results", "messages",
                            "hide_reasoning", "fragments", "system_fragments", "stream", "key"})


class ChainResponse(_BaseChain):
    """A sync chain: iterate it for the text of every round as it streams, or call `.text()`."""

    def responses(self) -> Iterator[Any]:
        """Each round's response, made when the previous one has finished and its calls ran."""
        if self._made:
            yield from list(self._made)
            return
        response = self._first()
        rounds = 0
        while True:
            yield response
            response.text()  # finished, whether or not the caller read it
            calls = self._wants_more(response, rounds)
            if not calls:
                return
            rounds += 1
            results = execute_tool_calls(calls, self.tools, before_call=self.before_call,
                                         after_call=self.after_call)
            response = self._next(results)

    def __iter__(self) -> Iterator[str]:
        for response in self.responses():
            yield from response

    def text(self) -> str:
        for _ in self.responses():
            pass
        return self.text_so_far()

    def usage(self) -> Usage:
        self.text()
        return self.usage_so_far()

    def tool_calls(self) -> list[Any]:
        """Every call the model asked for, across the rounds."""
        self.text()
        return [call for r in self._made for call in r.tool_calls_so_far()]

    def __str__(self) -> str:
        return self.text()


class AsyncChainResponse(_BaseChain):
    """An async chain: `async for` its text, `await chain.text()`; tool calls run concurrently."""

    async def responses(self) -> AsyncIterator[Any]:
        if self._made:
            for response in list(self._made):
                yield response
            return
        response = self._first()
        rounds = 0
        while True:
            yield response
            await response.text()
            calls = self._wants_more(response, rounds)
            if not calls:
                return
            rounds += 1
            results = await aexecute_tool_calls(calls, self.tools, before_call=self.before_call,
                                                after_call=self.after_call)
            response = self._next(results)

    async def __aiter__(self) -> AsyncIterator[str]:
        async for response in self.responses():
            async for chunk in response:
                yield chunk

    async def text(self) -> str:
        async for _ in self.responses():
            pass
        return self.text_so_far()

    async def usage(self) -> Usage:
        await self.text()
        return self.usage_so_far()

    async def tool_calls(self) -> list[Any]:
        await self.text()
        return [call for r in self._made for call in r.tool_calls_so_far()]

    def __await__(self):
        return self.text().__await__()
