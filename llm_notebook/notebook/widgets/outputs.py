"""Markdown inside widgets, and the text a saved notebook shows where widgets do not render."""

from __future__ import annotations

import secrets
from typing import Any

import ipywidgets as widgets


def markdown_output(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """One display_data output (nbformat), for an `Output` widget's `outputs`."""
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


def show_markdown(output: widgets.Output, markdown: str, plain: str | None = None) -> None:
    """Replace what `output` shows with `markdown` (thread-safe: one trait assignment)."""
    output.outputs = (markdown_output({"text/plain": plain if plain is not None else markdown,
                                       "text/markdown": markdown}),)


class TextFallback:
    """An output holding a widget's content as Markdown, for readers that render no widgets.

    Saved notebooks keep display data, not live widgets: GitHub and nbconvert show this
    output's Markdown. JupyterLab renders its widget view instead: a hidden label (whose value
    is the plain text, for tools that rebuild text from saved widget state), so only the live
    widget is seen. `update()` replaces the text in place, by display id, from any thread;
    re-rendering the hidden label never disturbs the live widget (its focus, its typing).
    """

    def __init__(self) -> None:
        self.carrier = widgets.Label(layout=widgets.Layout(display="none"))
        self.display_id = f"llm-notebook-{secrets.token_hex(8)}"
        self.data = {"text/plain": "", "text/markdown": ""}
        self._shown = False

    def _bundle(self) -> dict[str, Any]:
        return {**self.carrier._repr_mimebundle_(), **self.data}

    def display(self) -> None:
        from IPython.display import publish_display_data

        publish_display_data(self._bundle(), transient={"display_id": self.display_id})
        self._shown = True

    def update(self, markdown: str, plain: str) -> None:
        self.data = {"text/plain": plain, "text/markdown": markdown}
        self.carrier.value = plain
        if self._shown:
            from IPython.display import publish_display_data

            publish_display_data(self._bundle(), transient={"display_id": self.display_id},
                                 update=True)


class SavedAsText:
    """Mixin for a widget: displayed, it is followed by a TextFallback output kept up to date.

    The widget's own output says (in `note`) that its text follows, for readers without widgets.
    """

    note = "A widget: its text follows"
    fallback: TextFallback

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle.update({"text/plain": self.note, "text/markdown": f"_{self.note}_"})
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
        self.fallback.display()
