"""Structured output: from a model's text to a value checked against a schema, and from many
such values to a DataFrame with one typed column per field.

    value = parse_structured(response.text(), "name, age int")      # {"name": ..., "age": ...}
    frame = typed_frame([(label, value_or_error), ...], "name, age int", index=df.index)

Models wrap JSON in prose and code fences, get types wrong and leave fields out, so parsing finds
the JSON wherever it is, and a failure says which field was wrong and what was expected, keeping
the model's text; `feedback_prompt(error, schema)` turns that into a message asking again.

Columns: integer → Int64, number → Float64, boolean → boolean, string → string (all nullable),
anything else → object; a missing optional field is NA. Rows that failed have NA fields and
their message in the `error` column. With `multi=True` each item is a row, indexed by the label
of the row it came from (repeated), and `item` numbers the items of each row from 0, so
`df.join(frame)` puts every item next to the row it came from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import LLMNotebookError
from .schemas import SchemaMismatch, as_json_schema, json_schema_validator

__all__ = ["StructuredOutputError", "feedback_prompt", "parse_structured", "typed_frame"]

#: A fenced block (its language, its body); an unclosed fence runs to the end of the text.
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_JSON_START = re.compile(r"[{\[]")
#: Places a JSON value is looked for in prose before giving up (each costs a decode attempt).
_MOST_STARTS = 64
#: Characters of the answer quoted in an error.
_EXCERPT = 60
_DTYPES = {"integer": "Int64", "number": "Float64", "boolean": "boolean", "string": "string"}


class StructuredOutputError(LLMNotebookError, ValueError):
    """A model's answer is not JSON matching the schema. `text` is the answer as it came;
    `problems` has one line per mismatch (field, what was expected, what came)."""

    def __init__(self, message: str, *, text: str, problems: list[str]) -> None:
        super().__init__(message)
        self.text = text
        self.problems = problems


def parse_structured(text: str, schema: Any, *, multi: bool = False) -> Any:
    """The JSON value in `text` (bare, in a ```json fence, or inside prose) checked against
    `schema` (a DSL string, a JSON schema dict or a pydantic model class); with `multi`, the
    list of items (the answer may be `{"items": [...]}` or a bare array).

    Of several JSON values in the text, the first that matches is returned; when none does,
    StructuredOutputError says why the likeliest one does not."""
    validate = json_schema_validator(schema, multi=multi)
    decode_error: str | None = None
    mismatch: tuple[int, SchemaMismatch] | None = None
    for value in _json_values(text):
        if isinstance(value, json.JSONDecodeError):
            decode_error = decode_error or _decode_problem(value)
            continue
        if multi and isinstance(value, list):
            value = {"items": value}
        try:
            checked = validate(value)
        except SchemaMismatch as exc:
            rank = 0 if isinstance(value, dict) else 1  # an object was likelier meant
            if mismatch is None or rank < mismatch[0]:
                mismatch = (rank, exc)
            continue
        return checked["items"] if multi else checked
    if mismatch is not None:
        problems = mismatch[1].problems
        raise StructuredOutputError(f"The answer does not match the schema: {mismatch[1]}",
                                    text=text, problems=problems)
    begins = " ".join(text.split())[:_EXCERPT]
    reason = decode_error or f"it holds no JSON object (it begins {begins!r})"
    raise StructuredOutputError(f"The answer is not usable JSON: {reason}", text=text,
                                problems=[reason])


def _json_values(text: str) -> Iterator[Any]:
    """Decoded JSON values, likeliest first: the whole text, else each fenced block, else each
    JSON object or array standing in the prose; a JSONDecodeError where one failed to decode."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            yield json.loads(stripped)
            return
        except json.JSONDecodeError as exc:
            yield exc
    fenced = False
    for match in sorted(_FENCE.finditer(text), key=lambda m: m.group(1).lower() != "json"):
        body = match.group(2).strip()
        if body[:1] in ("{", "["):
            fenced = True
            try:
                yield json.loads(body)
            except json.JSONDecodeError as exc:
                yield exc
    if not fenced:
        yield from _values_in_prose(text)


def _values_in_prose(text: str) -> Iterator[Any]:
    decoder, position, starts = json.JSONDecoder(), 0, 0
    while starts < _MOST_STARTS:
        match = _JSON_START.search(text, position)
        if match is None:
            return
        starts += 1
        try:
            value, position = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            position = match.start() + 1
            continue
        yield value


def _decode_problem(error: json.JSONDecodeError) -> str:
    cut = (" (the JSON ends early: the answer may have been cut off)"
           if error.pos >= len(error.doc.rstrip()) else "")
    return f"{error.msg} at line {error.lineno} column {error.colno}{cut}"


def feedback_prompt(error: StructuredOutputError, schema: Any, *, multi: bool = False) -> str:
    """What to send a model whose answer failed: what was wrong, and the schema to match. Send
    it as the next turn of the same conversation (`response.reply(feedback, schema=...)`)."""
    shape = 'a JSON object with an "items" array' if multi else "a JSON object"
    wrong = "\n".join(f"- {problem}" for problem in error.problems)
    return (f"Your answer could not be used:\n{wrong}\n\nAnswer again with only {shape} (no "
            f"prose around it) that matches this JSON schema:\n"
            f"{json.dumps(as_json_schema(schema, multi=multi))}")


def typed_frame(results: Iterable[tuple[Any, Any]], schema: Any, *, multi: bool = False,
                index: Any = None):
    """A DataFrame with one typed column per field of `schema`, from `(label, outcome)` pairs
    in row order: an outcome is what parse_structured returned, or the exception (or message)
    of a row that has no value. `index` (same length as `results`) labels the rows; by default
    the labels do. See the module docstring for the columns, `error` and `multi`."""
    import pandas as pd

    results = list(results)
    labels = index if index is not None else pd.Index([label for label, _ in results])
    if len(labels) != len(results):
        raise ValueError(f"index has {len(labels)} labels for {len(results)} results: give "
                         "the index of the rows the results came from")
    json_schema = as_json_schema(schema)
    whole = not _resolved(json_schema, json_schema).get("properties")
    fields = {"value": _dtype(json_schema, json_schema)} if whole else _fields(json_schema)
    extra = _unused(["item", "error"] if multi else ["error"], fields)
    columns: dict[str, list[Any]] = {name: [] for name in [*fields, *extra]}
    sources: list[int] = []
    for position, (_, outcome) in enumerate(results):
        for number, values, error in _rows(outcome, multi, whole):
            sources.append(position)
            for name in fields:
                columns[name].append(values.get(name) if values else None)
            if multi:
                columns[extra[0]].append(number)
            columns[extra[-1]].append(error)
    arrays = {name: _column(columns[name], dtype) for name, dtype in fields.items()}
    if multi:
        arrays[extra[0]] = _column(columns[extra[0]], "Int64")
    arrays[extra[-1]] = _column(columns[extra[-1]], "string")
    return pd.DataFrame(arrays, index=pd.Index(labels).take(sources))


def _rows(outcome: Any, multi: bool,
          whole: bool) -> Iterator[tuple[int | None, dict | None, str | None]]:
    """(item number, field values, error) for each row one result makes; a `whole` value (of
    a schema that is no object) is the one field `value`."""
    if outcome is None or isinstance(outcome, (BaseException, str)):
        yield None, None, str(outcome) if outcome is not None else "no answer"
        return
    for number, value in enumerate(outcome if multi else [outcome]):
        yield number, {"value": value} if whole else value, None


def _unused(names: list[str], fields: dict[str, Any]) -> list[str]:
    """The extra columns' names, with `_` added while a field of the schema has the name."""
    chosen = []
    for name in names:
        while name in fields:
            name += "_"
        chosen.append(name)
    return chosen


def _fields(schema: dict[str, Any]) -> dict[str, Any]:
    """Each top-level field's column dtype."""
    properties = _resolved(schema, schema)["properties"]
    return {name: _dtype(node, schema) for name, node in properties.items()}


def _resolved(node: Any, root: dict[str, Any]) -> Any:
    seen = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"] not in seen:
        seen.add(node["$ref"])
        section, _, name = node["$ref"].removeprefix("#/").partition("/")
        node = root.get(section, {}).get(name, {})
    return node


def _dtype(node: Any, root: dict[str, Any]) -> Any:
    kinds = _kinds(_resolved(node, root), root) - {"null"}
    if kinds == {"integer", "number"}:
        return "Float64"
    return _DTYPES.get(next(iter(kinds)), object) if len(kinds) == 1 else object


def _kinds(node: Any, root: dict[str, Any]) -> set[str]:
    """The JSON types a value of `node` may have (empty when anything goes)."""
    if not isinstance(node, dict):
        return set()
    if "type" in node:
        kinds = node["type"]
        return {kinds} if isinstance(kinds, str) else set(kinds)
    members = node.get("anyOf") or node.get("oneOf")
    if members:
        return set().union(*(_kinds(_resolved(m, root), root) or {"any"} for m in members))
    values = node.get("enum", [node["const"]] if "const" in node else None)
    if values:
        return {_value_kind(v) for v in values}
    return set()


def _value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "null" if value is None else "any"


def _column(values: list[Any], dtype: Any):
    """`values` as a pandas array of `dtype`; object where a value does not fit it (an integer
    beyond 64 bits), so that nothing is lost."""
    import numpy as np
    import pandas as pd

    if dtype is not object:
        try:
            return pd.array(values, dtype=dtype)
        except (TypeError, ValueError, OverflowError):
            pass
    column = np.empty(len(values), dtype=object)
    for position, value in enumerate(values):  # one by one: equal-length lists stay lists
        column[position] = value
    return column
