"""`{name}` references in a prompt, replaced once from a namespace (a notebook's user namespace).

A reference is a name followed by `.attr` and `[key]` steps: `{df}`, `{df.shape}`,
`{cfg["lr"]}`, `{In[3]}`, `{Out[3]}`. A pair `{{...}}` stands for the literal `{...}`. Any other
brace text (JSON, nested dicts ending in `}}`, code) is left alone, so prompts that quote code need
no escaping. Replaced text is never scanned again.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from .errors import LLMNotebookError

#: Rows of a pandas object shown before the rest is summarised in a note.
MAX_TABLE_ROWS = 30
MAX_TABLE_COLUMNS = 20

_NAME = r"[A-Za-z_]\w*"
_KEY = r"""\[\s*(?:-?\d+|'[^'\\\n]*'|"[^"\\\n]*"|[A-Za-z_]\w*)\s*\]"""
_REFERENCE = rf"{_NAME}(?:\.{_NAME}|{_KEY})*"
_TOKEN = re.compile(rf"\{{\{{([^{{}}]*)\}}\}}|\{{({_REFERENCE})\}}")
_STEP = re.compile(rf"\.({_NAME})|\[\s*(-?\d+|'[^'\\\n]*'|\"[^\"\\\n]*\"|[A-Za-z_]\w*)\s*\]")
_WHOLE_REFERENCE = re.compile(rf"\s*{_REFERENCE}\s*")


class InterpolationError(LLMNotebookError, LookupError):
    """A `{reference}` in a prompt names something that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def is_reference(text: str) -> bool:
    """Whether `text` is a name, attribute path or subscript such as `df.plot` or `d["k"]`."""
    return _WHOLE_REFERENCE.fullmatch(text) is not None


def _key(token: str) -> Any:
    if token[0] in "'\"":
        return ast.literal_eval(token)
    if token.lstrip("-").isdigit():
        return int(token)
    return token


def resolve(reference: str, namespace: Mapping[str, Any]) -> Any:
    """The object `reference` names in `namespace`; InterpolationError says which step failed."""
    reference = reference.strip()
    root = re.match(_NAME, reference).group(0)
    if root not in namespace:
        raise InterpolationError(
            f"{{{reference}}}: no variable named {root!r} (define it first, write {{{{{reference}}}}} "
            f"for the literal text, or turn interpolation off)")
    value = namespace[root]
    for match in _STEP.finditer(reference, len(root)):
        attribute, key = match.groups()
        try:
            value = getattr(value, attribute) if attribute else value[_key(key)]
        except Exception as exc:  # any failing lookup is the user's reference, reported as one line
            raise InterpolationError(
                f"{{{reference}}}: {match.group(0)!s} failed ({type(exc).__name__}: {exc})") from None
    return value


def _is_pandas(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and hasattr(value, "to_string")


def _pandas_text(value: Any) -> str:
    """A compact table; rows beyond MAX_TABLE_ROWS are left out and counted in a note."""
    rows = len(value)
    shown = value.head(MAX_TABLE_ROWS) if rows > MAX_TABLE_ROWS else value
    table = shown.to_string(max_cols=MAX_TABLE_COLUMNS) if value.ndim == 2 else shown.to_string()
    if rows > MAX_TABLE_ROWS:
        shape = f"{rows} rows × {value.shape[1]} columns" if value.ndim == 2 else f"{rows} rows"
        table += f"\n({rows - MAX_TABLE_ROWS} more rows not shown; {shape} in all)"
    return table


def as_text(value: Any) -> str:
    """How a value reads inside a prompt: pandas objects as tables, the rest as str()."""
    return _pandas_text(value) if _is_pandas(value) else str(value)


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """`text` with each `{reference}` replaced by its value and each `{{...}}` by `{...}`."""

    def replace(match: re.Match) -> str:
        literal, reference = match.groups()
        if reference is None:
            return "{" + literal + "}"
        return as_text(resolve(reference, namespace))

    return _TOKEN.sub(replace, text)
