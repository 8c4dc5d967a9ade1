"""The OpenAI-compatible endpoints listed in the user directory's `openai_endpoints.json`,
registered with the other models whenever the plugins load: their chat models, and their
embedding models."""

from __future__ import annotations

from llm_notebook.endpoints import register_configured_endpoints
from llm_notebook.plugins import hookimpl


@hookimpl
def register_models(register):
    register_configured_endpoints(register)


@hookimpl
def register_embedding_models(register):
    register_configured_endpoints(register, embedding=True)
