"""A menu of the registered models, with search, bound to the default model `%%llm` uses."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ...errors import UnknownModelError
from .outputs import SavedAsText, TextFallback


def _magics() -> Any:
    """The loaded `%%llm` magics, if any (their `default_model` wins over the stored one)."""
    from IPython import get_ipython

    return getattr(get_ipython(), "_llm_notebook_magics", None)


def current_default() -> str | None:
    """The model id `%%llm` uses without -m (None if that name is no longer registered)."""
    from ...plugins import get_default_model, registry

    magics = _magics()
    try:
        return registry.resolve((magics.default_model if magics else "") or get_default_model())
    except UnknownModelError:
        return None


class ModelPicker(SavedAsText, widgets.VBox):
    """Choosing a model sets the default (stored, as `%llm default ID` does); `%llm default`
    moves the menu too. Typing in the search box narrows the menu by id or alias."""

    note = "Model picker (a widget): the default model follows as text"

    def __init__(self) -> None:
        from ...plugins import get_models_with_aliases

        super().__init__()
        self.add_class("llm-model-picker")
        self._choices = [(self._label(e.model_id, e.aliases), e.model_id, e.aliases)
                         for e in get_models_with_aliases()]
        self.search = widgets.Text(placeholder="search models", description="Search")
        self.menu = widgets.Dropdown(description="Model", layout=widgets.Layout(width="auto"))
        self.status = widgets.HTML()
        self.children = [widgets.HBox([self.search, self.menu]), self.status]
        self.fallback = TextFallback()
        self._quiet = False
        self._show(current_default())
        self.search.observe(lambda _: self._show(self.value), "value")
        self.menu.observe(self._on_menu, "value")
        magics = _magics()
        if magics is not None:
            magics.observe(self._on_magics_default, "default_model")

    @staticmethod
    def _label(model_id: str, aliases: list[str]) -> str:
        return f"{model_id} ({', '.join(aliases)})" if aliases else model_id

    @property
    def value(self) -> str | None:
        """The default model's id."""
        return current_default()

    @value.setter
    def value(self, name: str) -> None:
        from ...plugins import registry, set_default_model

        model_id = registry.resolve(name)
        set_default_model(model_id)
        magics = _magics()
        if magics is not None:
            magics.default_model = model_id
        self._show(model_id)

    def _show(self, selected: str | None) -> None:
        """The models matching the search; the default stays listed so the menu shows it."""
        query = self.search.value.strip().lower()
        options = [(label, model_id) for label, model_id, aliases in self._choices
                   if not query or query in " ".join([model_id, *aliases]).lower()
                   or model_id == selected]
        self._quiet = True
        try:
            self.menu.options = options
            self.menu.value = selected if any(m == selected for _, m in options) else None
        finally:
            self._quiet = False
        text = (f"Default model for %%llm: {selected}" if selected
                else "The default model is not registered: choose one")
        self.status.value = f"<small>{html.escape(text)}</small>"
        self.fallback.update(f"_{text}_", text)

    def _on_menu(self, change: dict[str, Any]) -> None:
        if self._quiet or change["new"] is None or change["new"] == self.value:
            return
        self.value = change["new"]

    def _on_magics_default(self, change: dict[str, Any]) -> None:
        self._show(current_default())

    def close(self) -> None:
        magics = _magics()
        if magics is not None:
            magics.unobserve(self._on_magics_default, "default_model")
        super().close()
