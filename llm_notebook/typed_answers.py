"""The answers of a `map` (or a batch job) asked with a schema, as one typed DataFrame.

Both keep each row's answer text (None for a row without one, its reason among the errors);
this parses them against the schema the same way for both (see `structured`), so a row reads
the same whether it was answered here or by a provider's batch engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .structured import StructuredOutputError, parse_structured, typed_frame

__all__ = ["parsed", "typed_answers"]


def parsed(text: str, schema: Any, *, multi: bool = False) -> Any:
    """The value `text` holds for `schema` (a list of items with `multi`), or the
    StructuredOutputError saying why it does not fit."""
    try:
        return parse_structured(text, schema, multi=multi)
    except StructuredOutputError as exc:
        return exc


def typed_answers(texts: list[str | None], errors: Mapping[int, str], schema: Any, *,
                  multi: bool = False, index: Any = None):
    """A DataFrame with one typed column per field of `schema` and an `error` column: each
    row's text parsed, a row without text (None) given its message from `errors` (by
    position). `index` labels the rows (by default their positions)."""
    outcomes = [(position, errors.get(position, "no answer") if text is None
                 else parsed(text, schema, multi=multi))
                for position, text in enumerate(texts)]
    return typed_frame(outcomes, schema, multi=multi, index=index)
