"""The OpenAI-compatible endpoints listed in the user directory's `openai_endpoints.json`,
registered with the other models whenever the plugins load."""

from __future__ import annotations

from llm_notebook.endpoints import register_configured_endpoints
from llm_notebook.plugins import hookimpl


@hookimpl
def register_models(register):
    register_configured_endpoints(register)
