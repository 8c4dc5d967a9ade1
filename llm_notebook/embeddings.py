"""Embedding models, with the names and behaviour of `llm.EmbeddingModel`.

A plugin subclasses `EmbeddingModel`, sets `model_id` (and `batch_size`, `needs_key`,
`key_env_var`, `supports_binary` as it needs) and implements `embed_batch(items, *, key=None)`,
which returns one vector (a list of floats) per item. Callers use `embed(item)` for one vector and
`embed_multi(items, batch_size=None)` for many, sent `batch_size` items per call.

Plugins written before `key=` existed define `embed_batch(self, items)` and call
`self.get_key()` inside it; that finds the key given to `embed(key=...)` without the model's
`key` attribute being changed, so two threads embedding with different keys never mix them.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import LLMNotebookError, ModelError
from .keys import Secret, prompt_key
from .model_keys import key_for, masked

__all__ = ["EmbeddingInputError", "EmbeddingModel"]

Item = str | bytes
Vector = list[float]


class EmbeddingInputError(LLMNotebookError, ValueError):
    """An item the model cannot embed (binary for a text-only model, not text at all, ...)."""


class EmbeddingModel(ABC):
    """Base class of embedding models: `embed_batch` is the one method a plugin writes."""

    model_id: str = ""
    #: Most items sent in one `embed_batch` call; None sends everything in one call.
    batch_size: int | None = None
    supports_text: bool = True
    supports_binary: bool = False
    needs_key: str | None = None
    key_env_var: str | None = None
    #: Length of the vectors, where the model knows it before embedding anything (so that
    #: `llm_notebook.embed([])` can return a (0, d) array); None when it does not.
    dimensions: int | None = None
    #: Batches `llm_notebook.embed` may send at once, each from its own thread. 1 for models
    #: that must not run twice at the same time (most in-process ones); HTTP models raise it.
    concurrency: int = 1

    @property
    def key(self) -> Secret | None:
        """The key set on the model itself, kept as a `Secret` so reprs never show it."""
        return self.__dict__.get("_llm_notebook_key")

    @key.setter
    def key(self, value: str | None) -> None:
        self.__dict__["_llm_notebook_key"] = None if value is None else Secret(value)

    def __str__(self) -> str:
        return f"{type(self).__name__}: {self.model_id}"

    def __repr__(self) -> str:
        return f"<{self}>"

    def get_key(self, explicit_key: str | None = None) -> Secret | None:
        """The key to use: argument, `self.key`, stored key `needs_key`, then `key_env_var`.

        Called with no argument from inside `embed_batch`, the argument is the key given to
        `embed(key=...)` or `embed_multi(key=...)`.
        """
        return key_for(self, explicit_key, call="embed")

    # -- embedding ---------------------------------------------------------------------------
    def embed(self, item: Item, *, key: str | None = None) -> Vector:
        """The vector of one text (or, where `supports_binary`, one bytes value)."""
        key = masked(key)
        self.check_item(item)
        return self.embed_checked_batch([item], key=self.get_key(key))[0]

    def embed_multi(self, items: Iterable[Item], batch_size: int | None = None, *,
                    key: str | None = None) -> Iterator[Vector]:
        """One vector per item, in order, as a generator; `batch_size` items go in each call to
        `embed_batch` (the model's own `batch_size` when not given; None: all in one call)."""
        key = masked(key)
        size = self.effective_batch_size(batch_size)
        resolved = self.get_key(key)
        checked = (self.check_item(item) for item in items)
        for batch in _batches(checked, size):
            yield from self.embed_checked_batch(batch, key=resolved)

    def effective_batch_size(self, batch_size: int | None) -> int | None:
        """`batch_size` if given, else the model's own; an error for one that is no count."""
        size = self.batch_size if batch_size is None else batch_size
        if size is not None and (type(size) is not int or size < 1):
            raise ValueError(f"batch_size must be a whole number of at least 1 (got {size!r})")
        return size

    def check_item(self, item: Any, label: Any = None) -> Item:
        """`item` if this model can embed it; else an error naming it by `label` (or by its
        place in the input, when no label is given)."""
        where = "" if label is None else f" at {label!r}"
        if isinstance(item, str):
            if not self.supports_text:
                raise EmbeddingInputError(f"The item{where} is text, and embedding model "
                                          f"{self.model_id!r} embeds binary data only (bytes)")
            return item
        if isinstance(item, (bytes, bytearray, memoryview)):
            if not self.supports_binary:
                raise EmbeddingInputError(f"The item{where} is bytes, and embedding model "
                                          f"{self.model_id!r} embeds text only: decode it first")
            return bytes(item)
        kinds = " or ".join(k for k, ok in (("text", self.supports_text),
                                            ("bytes", self.supports_binary)) if ok)
        raise EmbeddingInputError(f"The item{where} is {_describe(item)}, not {kinds}: "
                                  "embed only text (fill or drop missing values first)")

    def embed_checked_batch(self, items: list[Item], *, key: Secret | None) -> list[Vector]:
        """`embed_batch` on items already checked, with an error when the model returns a
        number of vectors other than one per item."""
        if _takes_key(type(self).embed_batch):
            vectors = list(self.embed_batch(items, key=key))
        else:
            running = prompt_key.set((self, key))
            try:
                vectors = list(self.embed_batch(items))
            finally:
                prompt_key.reset(running)
        if len(vectors) != len(items):
            raise ModelError(f"Embedding model {self.model_id!r} returned {len(vectors)} vectors "
                             f"for {len(items)} items", retryable=False)
        return vectors

    @abstractmethod
    def embed_batch(self, items: Iterable[Item], *, key: str | None = None) -> Iterator[Vector]:
        """One vector (a list of floats) per item of the batch, in order."""


def _batches(items: Iterable[Item], size: int | None) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


@functools.cache
def _takes_key(embed_batch: Any) -> bool:
    """Whether a plugin's `embed_batch` accepts `key=` (those written before it was added do not)."""
    try:
        parameters = inspect.signature(embed_batch).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "key" or p.kind is p.VAR_KEYWORD for p in parameters)


def _describe(item: Any) -> str:
    if item is None:
        return "None (a missing value)"
    if isinstance(item, float) and item != item:
        return "NaN (a missing value)"
    shown = repr(item)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"{type(item).__name__} {shown}"
