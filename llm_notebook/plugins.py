"""The model registry: pluggy hooks, entry-point plugins, run-time registration and aliases.

The hooks are llm's: `register_models`, `register_embedding_models` and `register_tools` fill
the registry; `register_commands`, `register_template_loaders` and `register_fragment_loaders`
add to llm's command line, which a notebook does not have, so a plugin that implements them is
named once in a warning (its models work all the same).
"""

from __future__ import annotations

import difflib
import importlib
import os
import threading
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from .errors import AsyncOnlyModelError, LLMNotebookError, UnknownModelError
from .userfiles import JsonFile, UserFile

PROJECT = "llm_notebook"
ENTRY_POINT_GROUP = "llm_notebook"
LOAD_PLUGINS_ENV = "LLM_NOTEBOOK_LOAD_PLUGINS"
DEFAULT_PLUGINS = ("llm_notebook.default_plugins.offline", "llm_notebook.default_plugins.openai_compat",
                   "llm_notebook.default_plugins.openai_endpoints",
                   "llm_notebook.default_plugins.anthropic",
                   "llm_notebook.default_plugins.offline_embeddings",
                   "llm_notebook.default_plugins.openai_embeddings")
FALLBACK_DEFAULT_MODEL = "echo"
ALIASES_FILE = "aliases.json"
DEFAULT_MODEL_FILE = "default_model.txt"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class _HookSpecs:
    @hookspec
    def register_models(self, register, model_aliases):
        """Call `register(model, async_model=None, aliases=())` for each model the plugin adds."""

    @hookspec
    def register_embedding_models(self, register):
        """Call `register(embedding_model, aliases=())` for each embedding model."""

    @hookspec
    def register_tools(self, register):
        """Call `register(tool_or_function_or_toolbox_class, name=None)` for each tool."""

    @hookspec
    def register_commands(self, cli):
        """llm's command line (not served here)."""

    @hookspec
    def register_template_loaders(self, register):
        """llm's template loaders (not served here)."""

    @hookspec
    def register_fragment_loaders(self, register):
        """llm's fragment loaders (not served here)."""


#: Hooks of llm's that only its command line uses.
UNSERVED_HOOKS = ("register_commands", "register_template_loaders", "register_fragment_loaders")


class PluginWarning(UserWarning):
    """A plugin failed to load or to register its models; the others still work."""


class AliasError(LLMNotebookError, ValueError):
    """An alias that would never be used or would loop, or a loop found in the aliases file."""


user_aliases_file = JsonFile(ALIASES_FILE)
default_model_file = UserFile(DEFAULT_MODEL_FILE)


@dataclass
class ModelWithAliases:
    """One registry entry: the sync and/or async model of an id, and its aliases."""

    model: Any
    async_model: Any
    aliases: list[str] = field(default_factory=list)

    @property
    def model_id(self) -> str:
        return (self.model or self.async_model).model_id

    def any_model(self):
        return self.model or self.async_model


def _normalize_dist(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


class Registry:
    """Plugins load once, lazily, on the first lookup; run-time `register()` wins over them."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(_HookSpecs)
        self._entries: dict[str, ModelWithAliases] = {}
        self._plugin_aliases: dict[str, str] = {}
        self._embedding_entries: dict[str, EmbeddingModelWithAliases] = {}
        self._embedding_aliases: dict[str, str] = {}
        self._tools: dict[str, Any] = {}
        self._loaded = False
        self._lock = threading.RLock()
        self.failed_plugins: dict[str, str] = {}
        #: Plugin name -> the hooks of llm's command line it implements, which are not served.
        self.unserved_hooks: dict[str, list[str]] = {}
        #: Called with a name no plugin registered (and with None before a listing); may register
        #: more models and return True to have the lookup tried again (the llm bridge).
        self.fallbacks: list[Any] = []

    # -- loading -------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for module_name in DEFAULT_PLUGINS:
                self._register_plugin(module_name, lambda m=module_name: importlib.import_module(m))
            for entry_point in self._selected_entry_points():
                name = entry_point.dist.name if entry_point.dist else entry_point.name
                self._register_plugin(name, entry_point.load)
            self._call_hooks()
            self._loaded = True

    def _selected_entry_points(self):
        wanted = os.environ.get(LOAD_PLUGINS_ENV)
        found = entry_points(group=ENTRY_POINT_GROUP)
        if wanted is None:
            return list(found)
        names = {_normalize_dist(n) for n in wanted.split(",") if n.strip()}
        return [ep for ep in found if ep.dist and _normalize_dist(ep.dist.name) in names]

    def _register_plugin(self, name: str, load) -> None:
        try:
            plugin = load()
            if self.pm.get_plugin(name) is None:
                self.pm.register(plugin, name=name)
        except Exception as exc:  # a broken plugin must not break the others
            self._report(name, "failed to load", exc)

    def _report(self, name: str, what: str, exc: BaseException) -> None:
        self.failed_plugins[name] = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"llm_notebook plugin {name!r} {what}: {type(exc).__name__}: {exc}",
                      PluginWarning, stacklevel=4)

    def _call_hooks(self, only: str | None = None) -> None:
        """Run the registering hooks of every plugin (or of the plugin named `only`); hooks of
        llm's command line are noted, once per plugin, in one warning."""
        for hook, what in (("register_models", "its models"),
                           ("register_embedding_models", "its embedding models"),
                           ("register_tools", "its tools")):
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                if only is not None and impl.plugin_name != only:
                    continue
                register = {"register_models": self._register_from_plugin,
                            "register_embedding_models": self._register_embedding_from_plugin,
                            }.get(hook) or self._tool_registrar(impl.plugin_name)
                given = {"register": register, "model_aliases": {}}
                try:  # an impl may take fewer arguments than the spec offers, as pluggy allows
                    impl.function(**{name: given[name] for name in impl.argnames})
                except Exception as exc:
                    if only is not None:  # added at run time: the caller sees why
                        raise
                    self._report(impl.plugin_name, f"failed to register {what}", exc)
        self._note_unserved(only)

    def _note_unserved(self, only: str | None) -> None:
        unserved: dict[str, list[str]] = {}
        for hook in UNSERVED_HOOKS:
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                if only is None or impl.plugin_name == only:
                    unserved.setdefault(impl.plugin_name, []).append(hook)
        for name, hooks in unserved.items():
            if self.unserved_hooks.get(name) == hooks:
                continue
            self.unserved_hooks[name] = hooks
            warnings.warn(f"llm_notebook plugin {name!r} implements {', '.join(hooks)}: these add "
                          "to llm's command line, which a notebook does not have, so they are not "
                          "called; its models and tools work as usual", PluginWarning, stacklevel=5)

    def register_plugin(self, plugin: Any, name: str | None = None) -> None:
        """Add a plugin object (module or class instance with hookimpls) at run time."""
        self._ensure_loaded()
        with self._lock:
            name = self.pm.register(plugin, name=name)
            self._call_hooks(only=name)

    # -- registration ---------------------------------------------------------------------
    def _store(self, model, async_model, aliases) -> ModelWithAliases:
        if model is None and async_model is None:
            raise ValueError("register() needs a model, an async model, or both")
        model_id = (model or async_model).model_id
        if not model_id:
            raise ValueError(f"{type(model or async_model).__name__} has no model_id")
        entry = ModelWithAliases(model, async_model, list(aliases or ()))
        self._forget_aliases(model_id)
        self._entries[model_id] = entry
        for alias in entry.aliases:
            self._plugin_aliases[alias] = model_id
        return entry

    def _register_from_plugin(self, model, async_model=None, aliases=()):
        self._store(model, async_model, aliases)

    def _register_embedding_from_plugin(self, model, aliases=()):
        self._store_embedding(model, aliases)

    def _store_embedding(self, model, aliases) -> EmbeddingModelWithAliases:
        model_id = getattr(model, "model_id", None)
        if not model_id:
            raise ValueError(f"{type(model).__name__} has no model_id")
        for alias in [a for a, target in self._embedding_aliases.items() if target == model_id]:
            del self._embedding_aliases[alias]
        entry = EmbeddingModelWithAliases(model, list(aliases or ()))
        self._embedding_entries[model_id] = entry
        for alias in entry.aliases:
            self._embedding_aliases[alias] = model_id
        return entry

    def register_embedding_model(self, model, aliases=()) -> EmbeddingModelWithAliases:
        """Register an embedding model at run time; an id registered again is replaced."""
        self._ensure_loaded()
        with self._lock:
            return self._store_embedding(model, aliases)

    def _tool_registrar(self, plugin_name: str | None):
        """llm's `register(tool, name=None)` for one plugin: functions become Tools, Toolbox
        classes are kept as classes; a name already taken gets `_1`, `_2`, ... added."""
        def register(tool: Any, name: str | None = None) -> None:
            from .tools import Tool, Toolbox

            if isinstance(tool, type):
                if not issubclass(tool, Toolbox):
                    raise TypeError(f"{tool.__name__} is a class but not a Toolbox: register a "
                                    "function, a Tool or a Toolbox subclass")
                tool.name = name or getattr(tool, "name", None) or tool.__name__
            elif not isinstance(tool, Tool):
                tool = Tool.function(tool, name=name)
            elif name:
                tool.name = name
            if plugin_name:
                tool.plugin = plugin_name
            wanted = name or tool.name
            candidate, suffix = wanted, 0
            while candidate in self._tools:
                suffix += 1
                candidate = f"{wanted}_{suffix}"
            self._tools[candidate] = tool

        return register

    def tools(self) -> dict[str, Any]:
        self._ensure_loaded()
        return dict(self._tools)

    def has_model(self, name: str) -> bool:
        """Whether `name` is a registered id or alias now (asking no fallback)."""
        self._ensure_loaded()
        return name in self._entries or name in self.aliases()

    def register(self, model, async_model=None, aliases=()) -> ModelWithAliases:
        """Register at run time (e.g. from a notebook cell); an id registered again is replaced."""
        self._ensure_loaded()
        with self._lock:
            return self._store(model, async_model, aliases)

    def unregister(self, model_id: str) -> None:
        self._ensure_loaded()
        with self._lock:
            self._entries.pop(model_id, None)
            self._forget_aliases(model_id)

    def _forget_aliases(self, model_id: str) -> None:
        for alias in [a for a, target in self._plugin_aliases.items() if target == model_id]:
            del self._plugin_aliases[alias]

    # -- aliases and default ---------------------------------------------------------------
    def user_aliases(self) -> dict[str, str]:
        return {str(k): v for k, v in user_aliases_file.read().items() if isinstance(v, str)}

    def set_alias(self, alias: str, model_id: str) -> None:
        """Store `alias` for `model_id` in the user aliases file (`model_id` may be an alias too:
        the alias is stored for the model it names now)."""
        self._ensure_loaded()
        if not isinstance(alias, str) or not alias.strip() or alias.split() != [alias]:
            raise AliasError(f"An alias needs a name without spaces, not {alias!r}")
        if alias in self._entries:
            raise AliasError(f"{alias!r} is the id of a registered model, so an alias with that "
                             "name would never be used: choose another name")
        if alias == model_id:
            raise AliasError(f"An alias cannot name itself: {alias!r}")
        chain = self._chain(model_id)
        if alias in chain:
            loop = " -> ".join([alias, *chain[:chain.index(alias) + 1]])
            raise AliasError(f"Alias {alias!r} for {model_id!r} would make a loop: {loop}. "
                             "Name the model itself instead")
        user_aliases_file.update(lambda aliases: aliases.__setitem__(alias, chain[-1]))

    def remove_alias(self, alias: str) -> bool:
        return user_aliases_file.update(lambda aliases: aliases.pop(alias, None) is not None)

    def aliases(self) -> dict[str, str]:
        """Every alias and the id it names; user aliases override plugin ones."""
        self._ensure_loaded()
        return {**self._plugin_aliases, **self.user_aliases()}

    def get_default_model(self) -> str:
        return default_model_file.read().strip() or FALLBACK_DEFAULT_MODEL

    def set_default_model(self, name: str | None) -> None:
        """Store the default model (checked to exist); None resets to the built-in default."""
        if name is None:
            default_model_file.remove()
            return
        self.resolve(name)
        default_model_file.write(name)

    # -- lookup -----------------------------------------------------------------------------
    def resolve(self, name: str | None) -> str:
        """The model id that `name` (an id or alias; None = default) refers to."""
        return self._chain(name)[-1]

    def _chain(self, name: str | None) -> list[str]:
        """`name`, the aliases it leads through, and the model id at the end."""
        if name is not None and not isinstance(name, str):
            raise TypeError(f"A model is named by its id or alias, as text, not a "
                            f"{type(name).__name__} ({name!r}): e.g. get_model('echo')")
        self._ensure_loaded()
        chain = [name or self.get_default_model()]
        aliases: dict[str, str] | None = None
        asked: set[str] = set()
        while chain[-1] not in self._entries:
            if aliases is None:
                aliases = self.aliases()
            target = aliases.get(chain[-1])
            if target is None and chain[-1] not in asked:
                asked.add(chain[-1])
                if self._ask_fallbacks(chain[-1]):
                    aliases = None
                    continue
            if target is None:
                raise UnknownModelError(self._unknown_message(chain))
            if target in chain:
                loop = " -> ".join(chain[chain.index(target):] + [target])
                raise AliasError(f"The aliases make a loop: {loop} (see {user_aliases_file.path}); "
                                 f"remove one with llm_notebook.remove_alias({target!r})")
            chain.append(target)
        return chain

    def _unknown_message(self, chain: list[str]) -> str:
        name = chain[-1]
        known = list(self._entries) + list(self.aliases())
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        via = f" (named by alias {' -> '.join(chain[:-1])})" if len(chain) > 1 else ""
        return (f"Unknown model {name!r}{via}.{hint} "
                "List the models with llm_notebook.get_models() (in a notebook: %llm models)")

    def _ask_fallbacks(self, name: str | None) -> bool:
        """Whether a fallback (the llm bridge) registered more models; `name` is the one looked
        up, None before a listing."""
        added = False
        for fallback in list(self.fallbacks):
            added = bool(fallback(self, name)) or added
        return added

    def entry(self, name: str | None) -> ModelWithAliases:
        return self._entries[self.resolve(name)]

    def get_model(self, name: str | None = None):
        entry = self.entry(name)
        if entry.model is None:
            raise AsyncOnlyModelError(
                f"Model {entry.model_id!r} is async-only: use llm_notebook.get_async_model"
                f"({entry.model_id!r}) and await its responses")
        return entry.model

    def get_async_model(self, name: str | None = None):
        entry = self.entry(name)
        if entry.async_model is None:
            raise AsyncOnlyModelError(
                f"Model {entry.model_id!r} has no async version: use llm_notebook.get_model"
                f"({entry.model_id!r})")
        return entry.async_model

    def entries(self) -> list[ModelWithAliases]:
        self._ensure_loaded()
        self._ask_fallbacks(None)
        aliases = self.aliases()
        result = []
        for model_id, entry in self._entries.items():
            names = sorted(a for a, target in aliases.items() if target == model_id)
            result.append(ModelWithAliases(entry.model, entry.async_model, names))
        return result


    # -- embedding models -----------------------------------------------------------------
    def embedding_entries(self) -> list[EmbeddingModelWithAliases]:
        self._ensure_loaded()
        aliases = {**self._embedding_aliases,
                   **{a: t for a, t in self.user_aliases().items() if t in self._embedding_entries}}
        return [EmbeddingModelWithAliases(entry.model,
                                          sorted(a for a, t in aliases.items() if t == model_id))
                for model_id, entry in self._embedding_entries.items()]

    def get_embedding_model(self, name: str):
        self._ensure_loaded()
        if name in self._embedding_entries:
            return self._embedding_entries[name].model
        target = self.user_aliases().get(name) or self._embedding_aliases.get(name)
        if target in self._embedding_entries:
            return self._embedding_entries[target].model
        known = list(self._embedding_entries) + list(self._embedding_aliases)
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"Unknown embedding model {name!r}.{hint} List them with "
                                "llm_notebook.get_embedding_models()")


@dataclass
class EmbeddingModelWithAliases:
    """One embedding model in the registry, and its aliases."""

    model: Any
    aliases: list[str] = field(default_factory=list)


def _llm_bridge(registry: Registry, name: str | None) -> bool:
    from . import bridge  # light: llm itself is imported only once the bridge is on and needed

    return bridge.fallback(registry, name)


registry = Registry()
registry.fallbacks.append(_llm_bridge)


def register(model, async_model=None, aliases=()):
    """Register a model (and/or its async twin) under its model_id, with optional aliases."""
    return registry.register(model, async_model, aliases)


def get_model(name: str | None = None):
    """The sync model named `name` (id or alias), or the default model."""
    return registry.get_model(name)


def get_async_model(name: str | None = None):
    """The async model named `name` (id or alias), or the default model."""
    return registry.get_async_model(name)


def get_models() -> list:
    """Every registered sync model."""
    return [e.model for e in registry.entries() if e.model is not None]


def get_async_models() -> list:
    """Every registered async model."""
    return [e.async_model for e in registry.entries() if e.async_model is not None]


def get_models_with_aliases() -> list[ModelWithAliases]:
    """Every registry entry with its sync model, async model and aliases."""
    return registry.entries()


def set_alias(alias: str, model_id: str) -> None:
    registry.set_alias(alias, model_id)


def remove_alias(alias: str) -> bool:
    return registry.remove_alias(alias)


def get_default_model() -> str:
    return registry.get_default_model()


def set_default_model(name: str | None) -> None:
    registry.set_default_model(name)


def register_embedding_model(model, aliases=()):
    """Register an embedding model at run time (from a notebook cell), with optional aliases."""
    return registry.register_embedding_model(model, aliases)


def get_embedding_model(name: str):
    """The embedding model named `name` (id or alias)."""
    return registry.get_embedding_model(name)


def get_embedding_models() -> list:
    """Every registered embedding model."""
    return [entry.model for entry in registry.embedding_entries()]


def get_embedding_models_with_aliases() -> list[EmbeddingModelWithAliases]:
    """Every embedding model with its aliases."""
    return registry.embedding_entries()


def get_tools() -> dict[str, Any]:
    """The tools plugins registered, by name: `Tool`s, and `Toolbox` classes to instantiate."""
    return registry.tools()
