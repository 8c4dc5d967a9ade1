"""OpenAI-compatible endpoints: local servers by preset name, any URL, and the user's config file.

`add_openai_endpoint()` registers an endpoint's models at run time, chat models and embedding
models; `openai_endpoints.json` in the user directory lists endpoints to register whenever the
plugins load (no network at load time, so the file names its models): the default plugins
`default_plugins.openai_endpoints` (chat) and `default_plugins.openai_embeddings` do that.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from . import http
from .default_plugins.openai_compat import chat_models
from .default_plugins.openai_embeddings import OpenAIEmbeddingModel
from .errors import ModelError
from .paths import user_dir
from .plugins import PluginWarning, register, register_embedding_model

ENDPOINTS_FILE = "openai_endpoints.json"
#: Where the usual local servers listen by default.
PRESETS = {
    "ollama": "http://localhost:11434/v1",
    "llama.cpp": "http://localhost:8080/v1",
    "lmstudio": "http://localhost:1234/v1",
    "vllm": "http://localhost:8000/v1",
}
#: How each preset's server takes a schema: llama.cpp's server (llama-cpp-python's too) wants
#: `{"type": "json_object", "schema": ...}` and refuses OpenAI's `json_schema` form.
SCHEMA_STYLES = {"llama.cpp": "json_object"}
_VISION_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
_FIELDS = ("base_url", "name", "models", "embedding_models", "api_key", "api_key_env", "vision",
           "aliases", "schema_style")


def resolve_base_url(base_url: str) -> tuple[str, str]:
    """(URL, default name) for a preset name or a URL."""
    if not isinstance(base_url, str):
        raise TypeError(f"add_openai_endpoint needs a base URL or a preset name as text, not a "
                        f"{type(base_url).__name__}: e.g. 'http://localhost:8080/v1' or "
                        f"one of {', '.join(PRESETS)}")
    preset = PRESETS.get(base_url.strip().lower())
    if preset:
        return preset, base_url.strip().lower()
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Not a base URL or a preset: {base_url!r}. Give an http(s) URL such as "
                         f"'http://localhost:8080/v1', or one of: {', '.join(PRESETS)}")
    return url, parts.hostname or parts.netloc


def list_endpoint_models(base_url: str, api_key: str | None = None) -> list[str]:
    """The model ids that the server's `GET /models` lists."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    request = http.Request(f"{base_url}/models", method="GET", headers=headers, secret=api_key,
                           key_hint="Give the endpoint's key with api_key=... or api_key_env=...")
    body = http.get_json(request)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise request.error(f"{request.url} did not list models (no 'data' list in its answer)")
    return [item["id"] for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)]


def _aliases_by_model(aliases, model_ids: list[str]) -> dict[str, tuple[str, ...]]:
    if not aliases:
        return {}
    if isinstance(aliases, Mapping):
        unknown = set(aliases) - set(model_ids)
        if unknown:
            raise ValueError(f"aliases names models the endpoint does not register: "
                             f"{', '.join(sorted(unknown))}")
        return {m: (a,) if isinstance(a, str) else tuple(a) for m, a in aliases.items()}
    if len(model_ids) != 1:
        raise ValueError("With several models, give aliases as a dict {model_id: alias}")
    return {model_ids[0]: (aliases,) if isinstance(aliases, str) else tuple(aliases)}


def _register_endpoint(register, base_url: str, *, name: str | None, models: Iterable[str] | None,
                       api_key: str | None, api_key_env: str | None, vision: bool, aliases: Any,
                       embedding_models: Iterable[str] = (),
                       register_embedding=None, schema_style: str | None = None) -> list[str]:
    """Register the endpoint's chat models with `register` and, given `register_embedding`,
    its embedding models with that; returns the ids of both, chat models first."""
    url, default_name = resolve_base_url(base_url)
    name = name or default_name
    embedding_ids = _ids(embedding_models, "embedding_models")
    if models is None:  # what the server lists, less the embedding models it serves too
        model_ids = [m for m in list_endpoint_models(url, api_key) if m not in embedding_ids]
    else:
        model_ids = _ids(models, "models")
    alias_map = _aliases_by_model(aliases, model_ids + embedding_ids)
    keys = {"api_key": api_key, "needs_key": name if api_key_env else None,
            "key_env_var": api_key_env}
    if register is not None:
        for model_id in model_ids:
            register(*chat_models(model_id, base_url=url,
                                  attachment_types=_VISION_TYPES if vision else frozenset(),
                                  supports_schema=True, supports_tools=True,
                                  schema_style=schema_style or SCHEMA_STYLES.get(default_name,
                                                                                "json_schema"),
                                  description=f"{model_id} on {name} ({url})",
                                  key_hint=_key_hint(name, api_key_env, "prompt"), **keys),
                     aliases=alias_map.get(model_id, ()))
    if register_embedding is not None:
        for model_id in embedding_ids:
            register_embedding(OpenAIEmbeddingModel(model_id, base_url=url, **keys,
                                                    key_hint=_key_hint(name, api_key_env,
                                                                       "embed")),
                               aliases=alias_map.get(model_id, ()))
    return model_ids + embedding_ids


def _key_hint(name: str, api_key_env: str | None, call: str) -> str:
    """What to do when the server rejects the key; `call` is what takes `key=...`."""
    if api_key_env:
        return (f"Set another with llm_notebook.set_key({name!r}, ...) or ${api_key_env}, or "
                f"pass key=... to {call}().")
    return (f"Pass key=... to {call}(), or add the endpoint again with api_key=... or "
            "api_key_env=...")


def _ids(models: Iterable[str], field: str) -> list[str]:
    if isinstance(models, str):
        return [models]
    ids = list(models)
    if not all(isinstance(m, str) and m for m in ids):
        raise ValueError(f'"{field}" must list model ids, e.g. ["nomic-embed-text"]')
    return ids


def add_openai_endpoint(base_url: str, *, name: str | None = None,
                        models: Iterable[str] | None = None, api_key: str | None = None,
                        api_key_env: str | None = None, vision: bool = False,
                        aliases: Mapping[str, str | Iterable[str]] | Iterable[str] | str | None = None,
                        embedding_models: Iterable[str] = (),
                        schema_style: str | None = None) -> list[str]:
    """Register the models of an OpenAI-compatible server; returns the ids registered.

    `base_url` is a URL ending in /v1 or a preset: ollama, llama.cpp, lmstudio, vllm. With
    `models=None` the server is asked which models it serves. `api_key_env` names an environment
    variable holding the key (a key stored with `set_key(name, ...)` works too); `vision=True`
    lets the models take images; `aliases` maps model ids to aliases. `embedding_models` are
    registered as embedding models (for `llm_notebook.embed`), through the server's
    `/embeddings`, and left out of the chat models it lists. `schema_style` is how the server
    takes `schema=`: "json_schema" (OpenAI's form, the default) or "json_object" (llama.cpp's
    server; the llama.cpp preset chooses it).
    """
    try:
        return _register_endpoint(register, base_url, name=name, models=models, api_key=api_key,
                                  api_key_env=api_key_env, vision=vision, aliases=aliases,
                                  embedding_models=embedding_models,
                                  register_embedding=register_embedding_model,
                                  schema_style=schema_style)
    except ModelError as exc:
        raise ModelError(f"Cannot list the models of {base_url}: {exc}") from None


def endpoints_path():
    return user_dir(create=False) / ENDPOINTS_FILE


def register_configured_endpoints(register, *, embedding: bool = False) -> None:
    """Register the endpoints listed in the user's `openai_endpoints.json`: their chat models,
    or with `embedding=True` their embedding models. A bad entry warns in the chat pass (the
    embedding pass skips it quietly, so each problem is told once)."""
    path = endpoints_path()
    if not path.exists():
        return
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if not embedding:
            warnings.warn(f"{path} is not valid JSON ({exc}); its endpoints are not registered",
                          PluginWarning, stacklevel=2)
        return
    if not isinstance(entries, list):
        entries = [entries]
    for number, entry in enumerate(entries, 1):
        try:
            _register_entry(entry, register=None if embedding else register,
                            register_embedding=register if embedding else None)
        except (ValueError, TypeError) as exc:
            if not embedding:
                warnings.warn(f"{path}, endpoint {number}: {exc}", PluginWarning, stacklevel=2)


def _register_entry(entry: Any, *, register, register_embedding) -> None:
    if not isinstance(entry, dict) or "base_url" not in entry:
        raise ValueError('each endpoint needs an object with "base_url" and "models"')
    unknown = set(entry) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown fields {', '.join(sorted(unknown))} (known: {', '.join(_FIELDS)})")
    models = entry.get("models", [] if entry.get("embedding_models") else None)
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models) or (
            not models and not entry.get("embedding_models")):
        raise ValueError('"models" must list the model ids, e.g. ["llama3.2"]')
    embedding_models = entry.get("embedding_models", [])
    if not isinstance(embedding_models, list):
        raise ValueError('"embedding_models" must list the model ids, e.g. ["nomic-embed-text"]')
    _register_endpoint(register, entry["base_url"], name=entry.get("name"), models=models,
                       api_key=entry.get("api_key"), api_key_env=entry.get("api_key_env"),
                       vision=bool(entry.get("vision", False)), aliases=entry.get("aliases"),
                       embedding_models=embedding_models, register_embedding=register_embedding,
                       schema_style=entry.get("schema_style"))
