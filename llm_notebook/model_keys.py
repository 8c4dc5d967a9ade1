"""The key a model uses, found the same way for chat models and embedding models.

A model names where its key may be (`needs_key`: a stored key's name; `key_env_var`) and may
hold one itself (`model.key`); a key given to the call comes first. While the model's own code
runs for a call, `keys.prompt_key` holds that call's key, so a plugin that calls
`self.get_key()` with no argument sees it.
"""

from __future__ import annotations

from typing import Any

from .errors import NeedsKeyException
from .keys import Secret, prompt_key, resolve_key


def masked(key: Any) -> Any:
    """A key given to a call, as a `Secret` from the start, so that the call's frames in a
    verbose traceback show it masked; anything else as it is (resolving says what is wrong)."""
    return Secret(key) if isinstance(key, str) and not isinstance(key, Secret) else key


def key_for(model: Any, explicit_key: str | None, *, call: str) -> Secret | None:
    """The key `model` should use: `explicit_key`, the running call's key, `model.key`, the
    stored key `model.needs_key`, then `$model.key_env_var`. None when the model needs no key;
    NeedsKeyException, saying the ways to give one (`call` is what takes `key=...`), when it
    needs one and none is found."""
    running = prompt_key.get()
    if explicit_key is None and running is not None and running[0] is model:
        explicit_key = running[1]
    key = resolve_key(explicit=explicit_key, model_key=model.key, name=model.needs_key,
                      env_var=model.key_env_var)
    if key is None and model.needs_key:
        raise NeedsKeyException(missing_key_message(model, call=call))
    return key


def missing_key_message(model: Any, *, call: str) -> str:
    ways = [f"pass key=... to {call}()",
            f"store one with llm_notebook.set_key({model.needs_key!r}, ...) "
            f"(in a notebook: %llm keys set {model.needs_key})"]
    if model.key_env_var:
        ways.append(f"set the {model.key_env_var} environment variable")
    return f"Model {model.model_id!r} needs an API key: " + ", or ".join(ways)
