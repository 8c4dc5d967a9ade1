"""A menu of the registered models, with search, bound to the default model `%%llm` uses."""

from __future__ import annotations

from typing import Any

import traitlets

from ...errors import UnknownModelError
from .saved import SavedWidget, module_source, style_source


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


def default_text(model_id: str | None) -> str:
    return (f"Default model for %%llm: {model_id}" if model_id
            else "The default model is not registered: choose one")


class ModelPicker(SavedWidget):
    """Choosing a model sets the default (stored, as `%llm default ID` does); `%llm default`
    moves the menu too. Typing in the search box narrows the menu by id or alias."""

    _esm = module_source("picker.js")
    _css = style_source("picker.css")
    kind = "model picker"

    #: Every registered model: {"id", "aliases"}.
    choices = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: The default model's id ("" when the default is not registered).
    selected = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)

    def __init__(self) -> None:
        from ...plugins import get_models_with_aliases

        super().__init__(choices=[{"id": entry.model_id, "aliases": list(entry.aliases)}
                                  for entry in get_models_with_aliases()])
        self.add_class("llm-model-picker")
        self.on_msg(self._on_front_end_message)
        self._show(current_default())
        magics = _magics()
        if magics is not None:
            magics.observe(self._on_magics_default, "default_model")

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

    def _show(self, model_id: str | None) -> None:
        self.selected = model_id or ""
        self.status = default_text(model_id)
        self.show_text_copy(f"_{self.status}_", self.status)

    def _on_front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not (isinstance(content, dict) and content.get("event") == "choose"):
            return
        try:
            self.value = content.get("id")
        except Exception as exc:  # e.g. unregistered since the menu was filled: say so there
            self.status = str(exc).splitlines()[0] if str(exc) else type(exc).__name__

    def _on_magics_default(self, change: dict[str, Any]) -> None:
        self._show(current_default())

    def close(self) -> None:
        magics = _magics()
        if magics is not None:
            magics.unobserve(self._on_magics_default, "default_model")
        super().close()
