"""Exceptions users see. Each message says what went wrong and how to fix it."""

from __future__ import annotations


class LLMNotebookError(Exception):
    """Base class: catch this to catch every error the package raises on purpose."""


class ModelError(LLMNotebookError):
    """A model (or the server behind it) could not produce an answer.

    `retryable` is False when asking again cannot help, or the HTTP layer has already retried:
    `map` then records the failure instead of asking again.
    """

    def __init__(self, *args: object, retryable: bool = True) -> None:
        super().__init__(*args)
        self.retryable = retryable


class NeedsKeyException(ModelError):
    """The model needs an API key and none was found."""


class UnknownModelError(LLMNotebookError, LookupError):
    """No model is registered under that id or alias."""

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return str(self.args[0]) if self.args else ""


class AsyncOnlyModelError(UnknownModelError):
    """The model exists only as an async model (or only as a sync one)."""


class OptionsError(LLMNotebookError, ValueError):
    """An option is unknown to the model or has an invalid value."""


class AttachmentError(LLMNotebookError, ValueError):
    """An attachment could not be read, typed or accepted by the model."""
