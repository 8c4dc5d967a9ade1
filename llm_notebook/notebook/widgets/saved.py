"""Widgets that a saved notebook shows as they last were, with or without a kernel.

Each widget of the package is one anywidget that draws itself from its synced state alone
(the chat's transcript, the usage table, the default model). Before each save in JupyterLab or
Notebook 7, its front-end writes that state into the notebook's widget-state metadata
(saved_state.js), so the widget manager restores it on load: no "Error displaying widget", and
no broken-link badges. nbclient saves the same state when it executes a notebook.

Readers that render no widgets (GitHub, nbconvert, a terminal) get the text copy: the output
right after the widget holds its content as Markdown, updated in place by display id. Where the
widget is drawn, a style rule of the widget hides that copy.
"""

from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import Any, ClassVar

import anywidget

#: Where a widget's outputs say what they are: {"widget": kind} and {"text_of": kind}.
METADATA_KEY = "llm_notebook"
_HERE = Path(__file__).parent
_SHARED_MODULES = ("saved_state.js", "dom.js", "approvals.js")


@functools.cache
def _asset(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")


def module_source(name: str) -> str:
    """A widget's ES module: the shared pieces, then its own (which has the default export)."""
    return "\n".join(_asset(part) for part in (*_SHARED_MODULES, name))


def style_source(name: str) -> str:
    return _asset("widgets.css") + "\n" + _asset(name)


class SavedWidget(anywidget.AnyWidget):
    """Base of the package's widgets: the widget output, then (if `text_copy`) its text copy.

    Subclasses set `kind` (what the widget is, for the notes and metadata) and call
    `show_text_copy(markdown, plain)` whenever what they show changes.
    """

    kind: ClassVar[str] = "widget"
    text_copy: ClassVar[bool] = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("llm-nb-widget")
        if self.text_copy:
            self.add_class("llm-nb-twinned")
        self._copy_id = f"llm-notebook-{secrets.token_hex(8)}"
        self._copy = {"text/plain": "", "text/markdown": ""}
        self._copy_shown = False

    @property
    def note(self) -> str:
        """What the widget's own output says to readers without widgets."""
        follows = ": its text follows" if self.text_copy else ""
        return f"{self.kind[:1].upper()}{self.kind[1:]} (a widget){follows}"

    @property
    def saved_text(self) -> dict[str, str]:
        """The text copy as it stands: {"text/plain", "text/markdown"}."""
        return dict(self._copy)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        data, metadata = super()._repr_mimebundle_(**kwargs)
        data.update({"text/plain": self.note, "text/markdown": f"_{self.note}_"})
        return data, {**metadata, METADATA_KEY: {"widget": self.kind}}

    def _ipython_display_(self) -> None:
        from IPython.display import publish_display_data

        publish_display_data(*self._repr_mimebundle_())
        if self.text_copy:
            publish_display_data(self._copy, self._copy_metadata(),
                                 transient={"display_id": self._copy_id})
            self._copy_shown = True

    def show_text_copy(self, markdown: str, plain: str) -> None:
        """Replace the text copy, in place, from any thread."""
        self._copy = {"text/plain": plain, "text/markdown": markdown}
        if self._copy_shown:
            from IPython.display import publish_display_data

            publish_display_data(self._copy, self._copy_metadata(),
                                 transient={"display_id": self._copy_id}, update=True)

    def _copy_metadata(self) -> dict[str, Any]:
        return {METADATA_KEY: {"text_of": self.kind}}
