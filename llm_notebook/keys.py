"""API keys: stored in the user directory with 0600 permissions, never echoed."""

from __future__ import annotations

import json
import os
from contextvars import ContextVar

from .paths import user_dir, write_private

KEYS_FILE = "keys.json"

#: `(model, key)` while that model's execute() runs for a prompt, so a plain `Model` that calls
#: `self.get_key()` itself (as plugins written before `KeyModel` do) sees `prompt(key=...)`.
#: Tied to the model, so a model that prompts another one never hands it its key.
prompt_key: ContextVar[tuple[object, str | None] | None] = ContextVar(
    "llm_notebook_prompt_key", default=None)


class Secret(str):
    """An API key: the plain string everywhere it is used (headers, f-strings), masked in its repr,
    which is what tracebacks, frame dumps and containers show."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def redact(text: str, secret: str | None) -> str:
    """`text` with `secret` replaced, so a key echoed by a server never reaches the user."""
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def _keys_path():
    return user_dir() / KEYS_FILE


def _load() -> dict[str, str]:
    path = _keys_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def set_key(name: str, value: str) -> None:
    """Store `value` as the key called `name` (e.g. "openai")."""
    if not name or not value:
        raise ValueError("set_key needs a key name and a non-empty value")
    keys = _load()
    keys[name] = value
    write_private(_keys_path(), json.dumps(keys, indent=2))


def delete_key(name: str) -> bool:
    """Forget the stored key `name`; returns whether one was stored."""
    keys = _load()
    if keys.pop(name, None) is None:
        return False
    write_private(_keys_path(), json.dumps(keys, indent=2))
    return True


def stored_key_names() -> list[str]:
    """Names of the stored keys (never their values)."""
    return sorted(_load())


def stored_key(name: str) -> str | None:
    return _load().get(name)


def resolve_key(*, explicit: str | None, model_key: str | None, name: str | None,
                env_var: str | None) -> str | None:
    """The first key found: argument, `model.key`, stored key `name`, then `env_var`."""
    for candidate in (explicit, model_key, stored_key(name) if name else None,
                      os.environ.get(env_var) if env_var else None):
        if candidate:
            return candidate
    return None


def has_key(name: str | None, env_var: str | None) -> bool:
    """Whether a stored or environment key exists (for listings; never reveals it)."""
    return resolve_key(explicit=None, model_key=None, name=name, env_var=env_var) is not None
