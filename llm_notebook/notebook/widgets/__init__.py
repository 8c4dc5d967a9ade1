"""Widgets: a chat, a model picker, a live usage table and code actions for answers.

Imported only when one of them is asked for, so `import llm_notebook` stays light. Each is one
anywidget drawn from its own state, which a saved notebook keeps (see saved.py).
"""

from __future__ import annotations

from typing import Any

from .chat import Chat
from .code_actions import CodeActions, code_actions
from .picker import ModelPicker
from .turns import Turn
from .usage_widget import UsageView

__all__ = ["Chat", "CodeActions", "ModelPicker", "Turn", "UsageView", "chat", "code_actions",
           "model_picker", "usage_view"]


def chat(model: Any = None, *, system: str | None = None, conversation: Any = None,
         tools: Any = None, approve: bool = False, chain_limit: int | None = None,
         **options: Any) -> Chat:
    """A chat widget with `model` (id, alias or model; default: the default model).

    `conversation` continues an existing conversation (its earlier turns are shown);
    `options` are model options sent with every message (`chat.options` changes them).
    `tools` the model may call (each message runs as a chain, its calls shown as blocks);
    `approve=True` asks before each call; `chain_limit` caps the rounds of calls.
    """
    return Chat(model, system=system, conversation=conversation, tools=tools, approve=approve,
                chain_limit=chain_limit, **options)


def model_picker() -> ModelPicker:
    """A menu of the registered models, with search, that sets the default model of %%llm."""
    return ModelPicker()


def usage_view() -> UsageView:
    """The session's usage by model, with totals, updating as responses finish."""
    return UsageView()
