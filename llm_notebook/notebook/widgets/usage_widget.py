"""The session's usage table by model, updated as responses finish."""

from __future__ import annotations

import ipywidgets as widgets

from ...usage import SESSION_HEADERS, SessionUsage, session_usage
from .. import render
from .outputs import SavedAsText, TextFallback, markdown_output

EMPTY = {"text/plain": "Session usage: no responses yet",
         "text/markdown": "**Session usage**\n\n_No responses yet._"}


class UsageView(SavedAsText, widgets.Output):
    """Listens to a usage account (the session's unless told otherwise) until closed."""

    note = "Session usage (a widget): the table follows as text"

    def __init__(self, usage: SessionUsage | None = None) -> None:
        super().__init__()
        self.add_class("llm-usage-view")
        self.usage = usage if usage is not None else session_usage
        self.fallback = TextFallback()
        self._refresh(self.usage)
        self._unsubscribe = self.usage.subscribe(self._refresh)

    def _refresh(self, usage: SessionUsage) -> None:
        rows = usage.rows()
        if rows:
            table = render.table_data(SESSION_HEADERS, rows)
            data = {"text/plain": "Session usage\n" + table["text/plain"],
                    "text/markdown": "**Session usage**\n\n" + table["text/markdown"]}
        else:
            data = EMPTY
        self.outputs = (markdown_output(data),)
        self.fallback.update(data["text/markdown"], data["text/plain"])

    def close(self) -> None:
        self._unsubscribe()
        super().close()
