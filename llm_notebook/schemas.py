"""Schemas for structured output: what `schema=` accepts, always handed to models as a dict.

`schema=` takes a pydantic model class, a JSON schema dict, or llm's concise DSL:
`"name, age int, bio: a one-sentence bio"` (fields separated by commas or new lines; a type of
str, int, float or bool after the name, str when left out; a description after a colon).

`json_schema_validator(schema)` checks parsed JSON against such a schema, with pydantic, and
says what does not match in lines a person (or a model asked again) can act on.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections.abc import Callable
from typing import Any

from .errors import LLMNotebookError

__all__ = ["SchemaError", "SchemaMismatch", "SchemaWarning", "as_json_schema",
           "json_schema_validator", "multi_schema", "problems_line", "schema_dsl",
           "validation_problems"]

_DSL_TYPES = {"str": "string", "string": "string", "int": "integer", "integer": "integer",
              "float": "number", "number": "number", "bool": "boolean", "boolean": "boolean"}
_DSL_FIELD = re.compile(r"^\s*([A-Za-z_][\w-]*)(?:\s+([A-Za-z]+))?\s*(?::\s*(.*?))?\s*$", re.S)


class SchemaError(LLMNotebookError, ValueError):
    """A schema that cannot be used (not a dict, a pydantic model or the DSL)."""


def schema_dsl(text: str, multi: bool = False) -> dict[str, Any]:
    """The JSON schema the concise DSL describes; `multi` wraps it as a list under "items"."""
    separator = "\n" if "\n" in text.strip() else ","
    properties: dict[str, Any] = {}
    for piece in (p for p in text.split(separator) if p.strip()):
        match = _DSL_FIELD.match(piece)
        if match is None:
            raise SchemaError(f"Cannot read the schema field {piece.strip()!r}: write it as "
                              "'name', 'name type' or 'name type: description' (types: str, int, "
                              "float, bool)")
        name, kind, description = match.groups()
        json_type = _DSL_TYPES.get((kind or "str").lower())
        if json_type is None:
            raise SchemaError(f"Unknown type {kind!r} for schema field {name!r}: use str, int, "
                              "float or bool")
        properties[name] = {"type": json_type, **({"description": description}
                                                   if description else {})}
    if not properties:
        raise SchemaError("The schema names no fields: e.g. 'name, age int, bio: a short bio'")
    schema = {"type": "object", "properties": properties, "required": list(properties)}
    return multi_schema(schema) if multi else schema


def multi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema for a list of items of `schema`, as an object with one "items" array. The
    item's definitions (`$defs`, as pydantic writes them) move to the top, where its
    `#/$defs/...` references point."""
    item = {k: v for k, v in schema.items() if k not in ("$defs", "definitions")}
    definitions = {k: schema[k] for k in ("$defs", "definitions") if k in schema}
    return {"type": "object", "properties": {"items": {"type": "array", "items": item}},
            "required": ["items"], **definitions}


def as_json_schema(schema: Any, *, multi: bool = False) -> dict[str, Any]:
    """`schema` (pydantic model class, dict, or DSL string) as a JSON schema dict."""
    if isinstance(schema, str):
        return schema_dsl(schema, multi=multi)
    if isinstance(schema, dict):
        result = schema
    elif isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        result = schema.model_json_schema()
    elif hasattr(schema, "model_json_schema"):  # a pydantic model instance
        result = type(schema).model_json_schema()
    else:
        raise SchemaError(f"A schema must be a pydantic model class, a JSON schema dict or a "
                          f"string like 'name, age int', not {type(schema).__name__}")
    return multi_schema(result) if multi else result


# -- checking values against a schema --------------------------------------------------------------
#: What an error of each pydantic type says was expected.
_EXPECTED = {"int_type": "an integer", "int_from_float": "an integer", "float_type": "a number",
             "finite_number": "a finite number", "string_type": "a string",
             "bool_type": "true or false", "list_type": "an array", "dict_type": "an object",
             "model_type": "an object", "none_required": "null"}
#: Problems one message lists before counting the rest.
_MOST_PROBLEMS = 5
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


class SchemaWarning(UserWarning):
    """Part of a schema uses constructs the validator does not check; the rest is checked."""


class SchemaMismatch(LLMNotebookError, ValueError):
    """A value does not match a schema; `problems` has one line per mismatch."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems_line(problems))
        self.problems = problems


def problems_line(problems: list[str]) -> str:
    """Problems on one line: the first few, then how many more."""
    shown = problems[:_MOST_PROBLEMS]
    more = len(problems) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more else "")


def json_schema_validator(schema: Any, *, multi: bool = False) -> Callable[[Any], Any]:
    """A function that checks parsed JSON against `schema` and returns it as plain Python (3.0
    for an integer becomes 3), or raises SchemaMismatch. Built once per schema; constructs it
    does not check are named in one SchemaWarning, and the rest is checked."""
    return _validator(json.dumps(as_json_schema(schema, multi=multi)))


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> Callable[[Any], Any]:
    from pydantic import TypeAdapter, ValidationError

    from .json_schema_types import JsonSchemaTypes

    types = JsonSchemaTypes(json.loads(schema_json))
    adapter = TypeAdapter(types.annotation)
    if types.unchecked:
        warnings.warn(SchemaWarning("Not checked (the rest of the schema is): "
                                    + "; ".join(types.unchecked)), stacklevel=3)

    def validate(value: Any) -> Any:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            raise SchemaMismatch(validation_problems(exc)) from None

    return validate


def validation_problems(error: Any) -> list[str]:
    """A pydantic ValidationError as lines a person or a model can act on, such as
    `field age: expected an integer, got string '42'`."""
    return [_problem(detail) for detail in error.errors(include_url=False)]


def _problem(detail: dict[str, Any]) -> str:
    where, kind = _path(detail["loc"]), detail["type"]
    if kind in ("missing", "missing_argument"):
        return f"{where}: missing (it is required)"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{where}: not a field the schema allows"
    expected = _EXPECTED.get(kind) or (detail.get("ctx") or {}).get("expected")
    if expected is None:  # a constraint: pydantic's message says which
        message = detail["msg"]
        return f"{where}: {message[:1].lower()}{message[1:]}, got {_described(detail['input'])}"
    return f"{where}: expected {expected}, got {_described(detail['input'])}"


def _path(location: tuple) -> str:
    if not location:
        return "the answer"
    text = ""
    for step in location:
        if isinstance(step, int):
            text += f"[{step}]"
        elif _IDENTIFIER.fullmatch(str(step)):
            text += f".{step}" if text else str(step)
        else:
            text += f"[{str(step)!r}]"
    return f"field {text}"


def _described(value: Any) -> str:
    """A value as JSON names it, short enough for one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value if len(value) <= 40 else value[:39] + '…'!r}"
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)}"
    return "an object" if isinstance(value, dict) else type(value).__name__
