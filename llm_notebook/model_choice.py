"""Which model a prompt goes to, when it is named by id or alias (or not named at all)."""

from __future__ import annotations

from typing import Any


def pick_model(model: Any = None, *, prefer_async: bool = False):
    """The model `model` names (an id, an alias, None for the default, or a model itself).

    The sync variant when there is one, else the async one; `prefer_async` the other way round.
    """
    if model is not None and not isinstance(model, str):
        return model
    from .plugins import registry

    entry = registry.entry(model)
    if prefer_async:
        return entry.async_model or entry.model
    return entry.model or entry.async_model
