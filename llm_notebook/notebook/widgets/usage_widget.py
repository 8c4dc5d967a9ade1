"""The session's usage table by model, updated as responses finish."""

from __future__ import annotations

import traitlets

from ...tables import table_data
from ...usage import SESSION_HEADERS, SessionUsage, session_usage
from .saved import SavedWidget, module_source, style_source

EMPTY = {"text/plain": "Session usage: no responses yet",
         "text/markdown": "**Session usage**\n\n_No responses yet._"}


class UsageView(SavedWidget):
    """Listens to a usage account (the session's unless told otherwise) until closed."""

    _esm = module_source("usage.js")
    _css = style_source("usage.css")
    kind = "session usage"

    headers = traitlets.List(traitlets.Unicode()).tag(sync=True)
    rows = traitlets.List(traitlets.List()).tag(sync=True)

    def __init__(self, usage: SessionUsage | None = None) -> None:
        super().__init__(headers=list(SESSION_HEADERS))
        self.add_class("llm-usage-view")
        self.usage = usage if usage is not None else session_usage
        self._refresh(self.usage)
        self._unsubscribe = self.usage.subscribe(self._refresh)

    def _refresh(self, usage: SessionUsage) -> None:
        rows = usage.rows()
        self.rows = [list(row) for row in rows]
        if rows:
            table = table_data(SESSION_HEADERS, rows)
            data = {"text/plain": "Session usage\n" + table["text/plain"],
                    "text/markdown": "**Session usage**\n\n" + table["text/markdown"]}
        else:
            data = EMPTY
        self.show_text_copy(data["text/markdown"], data["text/plain"])

    def close(self) -> None:
        self._unsubscribe()
        super().close()
