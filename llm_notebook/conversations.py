"""The conversations of a notebook: the last one per model, and named ones that persist.

Every prompt belongs to a conversation. Without `continue_last` or a name it starts a new one,
which becomes the model's last once the prompt is accepted; `continue_last` resumes that one.
The session keeps one account (`session_conversations`), so a conversation named in a `%%llm`
cell is the one `llm_notebook.conversation(name)` returns, and the other way round.
"""

from __future__ import annotations

from typing import Any

from .errors import LLMNotebookError


class ConversationError(LLMNotebookError, ValueError):
    """A named conversation was asked to talk to a model other than its own."""


class Conversations:
    """Named conversations and the last conversation of each model id."""

    def __init__(self) -> None:
        self._last: dict[str, Any] = {}
        self._named: dict[str, Any] = {}

    def for_prompt(self, model: Any, *, continue_last: bool = False, name: str | None = None):
        """The conversation a prompt to `model` goes into."""
        if name is not None:
            conversation = self._named.get(name)
            if conversation is None:
                conversation = self._named[name] = model.conversation(name=name)
            elif conversation.model.model_id != model.model_id:
                raise ConversationError(
                    f"Conversation {name!r} is with model {conversation.model.model_id!r}, not "
                    f"{model.model_id!r}: leave out the model, or name a new conversation")
        elif continue_last and model.model_id in self._last:
            conversation = self._last[model.model_id]
        else:
            conversation = model.conversation()
        return conversation

    def remember(self, conversation: Any) -> None:
        """Make `conversation` its model's last one (once a prompt to it was accepted)."""
        self._last[conversation.model.model_id] = conversation

    def named(self, name: str):
        """The named conversation, or None."""
        return self._named.get(name)

    def names(self) -> list[str]:
        return sorted(self._named)

    def reset(self, name: str | None = None) -> int:
        """Forget the named conversation, or (no name) every conversation; returns how many."""
        if name is not None:
            conversation = self._named.pop(name, None)
            self._last = {k: v for k, v in self._last.items() if v is not conversation}
            return int(conversation is not None)
        count = len({id(c) for c in [*self._last.values(), *self._named.values()]})
        self._last.clear()
        self._named.clear()
        return count


#: The conversations of this session: the magics and `conversation()` share them.
session_conversations = Conversations()


def conversation(name: str, *, model: Any = None):
    """The session's conversation called `name`: started with `model` (an id, alias or model;
    default: the default model) if it is new, else the one under way.

    Naming a model other than the conversation's own is a ConversationError: its earlier turns
    were answered by that model.
    """
    from .model_choice import pick_model

    if not isinstance(name, str) or not name.strip():
        raise ConversationError(f"A conversation needs a name (a non-empty string), not {name!r}")
    existing = session_conversations.named(name)
    if existing is not None and model is None:
        return existing
    return session_conversations.for_prompt(pick_model(model), name=name)
