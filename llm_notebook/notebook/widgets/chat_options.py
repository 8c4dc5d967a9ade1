"""A chat's model options: the fields its options editor shows, edits, and a switch of model.

The fields come from the model's `Options` (pydantic) schema: name, type, default, bounds and
description. Values typed in the editor arrive as text and are checked by the model itself, so
an edit is either a valid set of options or one line saying what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

from ...errors import OptionsError

_TYPES = ("integer", "number", "boolean", "string")


def _field_type(schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """("integer" | "number" | "boolean" | "string" | "json", the schema of that type)."""
    choices = [choice for choice in schema.get("anyOf", [schema]) if choice.get("type") != "null"]
    if len(choices) == 1 and choices[0].get("type") in _TYPES:
        return choices[0]["type"], choices[0]
    return "json", {}


def option_fields(model: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per option of `model`: what the editor needs to show and check it."""
    schema = model.Options.model_json_schema()
    fields = []
    for name, field in schema.get("properties", {}).items():
        kind, typed = _field_type(field)
        fields.append({
            "name": name, "type": kind, "description": field.get("description", ""),
            "default": json.dumps(field["default"]) if "default" in field else "",
            "minimum": typed.get("minimum", typed.get("exclusiveMinimum")),
            "maximum": typed.get("maximum", typed.get("exclusiveMaximum")),
            "value": values.get(name), "set": name in values,
        })
    return fields


def typed_value(kind: str, text: Any) -> Any:
    """An editor value as the model's Options will check it (text that reads as JSON becomes
    that value: `200`, `0.5`, `["a"]`; other text stays text)."""
    if not isinstance(text, str) or kind == "string":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def edited(model: Any, options: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    """`options` with `name` set to the editor's `value` (None or "" unsets it), checked by the
    model: OptionsError says what is wrong."""
    fields = model.Options.model_fields
    if name not in fields:
        raise OptionsError(f"{model.model_id} has no option {name!r}")
    changed = {key: item for key, item in options.items() if key != name}
    if value is not None and value != "":
        kind = next(field["type"] for field in option_fields(model, {}) if field["name"] == name)
        changed[name] = typed_value(kind, value)
    model.validate_options(changed)
    return changed


def carried_over(model: Any, options: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The options `model` takes (and accepts the value of), and the names of those dropped."""
    kept = {}
    for name, value in options.items():
        try:
            model.validate_options({name: value})
        except OptionsError:
            continue
        kept[name] = value
    return kept, sorted(set(options) - set(kept))
