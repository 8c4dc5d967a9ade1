"""Models that fail on purpose, for the catalogue's cells and calls."""

from __future__ import annotations

import llm_notebook
from llm_notebook import Model


class FailsEarly(Model):
    """Fails before it says anything."""

    model_id = "fails-early"

    def execute(self, prompt, stream, response, conversation):
        raise llm_notebook.ModelError("the backend refused the prompt")
        yield  # pragma: no cover - makes this a generator


class FailsMidway(Model):
    """Says half an answer, then fails."""

    model_id = "fails-midway"

    def execute(self, prompt, stream, response, conversation):
        yield "half an answer "
        raise RuntimeError("backend fell over")


class SyncOnly(Model):
    """Has no async twin."""

    model_id = "sync-only"

    def execute(self, prompt, stream, response, conversation):
        yield "sync"
