"""API keys: stored in the user directory with 0600 permissions, never echoed.

Every key the package hands around is a `Secret`: the plain string where it is used (headers,
f-strings), masked in its repr, which is what tracebacks, frame dumps and containers show. Each
Secret made in this process is remembered, so that `redact_known()` can take any of them out of
text (error messages, logs) in every form a key takes there: as is, escaped as in a repr or JSON,
base64 (as in basic auth) and URL-encoded.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import threading
import unicodedata
from contextvars import ContextVar
from urllib.parse import quote, quote_plus

from .errors import LLMNotebookError
from .userfiles import JsonFile

KEYS_FILE = "keys.json"
#: Keys shorter than this are never redacted: replacing every "abc" in an error message would
#: mangle ordinary text, and no hosted API issues keys that short.
MIN_REDACTED_LENGTH = 8
MASK = "***"
#: Control, format (zero-width) and line/paragraph separator characters: never part of a key,
#: often pasted along with one, and refused in HTTP headers.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})

#: `(model, key)` while that model's execute() runs for a prompt, so a plain `Model` that calls
#: `self.get_key()` itself (as plugins written before `KeyModel` do) sees `prompt(key=...)`.
#: Tied to the model, so a model that prompts another one never hands it its key.
prompt_key: ContextVar[tuple[object, str | None] | None] = ContextVar(
    "llm_notebook_prompt_key", default=None)

_known: frozenset[str] = frozenset()
_known_lock = threading.Lock()


class Secret(str):
    """An API key: the plain string everywhere it is used (headers, f-strings), masked in its repr,
    which is what tracebacks, frame dumps and containers show. Making one remembers it for
    `redact_known()`."""

    __slots__ = ()

    def __new__(cls, value: str) -> Secret:
        secret = super().__new__(cls, value)
        _remember(secret)
        return secret

    def __repr__(self) -> str:
        return "'***'"


class InvalidKeyError(LLMNotebookError, ValueError):
    """A key or key name that cannot be stored; the message names the problem, never the key."""


def _remember(secret: str) -> None:
    global _known
    if secret not in _known:
        with _known_lock:
            _known = _known | {str(secret)}


def known_secrets() -> frozenset[Secret]:
    """Every key made a Secret in this process so far (resolved, stored or read)."""
    return frozenset(Secret(key) for key in _known)


def redact(text: str, secret: str | None) -> str:
    """`text` with every form of `secret` replaced by ***, so a key echoed back never shows.

    A key shorter than MIN_REDACTED_LENGTH (8) characters, surrounding whitespace aside, is left
    alone: it would match ordinary words.
    """
    if not text or not secret:
        return text
    pattern = _pattern_of(secret)
    return pattern.sub(MASK, text) if pattern is not None else text


def redact_known(text: str) -> str:
    """`text` with every form of every key in `known_secrets()` replaced by ***."""
    known = _known
    if not text or not known:
        return text
    pattern = _pattern(known)
    return pattern.sub(MASK, text) if pattern is not None else text


@functools.lru_cache(maxsize=64)
def _pattern_of(secret: str) -> re.Pattern | None:
    """The pattern of one key (cached: redaction runs on every chunk of an answer)."""
    return _pattern(frozenset({str(secret)}))


@functools.lru_cache(maxsize=64)
def _pattern(secrets: frozenset[str]) -> re.Pattern | None:
    forms = set().union(*(_forms(secret) for secret in secrets))
    if not forms:
        return None
    return re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)))


def _forms(secret: str) -> set[str]:
    """The strings `secret` can turn into inside text, each long enough to be told from it."""
    forms: set[str] = set()
    if len(secret.strip()) < MIN_REDACTED_LENGTH:
        return forms
    for value in {secret, secret.strip()}:
        raw = value.encode("utf-8", "surrogatepass")
        forms |= {value, json.dumps(value)[1:-1]}
        forms |= _escaped_forms([repr(c)[1:-1] for c in value])
        forms |= _escaped_forms([repr(bytes([b]))[2:-1] for b in raw])
        forms |= _url_forms(value)
        forms |= _base64_forms(raw)
    return {form for form in forms if len(form) >= MIN_REDACTED_LENGTH}


def _escaped_forms(pieces: list[str]) -> set[str]:
    """As inside a repr: escapes as Python writes them, with either quote escaped or neither."""
    plain = "".join(pieces)
    return {plain, "".join("\\'" if p == "'" else p for p in pieces),
            "".join('\\"' if p == '"' else p for p in pieces)}


def _url_forms(value: str) -> set[str]:
    encoded = {quote(value, safe=""), quote(value), quote_plus(value)}
    return encoded | {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), e) for e in encoded}


def _base64_forms(raw: bytes) -> set[str]:
    """The whole encoding (padded or not), and for each of the three alignments a key can have
    inside a longer encoded text (such as `user:key` in basic auth) the part that only it decides."""
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        forms |= {whole, whole.rstrip("=")}
        for offset in range(3):
            encoded = encode(b"\0" * offset + raw).decode("ascii")
            forms.add(encoded[4 if offset else 0:(offset + len(raw)) // 3 * 4])
    return forms


# -- the keys file -----------------------------------------------------------------------------
class _KeysFile(JsonFile):
    """keys.json, its values read as Secrets: a traceback shown while it is being changed, with
    the file's contents among its frames' variables, masks every key."""

    def parse(self, text: str) -> dict:
        return {name: Secret(value) if isinstance(value, str) else value
                for name, value in super().parse(text).items()}


keys_file = _KeysFile(KEYS_FILE, private=True)


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidKeyError("set_key needs a key name, such as 'openai'")
    return name.strip()


def _check_characters(value: str, *, what: str, fix: str) -> None:
    """InvalidKeyError, naming `what` holds the key, its first character no key can contain (an
    HTTP header refuses it) and where it is, never the key."""
    for position, char in enumerate(value, 1):
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise InvalidKeyError(
                f"{what} has a control or invisible character (U+{ord(char):04X}) at position "
                f"{position}: a key is one line of visible text. {fix}")
        if not char.isascii():
            raise InvalidKeyError(
                f"{what} has a character that is not ASCII at position {position} (a typographic "
                f"quote or dash pasted along with it?); API keys are ASCII. {fix}")


def _checked_value(value: str) -> Secret:
    """`value` without surrounding whitespace; a clear error for what no key can contain."""
    if not isinstance(value, str):
        raise InvalidKeyError(f"set_key needs the key as a string, not {type(value).__name__}")
    value = Secret(value.strip())
    if not value:
        raise InvalidKeyError("set_key needs a non-empty key value (it was empty or only spaces)")
    _check_characters(value, what="The key", fix="Copy it again and store it again")
    return value


def _stored() -> dict[str, str]:
    return {k: v for k, v in keys_file.read().items() if isinstance(v, str) and v.strip()}


def set_key(name: str, value: str) -> None:
    """Store `value` as the key called `name` (e.g. "openai"), without surrounding whitespace."""
    value = Secret(value) if isinstance(value, str) else value  # masked in tracebacks from here on
    name, value = _checked_name(name), _checked_value(value)
    keys_file.update(lambda keys: keys.__setitem__(name, value))


def delete_key(name: str) -> bool:
    """Forget the stored key `name`; returns whether one was stored."""
    return keys_file.update(lambda keys: keys.pop(name, None) is not None)


def stored_key_names() -> list[str]:
    """Names of the stored keys (never their values)."""
    return sorted(_stored())


def stored_key(name: str) -> Secret | None:
    value = _stored().get(name)
    return None if value is None else Secret(value.strip())


def resolve_key(*, explicit: str | None, model_key: str | None, name: str | None,
                env_var: str | None) -> Secret | None:
    """The first key found: argument, `model.key`, stored key `name`, then `env_var`.

    A key with a character no key can contain is an InvalidKeyError saying where it came from,
    before any request: an HTTP library would refuse it with an error about a header.
    """
    sources = ((explicit, "The key given with key=...", "Copy the key again and pass it again"),
               (model_key, "The model's key attribute (model.key)",
                "Copy the key again and set it again"),
               (stored_key(name) if name else None, f"The key stored as {name!r}",
                f"Store it again with llm_notebook.set_key({name!r}, ...)"),
               (os.environ.get(env_var) if env_var else None, f"${env_var}",
                "Copy the key again and set the variable again"))
    for candidate, what, fix in sources:
        if candidate is not None and not isinstance(candidate, str):
            raise InvalidKeyError(f"A key must be a string, not {type(candidate).__name__}")
        if candidate and candidate.strip():
            key = Secret(candidate.strip())
            _check_characters(key, what=what, fix=fix)
            return key
    return None


def has_key(name: str | None, env_var: str | None) -> bool:
    """Whether a stored or environment key exists (for listings; never reveals it). One that
    cannot be used counts: prompting says what is wrong with it."""
    try:
        return resolve_key(explicit=None, model_key=None, name=name, env_var=env_var) is not None
    except InvalidKeyError:
        return True


def get_key(explicit_key: str | None = None, key_alias: str | None = None,
            env_var: str | None = None, *, alias: str | None = None, env: str | None = None,
            input: str | None = None) -> Secret | None:
    """A key found the way `llm.get_key()` finds one, for plugins that call it: the given key
    (or, when it names a stored key, that one), then the stored key `alias`, then `env`."""
    explicit = input or explicit_key
    alias = alias or key_alias
    env = env or env_var
    if explicit:
        named = stored_key(explicit)
        return named if named is not None else resolve_key(explicit=explicit, model_key=None,
                                                           name=None, env_var=None)
    return resolve_key(explicit=None, model_key=None, name=alias, env_var=env)
