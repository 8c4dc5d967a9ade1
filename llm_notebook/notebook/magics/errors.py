"""The one error the magics raise: a user error shown as one line, without a traceback."""

from __future__ import annotations


class LLMError(Exception):
    """A user error, shown as one line without a traceback (IPython honours _render_traceback_)."""

    def __init__(self, message: str, kind: str = "Error") -> None:
        super().__init__(message)
        self.kind = kind

    def _render_traceback_(self) -> list[str]:
        return [f"{self.kind}: {self}"]
