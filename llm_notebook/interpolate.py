"""`{name}` references in a prompt, replaced once from a namespace (a notebook's user namespace).

A reference is a name followed by `.attr` and `[key]` steps: `{df}`, `{df.shape}`,
`{cfg["lr"]}`, `{In[3]}`, `{Out[3]}`. A pair `{{...}}` stands for the literal `{...}`. Any other
brace text (JSON, nested dicts ending in `}}`, code) is left alone, so prompts that quote code need
no escaping. Replaced text is never scanned again.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Mapping
from typing import Any

from .errors import LLMNotebookError
from .keys import Secret, redact_known

#: Rows of a pandas object shown before the rest is summarised in a note.
MAX_TABLE_ROWS = 30
MAX_TABLE_COLUMNS = 20

_NAME = r"[A-Za-z_]\w*"
_KEY = r"""\[\s*(?:-?\d+|'[^'\\\n]*'|"[^"\\\n]*"|[A-Za-z_]\w*)\s*\]"""
_REFERENCE = rf"{_NAME}(?:\.{_NAME}|{_KEY})*"
_TOKEN = re.compile(rf"\{{\{{([^{{}}]*)\}}\}}|\{{({_REFERENCE})\}}")
_STEP = re.compile(rf"\.({_NAME})|\[\s*(-?\d+|'[^'\\\n]*'|\"[^\"\\\n]*\"|[A-Za-z_]\w*)\s*\]")
_WHOLE_REFERENCE = re.compile(rf"\s*{_REFERENCE}\s*")
#: Attributes that hold a model's API key.
_KEY_ATTRIBUTES = frozenset({"key", "api_key"})
#: Environment variable names that hold credentials.
_CREDENTIAL = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)
#: Characters of an exception's message kept in an interpolation error.
_LONGEST_REASON = 200


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
    """The object `reference` names in `namespace`; InterpolationError says which step failed.

    Private names (`_x`, `.__dict__`) and API keys are refused, so a prompt (which leaves the
    machine) never carries a key or the internals that hold one.
    """
    reference = reference.strip()
    root = re.match(_NAME, reference).group(0)
    if root.startswith("_"):
        raise InterpolationError(
            f"{{{reference}}}: variables starting with _ are not filled in (write Out[3] for an "
            f"earlier output, or {{{{{reference}}}}} for the literal text)")
    if root not in namespace:
        raise InterpolationError(
            f"{{{reference}}}: no variable named {root!r} (define it first, write {{{{{reference}}}}} "
            f"for the literal text, or turn interpolation off)")
    value = namespace[root]
    for match in _STEP.finditer(reference, len(root)):
        attribute, key = match.groups()
        _refuse_step(reference, value, attribute, key)
        try:
            value = getattr(value, attribute) if attribute else value[_key(key)]
        except Exception as exc:  # any failing lookup is the user's reference, reported as one line
            raise InterpolationError(
                f"{{{reference}}}: {match.group(0)!s} failed ({_one_line(exc)})") from None
    _refuse_value(reference, value)
    return value


def _refuse_value(reference: str, value: Any) -> None:
    """Refuse a key, and the environment as a whole (it holds keys)."""
    if isinstance(value, Secret):
        raise InterpolationError(f"{{{reference}}}: an API key is never put in a prompt")
    if _is_environment(value):
        raise InterpolationError(
            f"{{{reference}}}: the environment holds API keys, so it is never put in a prompt "
            f"whole; name one variable, as in {{os.environ[HOME]}}")


def _refuse_step(reference: str, value: Any, attribute: str | None, key: str | None) -> None:
    """Refuse a step into a key, a private attribute, a model's key, or an environment variable
    named like a credential."""
    if isinstance(value, Secret) or (attribute is not None and _is_environment(value)):
        _refuse_value(reference, value)  # even a method of the environment shows it whole
    if attribute is None:
        if _is_environment(value) and _CREDENTIAL.search(str(_key(key))):
            raise InterpolationError(
                f"{{{reference}}}: environment variables named like credentials are never put "
                f"in a prompt")
    elif attribute.startswith("_"):
        raise InterpolationError(
            f"{{{reference}}}: .{attribute} is private; attributes starting with _ are not "
            f"filled in")
    elif attribute in _KEY_ATTRIBUTES and _is_model(value):
        raise InterpolationError(
            f"{{{reference}}}: .{attribute} of a model is its API key; keys are never put in a "
            f"prompt")


def _is_environment(value: Any) -> bool:
    return value is os.environ or value is getattr(os, "environb", None)


def _is_model(value: Any) -> bool:
    """Anything with a `model_id` and a `get_key()`: a model of this package or of a plugin."""
    try:
        return hasattr(value, "model_id") and callable(getattr(value, "get_key", None))
    except Exception:  # an object whose __getattr__ fails is no model
        return False


def _one_line(exc: BaseException) -> str:
    """`Kind: message` on one short line, without any key the message may carry."""
    try:
        message = str(exc)
    except Exception:  # an exception whose own __str__ fails still gets named
        message = ""
    lines = message.strip().splitlines()
    first = redact_known(lines[0] if lines else "")
    if len(first) > _LONGEST_REASON:
        first = first[:_LONGEST_REASON] + "…"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


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


def _text_of(reference: str, value: Any) -> str:
    try:
        text = as_text(value)
    except Exception as exc:  # a broken __str__ (or one that recurses forever) is one line too
        raise InterpolationError(
            f"{{{reference}}} cannot be turned into text ({_one_line(exc)})") from None
    if redact_known(text) != text:
        raise InterpolationError(
            f"{{{reference}}}: its text contains an API key; keys are never put in a prompt")
    return text


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """`text` with each `{reference}` replaced by its value and each `{{...}}` by `{...}`."""
    if not isinstance(text, str):
        raise TypeError(f"interpolate() takes the prompt as a string, not "
                        f"{type(text).__name__}: pass str(value) to send its text")
    if not isinstance(namespace, Mapping):
        raise TypeError(f"interpolate() takes the names to fill in as a mapping (such as "
                        f"get_ipython().user_ns or a dict), not {type(namespace).__name__}")

    def replace(match: re.Match) -> str:
        literal, reference = match.groups()
        if reference is None:
            return "{" + literal + "}"
        return _text_of(reference, resolve(reference, namespace))

    return _TOKEN.sub(replace, text)
