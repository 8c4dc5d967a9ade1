"""Tools a model may call: the `llm` library's types (`Tool`, `Toolbox`, `ToolCall`, `ToolResult`,
`ServerSideTool`) with its names and fields, so plugins that support tools port unchanged.

A plain function is a tool: its name, docstring and type hints make the schema the model sees.
A `Toolbox` subclass is a set of tools: each public method, named `ClassName_method`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import secrets
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .toolboxes import dataframe  # noqa: F401  (llm_notebook.tools.dataframe: a table's toolbox)

__all__ = ["CancelToolCall", "ServerSideTool", "Tool", "ToolCall", "ToolOutput", "ToolResult",
           "Toolbox", "as_tools", "new_tool_call_id"]

#: A parameter of this name receives the ToolCall itself; the model never sees it.
TOOL_CALL_PARAMETER = "llm_tool_call"


def _input_schema(function: Callable, name: str) -> dict[str, Any]:
    """The JSON schema of a function's parameters, from its signature and type hints."""
    from pydantic import create_model

    try:
        hints = typing.get_type_hints(function, include_extras=True)  # Annotated constraints kept
    except Exception:  # unresolvable annotations: treat those parameters as text
        hints = {}
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name in ("self", TOOL_CALL_PARAMETER) or parameter.kind in (
                inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(parameter.name, parameter.annotation)
        if annotation is inspect.Parameter.empty or isinstance(annotation, str):
            annotation = str  # no hint, or one that names what cannot be found: text
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    return _without_titles(create_model(f"{name}_arguments", **fields).model_json_schema())


def _without_titles(schema: Any) -> Any:
    """pydantic's generated titles add nothing for a model but tokens."""
    if isinstance(schema, dict):
        return {k: _without_titles(v) for k, v in schema.items()
                if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [_without_titles(v) for v in schema]
    return schema


@dataclass
class Tool:
    """A function a model may call: its name, description and the JSON schema of its arguments."""

    name: str
    description: str | None = None
    input_schema: dict = field(default_factory=dict)
    implementation: Callable | None = None
    plugin: str | None = None

    def __post_init__(self) -> None:
        from .schemas import as_json_schema

        self.input_schema = as_json_schema(self.input_schema) if self.input_schema else {}

    def hash(self) -> str:
        """Identifies the definition (not the implementation), e.g. for the answer cache."""
        definition = {"name": self.name, "description": self.description,
                      "input_schema": self.input_schema}
        if self.plugin:
            definition["plugin"] = self.plugin
        return hashlib.sha256(json.dumps(definition, sort_keys=False).encode()).hexdigest()

    @classmethod
    def function(cls, function: Callable, name: str | None = None,
                 description: str | None = None) -> Tool:
        """A tool from a function (sync or async): name, docstring and type hints."""
        if not name and getattr(function, "__name__", "<lambda>") == "<lambda>":
            raise ValueError("A lambda has no name to call it by: use Tool.function(f, name=...)")
        name = name or function.__name__
        return cls(name=name, description=description or inspect.getdoc(function) or None,
                   input_schema=_input_schema(function, name), implementation=function)


class ServerSideTool:
    """A tool the provider runs itself (a web search, code execution). The package passes it to
    the model and never executes it; provider plugins subclass it, or it wraps a raw `spec`."""

    name: ClassVar[str] = "server_side_tool"
    plugin: ClassVar[str | None] = None
    implementation: ClassVar[None] = None
    input_schema: ClassVar[dict] = {}

    def __init__(self, spec: dict | None = None) -> None:
        self.spec = spec

    @property
    def description(self) -> str | None:
        return inspect.getdoc(type(self))

    def tool_spec(self, model: Any) -> dict:
        """The provider's specification of this tool, for the request."""
        if self.spec is None:
            raise TypeError(f"{type(self).__name__} defines no raw provider tool spec")
        return self.spec

    def prepare_request(self, model: Any, kwargs: dict) -> None:
        """Add other request fields this tool needs (merge; do not replace)."""

    def hash(self) -> str:
        definition = {"name": self.name, "description": self.description,
                      "input_schema": self.input_schema, "server_side": True,
                      "spec": self.spec if isinstance(self.spec, dict) else None}
        return hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).hexdigest()


class Toolbox:
    """A set of tools with shared state: each public method is a tool named `ClassName_method`."""

    name: str | None = None
    _not_tools: ClassVar[frozenset[str]] = frozenset(
        {"tools", "add_tool", "method_tools", "prepare", "prepare_async"})

    def _extra(self) -> list[Tool]:
        return self.__dict__.setdefault("_extra_tools", [])

    def tools(self) -> Iterable[Tool]:
        """A Tool per public method (bound to this instance), then those added with add_tool()."""
        prefix = self.name or type(self).__name__
        for attribute in dir(self):
            if attribute.startswith("_") or attribute in self._not_tools:
                continue
            method = getattr(self, attribute)
            if callable(method):
                tool = Tool.function(method, name=f"{prefix}_{attribute}")
                tool.plugin = getattr(self, "plugin", None)
                yield tool
        yield from self._extra()

    def add_tool(self, tool_or_function: Tool | Callable[..., Any], pass_self: bool = False) -> None:
        """Add one more tool; `pass_self` binds a function to this toolbox as a method."""
        if isinstance(tool_or_function, Tool):
            self._extra().append(tool_or_function)
        elif callable(tool_or_function):
            function = (functools.partial(tool_or_function, self) if pass_self
                        else tool_or_function)
            if pass_self:
                functools.update_wrapper(function, tool_or_function)
            self._extra().append(Tool.function(function))
        else:
            raise TypeError("add_tool() takes a Tool or a function")

    def prepare(self) -> None:
        """Override for setup (and add_tool() calls) before the toolbox is first used."""

    async def prepare_async(self) -> None:
        """The async twin of prepare()."""


def new_tool_call_id() -> str:
    """A unique `tc_` id, for providers that send tool calls without one."""
    return f"tc_{secrets.token_hex(12)}"


@dataclass
class ToolCall:
    """The model asking for `name` to be called with `arguments`."""

    name: str
    arguments: dict
    tool_call_id: str | None = None


@dataclass
class ToolResult:
    """What a tool call returned (`output` as text), or the exception it raised; `duration_ms`
    is how long the call took (None when it was never run: cancelled, or no such tool)."""

    name: str
    output: str
    attachments: list[Any] = field(default_factory=list)
    tool_call_id: str | None = None
    instance: Toolbox | None = None
    exception: BaseException | None = None
    duration_ms: int | None = None


@dataclass
class ToolOutput:
    """A tool's return value with attachments (images, files) for the model."""

    output: str | dict | list | bool | int | float | None = None
    attachments: list[Any] = field(default_factory=list)


class CancelToolCall(Exception):
    """Raised by a `before_call` hook to refuse a call; the model is told it was cancelled."""


def as_tools(tools: Iterable[Any] | None) -> list[Tool | ServerSideTool]:
    """Tools, toolboxes and plain functions as a flat list of Tool / ServerSideTool."""
    flat: list[Tool | ServerSideTool] = []
    for tool in tools or ():
        if isinstance(tool, (Tool, ServerSideTool)):
            flat.append(tool)
        elif isinstance(tool, Toolbox):
            flat.extend(tool.tools())
        elif isinstance(tool, type) and issubclass(tool, Toolbox):
            raise TypeError(f"{tool.__name__} is a Toolbox class: pass an instance, "
                            f"{tool.__name__}()")
        elif callable(tool):
            flat.append(Tool.function(tool))
        else:
            raise TypeError(f"Not a tool: {tool!r} (give functions, Toolbox instances or Tool "
                            "objects)")
    names = [tool.name for tool in flat]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"Two tools are named {', '.join(repeated)}: each tool needs its own name")
    return flat


def partition_tools(model: Any, tools: Iterable[Any]) -> tuple[list[Tool], list[ServerSideTool]]:
    """Function tools and server-side tools; a server-side tool the model does not claim is an
    error naming it (as llm's `models._partition_tools`)."""
    functions: list[Tool] = []
    server_side: list[ServerSideTool] = []
    claimed = tuple(getattr(model, "supported_server_side_tools", ()) or ())
    for tool in tools:
        if not isinstance(tool, ServerSideTool):
            functions.append(tool)
            continue
        # ServerSideTool itself claims raw-spec instances only, not every provider's subclass
        if not any(type(tool) is kind if kind is ServerSideTool else isinstance(tool, kind)
                   for kind in claimed):
            raise ValueError(f"Model {model.model_id!r} does not support the server-side tool "
                             f"{tool.name!r}")
        server_side.append(tool)
    return functions, server_side
