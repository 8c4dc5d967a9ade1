"""Schemas for structured output: what `schema=` accepts, always handed to models as a dict.

`schema=` takes a pydantic model class, a JSON schema dict, or llm's concise DSL:
`"name, age int, bio: a one-sentence bio"` (fields separated by commas or new lines; a type of
str, int, float or bool after the name, str when left out; a description after a colon).
"""

from __future__ import annotations

import re
from typing import Any

from .errors import LLMNotebookError

__all__ = ["SchemaError", "as_json_schema", "multi_schema", "schema_dsl"]

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
    """A schema for a list of items of `schema`, as an object with one "items" array."""
    return {"type": "object", "properties": {"items": {"type": "array", "items": schema}},
            "required": ["items"]}


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
