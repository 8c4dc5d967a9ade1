"""A chat's exchanges: what was asked, what came back, and how each reads as text.

The answer's text and status are its response's; a Turn only adds what the chat knows besides
(the attachments it resolved, an error that came before any response, the usage it counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...markdown import escape_inline, safe_markdown
from ...responses import Usage
from ...usage import SessionUsage, saved_text, summed
from .. import render

#: Characters per token, for estimating what a stopped answer cost when the model never said.
CHARS_PER_TOKEN = 4


@dataclass
class Turn:
    """One exchange: the message sent and the answer (`status` as the response's)."""

    prompt: str
    model: str
    attachments: list[Any] = field(default_factory=list)
    status: str = "pending"
    error: str | None = None
    usage: Usage | None = None
    #: True when `usage` is an estimate (the answer stopped before the model reported counts).
    usage_estimated: bool = False
    duration_ms: int = 0
    response: Any = field(default=None, repr=False)
    #: For a message sent with tools: the chain's answer (every round, and the calls' blocks).
    chain_answer: Any = field(default=None, repr=False)

    @property
    def text(self) -> str:
        """The answer's text, as its response (or, with tools, its chain) keeps it."""
        if self.chain_answer is not None:
            return self.chain_answer.text
        return self.response.text_so_far() if self.response is not None else ""

    @property
    def partial(self) -> bool:
        """An answer that stopped before its end (it stays in the conversation, marked so)."""
        return self.status in ("interrupted", "error") and bool(self.text)

    def asked_markdown(self) -> str:
        """The message as typed (line breaks kept: Markdown would join the lines), attachments."""
        asked = (safe_markdown(self.prompt, hard_breaks=True) if self.prompt
                 else "_(attachments only)_")
        return asked + (f"\n\n{attachments_note(self.attachments)}" if self.attachments else "")

    def answer_markdown(self) -> str:
        if self.chain_answer is not None:
            return self.chain_answer.markdown()
        return render.Answer(self.response).markdown() if self.response is not None else ""

    def markdown(self) -> str:
        """The exchange as Markdown, as a saved notebook shows it."""
        parts = [f"**You**\n\n{self.asked_markdown()}"]
        if self.response is not None and (self.text or self.status == "done"):
            parts.append(f"**{self.model}**\n\n{self.answer_markdown() or '_(no text)_'}")
        if self.error:
            parts.append(error_markdown(self.error))
        return "\n\n".join(parts)

    def plain(self) -> str:
        lines = [f"You: {self.prompt}"]
        if self.response is not None and (self.text or self.status == "done"):
            lines.append(f"{self.model}: {self.text}" + (" [partial]" if self.partial else ""))
        if self.error:
            lines.append(f"Error: {self.error}")
        return "\n".join(lines)


def attachments_note(attachments: list[Any]) -> str:
    described = []
    for attachment in attachments:
        size = attachment.size()
        described.append(f"`{attachment.resolve_type()}`" + (f" ({size:,} bytes)" if size else ""))
    return "_Attached:_ " + ", ".join(described)


def error_markdown(message: str) -> str:
    """An error line (the words may be a server's), shown as it is."""
    return f"**Error:** {escape_inline(message)}"


def estimate_tokens(*texts: str | None) -> int:
    """A rough token count of `texts` (about four characters a token)."""
    characters = sum(len(text) for text in texts if text)
    return -(-characters // CHARS_PER_TOKEN)


def estimated_usage(response: Any) -> Usage:
    """What a stopped answer probably cost: its conversation so far and prompt in, its text out."""
    earlier = []
    conversation = response.conversation
    for other in (conversation.responses if conversation is not None else ()):
        if other is not response:
            earlier += [other.prompt.prompt, other.text_so_far()]
    asked = estimate_tokens(response.prompt.system, response.prompt.prompt, *earlier)
    return Usage(input=asked, output=estimate_tokens(response.text_so_far()))


def usage_line(usage: SessionUsage, *, estimated: int = 0) -> str:
    """`Usage: 2 responses · 30 input · 80 output tokens · 1.20 s · cost $0.0042 (markov 1,
    echo 1)`, then how many were replayed from the answer cache and what they saved.

    `estimated`: how many of those tokens are estimates, said at the end when there are any.
    The cost is "—" while no price is known for the models (see `llm_notebook.set_price`).
    """
    entries = usage.by_model()
    if not entries:
        return "Usage: no responses yet"
    total = usage.totals()
    _, responses, input, output, _, duration, *_ = total.row()
    line = (f"Usage: {responses} response{'s' if responses != '1' else ''} · {input} input · "
            f"{output} output tokens · {duration}")
    spent = usage.spent()
    if spent is not None:
        line += f" · cost {spent}"
    if len(entries) > 1:
        line += " (" + ", ".join(f"{entry.model} {entry.responses}" for entry in entries) + ")"
    if total.replayed:
        saved = summed([entry.saved for entry in usage.costs.by_model()]) if usage.costs else None
        line += f" · {total.replayed} replayed, saved {saved_text(total.saved_tokens, saved)}"
    if estimated:
        line += f" · ≈{estimated:,} of the tokens estimated (answers stopped before the model counted)"
    return line
