"""What `echo` is told to do by a JSON block in its prompt: ask for tool calls, or answer exactly.

So that every tool and schema path runs offline and the same way each time, echo looks in the
turn's user text and system prompt for a JSON object (bare, or in a ```` ```json ```` fence)
with any of these keys:

- `"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}}, ...]`: the calls echo asks for
  in its first round;
- `"rounds": [[calls of round 1], [calls of round 2], ...]`: several rounds, one list each;
- `"raw": ...`: the text of echo's final answer (the round that asks for no calls), exactly; a
  value that is not text is sent as JSON. With a schema it is sent as it is, valid or not.

A round is counted from the tool results sent since the user's latest text, so each chain
round gets the next list of calls; a round that asks for calls echoes what it received, as
echo always does. The final round of a schema'd prompt without `"raw"` is a value built from
the schema; otherwise it echoes, the tool results included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: The keys that make a JSON object in a prompt a script for echo.
SCRIPT_KEYS = ("tool_calls", "rounds", "raw")
_NO_RAW = object()


@dataclass
class Script:
    """The rounds of calls to ask for, and the exact answer if one was given."""

    rounds: list[list[dict[str, Any]]] = field(default_factory=list)
    raw: Any = _NO_RAW

    @property
    def has_raw(self) -> bool:
        return self.raw is not _NO_RAW

    def raw_text(self) -> str:
        return self.raw if isinstance(self.raw, str) else json.dumps(self.raw)

    def calls_for(self, round_number: int) -> list[dict[str, Any]]:
        return self.rounds[round_number] if round_number < len(self.rounds) else []


def _objects(text: str):
    """Every JSON object in `text`, in order (objects inside objects are not counted twice)."""
    decoder = json.JSONDecoder()
    position = text.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except ValueError:
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            yield value
        position = text.find("{", end)


def _call(call: Any, where: str) -> dict[str, Any]:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ValueError(f"echo's {where}: each call is an object with a \"name\" (and "
                         f"\"arguments\", an object), not {json.dumps(call)[:80]}")
    arguments = call.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise ValueError(f"echo's {where}: the arguments of {call['name']!r} must be a JSON object")
    return {"name": call["name"], "arguments": arguments}


def _rounds(found: dict[str, Any]) -> list[list[dict[str, Any]]]:
    if "rounds" in found:
        rounds = found["rounds"]
        if not isinstance(rounds, list) or not all(isinstance(r, list) for r in rounds):
            raise ValueError('echo\'s "rounds" is a list of rounds, each a list of calls')
        return [[_call(call, '"rounds"') for call in calls] for calls in rounds]
    calls = found.get("tool_calls", [])
    if not isinstance(calls, list):
        raise ValueError('echo\'s "tool_calls" is a list of calls')
    return [[_call(call, '"tool_calls"') for call in calls]] if calls else []


def read_script(*texts: str | None) -> Script:
    """The first script in `texts` (the user's text, then the system prompt); empty if none."""
    for text in texts:
        for found in _objects(text or ""):
            if any(key in found for key in SCRIPT_KEYS):
                return Script(rounds=_rounds(found), raw=found.get("raw", _NO_RAW))
    return Script()


def script_of(messages: list[Any]) -> tuple[Script, int]:
    """The script of this turn (in the user's latest text, else the system prompt) and the round
    this is: how many rounds of tool results were sent since that text."""
    rounds, asked = 0, None
    for message in reversed(messages):
        if message.role == "tool":
            rounds += 1
        elif message.role == "user" and message.text:
            asked = message.text
            break
    system = next((m.text for m in messages if m.role == "system"), None)
    return read_script(asked, system), rounds


# -- a value that fits a schema ------------------------------------------------------------------
def example_value(schema: dict[str, Any], name: str = "value") -> Any:
    """A deterministic value that fits the JSON `schema` (its `$defs` followed): defaults,
    examples and enums first, then the bounds of each type; strings are named after their
    property. Patterns are not honoured."""
    return _example(schema, schema, name)


def _resolved(node: Any, root: dict[str, Any]) -> Any:
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 50:
        target: Any = root
        for step in node["$ref"].lstrip("#/").split("/"):
            target = target.get(step, {}) if isinstance(target, dict) else {}
        node, seen = target, seen + 1
    return node if isinstance(node, dict) else {}


def _example(node: Any, root: dict[str, Any], name: str) -> Any:
    node = _resolved(node, root)
    for key in ("const", "default"):
        if key in node:
            return node[key]
    if node.get("enum"):
        return node["enum"][0]
    if isinstance(node.get("examples"), list) and node["examples"]:
        return node["examples"][0]
    for key in ("anyOf", "oneOf"):
        options = [_resolved(option, root) for option in node.get(key) or []]
        if options:
            chosen = next((o for o in options if o.get("type") != "null"), options[0])
            return _example(chosen, root, name)
    if node.get("allOf"):
        merged: dict[str, Any] = {}
        for part in node["allOf"]:
            merged.update(_resolved(part, root))
        return _example(merged, root, name)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in node else "string"
    return _BY_TYPE.get(kind, _string)(node, root, name)


def _object(node: dict[str, Any], root: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: _example(value, root, key) for key, value in (node.get("properties") or {}).items()}


def _array(node: dict[str, Any], root: dict[str, Any], name: str) -> list[Any]:
    if isinstance(node.get("prefixItems"), list):
        return [_example(item, root, name) for item in node["prefixItems"]]
    count = max(1, int(node.get("minItems", 1)))
    if "maxItems" in node:
        count = min(count, int(node["maxItems"]))
    item = name[:-1] if name.endswith("s") and len(name) > 1 else name
    return [_example(node.get("items") or {}, root, item) for _ in range(count)]


def _number(node: dict[str, Any], root: dict[str, Any], name: str) -> int | float:
    integer = node.get("type") == "integer" or "integer" in (node.get("type") or [])
    low = node.get("minimum", node.get("exclusiveMinimum"))
    value: int | float = 0 if low is None else low
    if "exclusiveMinimum" in node and value == node["exclusiveMinimum"]:
        value = value + 1 if integer else value + 0.5
    high = node.get("maximum")
    if high is not None and value > high:
        value = high
    if node.get("multipleOf"):
        step = node["multipleOf"]
        value = -(-value // step) * step
    return int(value) if integer else float(value)


_FORMATS = {"date": "2024-01-01", "date-time": "2024-01-01T00:00:00Z", "time": "00:00:00",
            "email": "name@example.com", "uri": "https://example.com/", "uuid":
            "00000000-0000-4000-8000-000000000000"}


def _string(node: dict[str, Any], root: dict[str, Any], name: str) -> str:
    text = _FORMATS.get(node.get("format"), name)
    low, high = int(node.get("minLength", 0)), node.get("maxLength")
    if len(text) < low:
        text = (text + " " + "x" * low)[:low]
    return text[:int(high)] if high is not None else text


_BY_TYPE = {"object": _object, "array": _array, "integer": _number, "number": _number,
            "string": _string, "boolean": lambda node, root, name: True,
            "null": lambda node, root, name: None}
