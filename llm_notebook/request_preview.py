"""What a prompt would send and cost, before anything is sent: `llm_notebook.preview(...)`.

    p = llm_notebook.preview(model.prompt("Describe this chart", attachments=[fig]))
    p                      # displays the messages, attachments, tools, schema, tokens and cost
    p.check(0.01).text()   # BudgetExceeded unless it should cost at most a cent; then send it

The response is not started: previewing it sends nothing, and it can still be sent afterwards.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .prices import Cost, estimate, format_dollars

__all__ = ["AttachmentSummary", "Preview", "preview"]


@dataclass(frozen=True)
class AttachmentSummary:
    """One attachment as it would be sent (images already downscaled)."""

    type: str | None
    size: int | None
    width: int = 0
    height: int = 0

    def __str__(self) -> str:
        size = "size unknown until fetched" if self.size is None else f"{self.size:,} bytes"
        pixels = f", {self.width}×{self.height} px" if self.width else ""
        return f"{self.type or 'unknown type'}, {size}{pixels}"


class Preview:
    """Exactly what a response's request holds, its input tokens and its estimated cost."""

    def __init__(self, response: Any) -> None:
        from .budget import planned_output_tokens
        from .cache import current_mode, lookup
        from .tokens import count_input_tokens, image_size

        prompt = response.prompt
        self.response = response
        self.model = response.model.model_id
        self.messages = prompt.messages
        self.attachments = [AttachmentSummary(a.type, a.size(), *image_size(a))
                            for a in _attachments(self.messages)]
        self.tools = [tool.name for tool in prompt.tools]
        self.schema = prompt.schema
        self.options = prompt.options.model_dump(exclude_unset=True)
        self.input_tokens = response.as_model(count_input_tokens, prompt)
        self.output_tokens = planned_output_tokens(response)
        self.cost: Cost = estimate(response.model, self.input_tokens.count, self.output_tokens)
        self.replayed = current_mode() in ("replay", "only") and lookup(response) is not None

    def check(self, max_cost: float) -> Any:
        """The response, if its estimated cost is at most `max_cost` dollars (or it would be
        replayed); else BudgetExceeded. An unknown cost cannot pass a check."""
        from .budget import BudgetExceeded

        if self.replayed:
            return self.response
        if not self.cost.known:
            raise BudgetExceeded(f"Not sent: the cost of this request to {self.model!r} is "
                                 f"unknown ({self.cost.source}), so it cannot be checked against "
                                 f"{format_dollars(max_cost)}")
        if self.cost.dollars > type(self.cost.dollars)(str(max_cost)):
            raise BudgetExceeded(f"Not sent: this request to {self.model!r} would cost about "
                                 f"{self.cost}, more than {format_dollars(max_cost)}")
        return self.response

    def summary(self) -> str:
        """One line: the tokens, the estimated cost, and whether the cache would answer it."""
        if self.replayed:
            return f"{self.model}: answered from the answer cache, nothing would be sent ($0)"
        counted = "" if self.input_tokens.exact else " (estimated)"
        output = f" + ~{self.output_tokens:,} output" if self.output_tokens else ""
        cost = (f"about {self.cost}" if self.cost.known else
                f"cost unknown ({self.cost.source})")
        return f"{self.model}: {self.input_tokens} input tokens{counted}{output} · {cost}"

    def __repr__(self) -> str:
        return f"<Preview {self.summary()}>"

    def _repr_markdown_(self) -> str:
        lines = [f"**Preview** (nothing sent): {_escaped(self.summary())}", ""]
        for message in self.messages:
            lines.append(f"**{message.role}**")
            lines.append("")
            lines.append(_fenced(_message_text(message)))
            lines.append("")
        for index, attachment in enumerate(self.attachments, 1):
            lines.append(f"- attachment {index}: {_escaped(str(attachment))}")
        if self.tools:
            lines.append(f"- tools: {_escaped(', '.join(self.tools))}")
        if self.options:
            lines.append(f"- options: {_escaped(json.dumps(self.options, default=str))}")
        if self.schema:
            lines.extend(["", "**schema**", "", _fenced(json.dumps(self.schema, indent=2))])
        return "\n".join(lines) + "\n"


def preview(response: Any) -> Preview:
    """What `response` (from `model.prompt(...)`, not yet started) would send and cost."""
    return Preview(response)


def _attachments(messages: list[Any]) -> list[Any]:
    from .parts import AttachmentPart, ToolResultPart

    found = []
    for message in messages:
        for part in message.parts:
            if isinstance(part, AttachmentPart) and part.attachment is not None:
                found.append(part.attachment)
            elif isinstance(part, ToolResultPart):
                found.extend(part.attachments)
    return found


def _message_text(message: Any) -> str:
    from .parts import AttachmentPart, TextPart

    pieces = []
    for part in message.parts:
        if isinstance(part, TextPart):
            pieces.append(part.text)
        elif isinstance(part, AttachmentPart):
            pieces.append(f"[attachment: {part.attachment.type if part.attachment else '?'}]")
        else:
            pieces.append(json.dumps(part.to_dict(), default=str))
    return "\n".join(pieces)


def _fenced(text: str) -> str:
    """`text` in a code fence longer than any run of backticks in it: shown, never rendered."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _escaped(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>()#+\-.!|~])", r"\\\1", text)
