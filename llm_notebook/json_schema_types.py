"""A JSON schema as the Python annotation pydantic validates it with.

pydantic checks JSON data against its own types, not against JSON schemas, so the schema's
objects become TypedDicts, its arrays lists, its scalars strict types (JSON has no "42" for 42),
and `enum`, `anyOf` and `allOf` small validators. What cannot be expressed this way is left
unconstrained and named in `unchecked`, so callers can say what was not checked.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import (BeforeValidator, ConfigDict, Field, PlainValidator, StrictBool, StrictFloat,
                      StrictInt, StrictStr, TypeAdapter, ValidationError)
from pydantic_core import PydanticCustomError
from pydantic_core import SchemaError as PatternError
from typing_extensions import NotRequired, Required, TypedDict

from .schemas import SchemaError

__all__ = ["JsonSchemaTypes"]

#: Keywords that describe a value without constraining it (JSON Schema treats `format` so too).
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$schema", "$id",
                          "$comment", "format", "readOnly", "writeOnly", "deprecated",
                          "contentMediaType", "contentEncoding", "$defs", "definitions"})
#: Keywords that are checked.
_CHECKED = frozenset({"type", "properties", "required", "additionalProperties", "items", "enum",
                      "const", "anyOf", "oneOf", "allOf", "$ref", "minimum", "maximum",
                      "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
                      "maxLength", "pattern", "minItems", "maxItems", "nullable"})
#: pydantic's names for JSON Schema's constraints.
_CONSTRAINTS = {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt",
                "exclusiveMaximum": "lt", "multipleOf": "multiple_of", "minLength": "min_length",
                "maxLength": "max_length", "minItems": "min_length", "maxItems": "max_length"}
_TOP = "the answer"


def _json_kind(value: Any) -> str:
    """The JSON type of a parsed JSON value (integers and floats are both numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _kinds_accepting(kind: str) -> set[str]:
    return {"number"} if kind == "integer" else {kind}


def _integral_float(value: Any) -> Any:
    """JSON Schema counts 3.0 as an integer."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class JsonSchemaTypes:
    """`annotation` is what pydantic validates `schema` with; `unchecked` lists (with where
    they are) the constructs it leaves unconstrained."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.root = schema
        self.unchecked: list[str] = []
        self._resolving: set[str] = set()
        self._objects = 0
        self.annotation = self._annotation(schema, _TOP)

    def _annotation(self, node: Any, where: str) -> Any:
        if node is True or node == {}:
            return Any
        if not isinstance(node, dict):
            raise SchemaError(f"The schema at {where} must be an object, not {node!r}")
        unknown = sorted(set(node) - _CHECKED - _ANNOTATIONS)
        if unknown:
            self.unchecked.append(f"{', '.join(unknown)} at {where}")
        if "$ref" in node:
            return self._reference(node["$ref"], where)
        if "enum" in node or "const" in node:
            return self._one_of_values(node["enum"] if "enum" in node else [node["const"]])
        if "allOf" in node:
            return self._all_of(node["allOf"], where)
        if "anyOf" in node or "oneOf" in node:
            if "oneOf" in node:
                self.unchecked.append(f"oneOf at {where} is checked as anyOf (a value matching "
                                      "more than one choice is not refused)")
            return self._any_of(node.get("anyOf") or node["oneOf"], where)
        kinds = node.get("type") or self._implied_type(node)
        if kinds is None:
            return Any
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        if node.get("nullable"):
            kinds.append("null")
        return self._choice([(kind, self._typed(kind, node, where)) for kind in kinds
                             if kind != "null"], nullable="null" in kinds)

    @staticmethod
    def _implied_type(node: dict) -> str | None:
        if {"properties", "required", "additionalProperties"} & set(node):
            return "object"
        return "array" if "items" in node else None

    def _reference(self, reference: str, where: str) -> Any:
        section, _, name = reference.removeprefix("#/").partition("/")
        target = (self.root.get(section, {}).get(name)
                  if reference.startswith("#/") and section in ("$defs", "definitions") else None)
        if not isinstance(target, dict):
            self.unchecked.append(f"$ref {reference!r} at {where} (only #/$defs/... is followed)")
            return Any
        if reference in self._resolving:
            self.unchecked.append(f"the recursive $ref {reference!r} at {where}")
            return Any
        self._resolving.add(reference)
        try:
            return self._annotation(target, where)
        finally:
            self._resolving.discard(reference)

    def _typed(self, kind: str, node: dict, where: str) -> Any:
        limits = {_CONSTRAINTS[k]: v for k, v in node.items() if k in _CONSTRAINTS}
        if kind == "object":
            return self._object(node, where)
        if kind == "array":
            items = node.get("items", True)
            if isinstance(items, list):  # the tuple form of older drafts
                self.unchecked.append(f"items given as a list at {where}")
                items = True
            items = self._annotation(items, f"{where}[]")
            return Annotated[list[items], Field(**limits)]
        if kind == "string":
            return self._string(node.get("pattern"), where, limits)
        if kind == "integer":
            return Annotated[StrictInt, BeforeValidator(_integral_float), Field(**limits)]
        if kind == "number":
            return Annotated[StrictFloat, Field(allow_inf_nan=False, **limits)]
        if kind == "boolean":
            return StrictBool
        raise SchemaError(f"Unknown type {kind!r} at {where}: use string, integer, number, "
                          "boolean, array, object or null")

    def _string(self, pattern: str | None, where: str, limits: dict) -> Any:
        if pattern is not None:
            try:  # pydantic's engine is linear-time: no text can make it backtrack for ever
                TypeAdapter(Annotated[str, Field(pattern=pattern)])
            except PatternError:
                self.unchecked.append(f"pattern {pattern!r} at {where} (look-around and "
                                      "back-references are not supported)")
            else:
                limits["pattern"] = pattern
        return Annotated[StrictStr, Field(**limits)]

    def _object(self, node: dict, where: str) -> Any:
        properties = node.get("properties") or {}
        extra = node.get("additionalProperties", True)
        if isinstance(extra, dict) and extra and properties:
            self.unchecked.append(f"additionalProperties at {where} (fields beyond the "
                                  "properties are kept as they are)")
        if not properties and extra is not False:
            values = Any if extra in (True, {}) else self._annotation(extra, f"{where}.*")
            return dict[str, values]
        required = set(node.get("required") or ())
        fields = {name: (Required if name in required else NotRequired)[
            self._annotation(sub, name if where == _TOP else f"{where}.{name}")]
            for name, sub in properties.items()}
        self._objects += 1
        shape = TypedDict(f"Object{self._objects}", fields)
        shape.__pydantic_config__ = ConfigDict(extra="forbid" if extra is False else "allow")
        return shape

    @staticmethod
    def _one_of_values(allowed: list) -> Any:
        listed = ", ".join(json.dumps(v) for v in allowed[:10]) + (", …" if len(allowed) > 10
                                                                     else "")

        def check(value: Any) -> Any:
            if any(value == option and _json_kind(value) == _json_kind(option)
                   for option in allowed):
                return value
            raise PydanticCustomError("enum", "expected {expected}",
                                      {"expected": f"one of {listed}"})

        return Annotated[Any, PlainValidator(check)]

    def _any_of(self, members: list, where: str) -> Any:
        def is_null(member: Any) -> bool:
            return isinstance(member, dict) and member.get("type") == "null"

        return self._choice([(member.get("type") if isinstance(member, dict) else None,
                              self._annotation(member, where))
                             for member in members if not is_null(member)],
                            nullable=any(is_null(m) for m in members))

    @staticmethod
    def _choice(choices: list[tuple[Any, Any]], nullable: bool) -> Any:
        """A value that one of `choices` (kind, annotation) accepts; when it fits none, the
        errors of the one choice of its own JSON kind, else one line naming the kinds."""
        if len(choices) == 1:
            annotation = choices[0][1]
        else:
            adapters = [(kind, TypeAdapter(choice)) for kind, choice in choices]
            expected = " or ".join(dict.fromkeys(str(kind or "a value") for kind, _ in choices))

            def check(value: Any) -> Any:
                for _, adapter in adapters:
                    try:
                        return adapter.validate_python(value)
                    except ValidationError:
                        continue
                same_kind = [adapter for kind, adapter in adapters if isinstance(kind, str)
                             and _json_kind(value) in _kinds_accepting(kind)]
                if len(same_kind) == 1:
                    same_kind[0].validate_python(value)  # raises: its errors say what is wrong
                raise PydanticCustomError("any_of", "expected {expected}", {"expected": expected})

            annotation = Annotated[Any, PlainValidator(check)]
        return annotation | None if nullable else annotation

    def _all_of(self, parts: list, where: str) -> Any:
        annotations = [self._annotation(part, where) for part in parts]
        if len(annotations) == 1:
            return annotations[0]
        adapters = [TypeAdapter(annotation) for annotation in annotations]

        def check(value: Any) -> Any:
            for adapter in adapters:
                adapter.validate_python(value)
            return value

        return Annotated[Any, PlainValidator(check)]
