"""`echo` and `markov`: models that need no key and no network, for trying and testing."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Iterator

from pydantic import Field

from llm_notebook import hookimpl
from llm_notebook.models import AsyncModel, Model, Options

ACCEPTED_TYPES = {
    "image/png", "image/jpeg", "image/webp", "image/gif",
    "audio/wav", "audio/mpeg", "application/pdf",
}
_WORD = re.compile(r"\S+\s*")
_BACKTICKS = re.compile(r"`+")
_HEADING = re.compile(r"\*\*[A-Z][A-Za-z ]*\*\*(?: \(\d+\))?")


class _DelayOptions(Options):
    delay: float = Field(default=0.0, ge=0, le=60,
                         description="Seconds to wait before each chunk, to watch streaming")


def _count_words(*texts: str | None) -> int:
    return sum(len(text.split()) for text in texts if text)


def _chunks(text: str) -> list[str]:
    """Word-sized pieces (each with its trailing space) so streaming is visible."""
    return _WORD.findall(text) or ([text] if text else [])


def _turns(conversation) -> list[tuple[str | None, str]]:
    if conversation is None:
        return []
    return [(r.prompt.prompt, r.text_or_raise()) for r in conversation.responses]


def _quote(text: str) -> str:
    """`text` exactly as received: a fenced text block (so line breaks, indentation and aligned
    columns survive, and nothing in it is read as Markdown), inside a quote."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    lines = [fence + "text", *text.split("\n"), fence]
    return "\n".join("> " + line if line else ">" for line in lines)


def _excerpt(text: str | None, width: int = 80) -> str:
    """The first line that says something: not a fence, a quote marker or echo's own heading."""
    for line in (text or "").split("\n"):
        line = line.strip().lstrip(">").strip()
        if line and not line.startswith(("```", "~~~")) and not _HEADING.fullmatch(line):
            return line if len(line) <= width else line[:width - 1] + "…"
    return ""


def _describe_attachment(index: int, attachment) -> str:
    from llm_notebook import images

    kind = attachment.resolve_type()
    size = len(attachment.content_bytes())
    parts = [f"{index}. `{kind}`", f"{size:,} bytes"]
    if kind.startswith("image/"):
        dims = images.dimensions(attachment)
        if dims:
            parts.append(f"{dims[0]}×{dims[1]} px")
    return ", ".join(parts)


def echo_text(prompt, conversation) -> str:
    """Readable Markdown of everything the model received."""
    sections = ["**Prompt**", _quote(prompt.prompt) if prompt.prompt else "_(none)_"]
    if prompt.system:
        sections += ["**System**", _quote(prompt.system)]
    options = prompt.options.model_dump(exclude_unset=True)
    if options:
        sections += ["**Options**", "\n".join(f"- `{k}`: `{json.dumps(v, default=str)}`"
                                              for k, v in options.items())]
    if prompt.attachments:
        sections += ["**Attachments**", "\n".join(
            _describe_attachment(i, a) for i, a in enumerate(prompt.attachments, 1))]
    turns = _turns(conversation)
    if turns:
        lines = []
        for i, (asked, answered) in enumerate(turns, 1):
            lines.append(f"{i}. **user:** {_excerpt(asked) or '_(attachments only)_'} — "
                         f"**assistant:** {_excerpt(answered) or '_(no text)_'}")
        sections += [f"**Earlier turns** ({len(turns)})", "\n".join(lines)]
    return "\n\n".join(sections) + "\n"


class MarkovOptions(_DelayOptions):
    length: int = Field(default=50, ge=1, le=10_000, description="Number of words to generate")
    seed: int | None = Field(default=None, description="Random seed; the same seed gives the same text")


def markov_text(prompt, conversation) -> str:
    """Text from a word-level Markov chain over the prompt and the conversation so far."""
    corpus = []
    for asked, answered in _turns(conversation):
        corpus += (asked or "").split() + answered.split()
    corpus += (prompt.system or "").split() + (prompt.prompt or "").split()
    if not corpus:
        return ""
    chain: dict[str, list[str]] = {}
    for current, following in zip(corpus, corpus[1:] + corpus[:1]):
        chain.setdefault(current, []).append(following)
    rng = random.Random(prompt.options.seed)
    word = rng.choice(corpus)
    words = [word]
    for _ in range(prompt.options.length - 1):
        word = rng.choice(chain.get(word) or corpus)
        words.append(word)
    return " ".join(words)


class _Offline:
    """What both offline models share: no key, and word counts as 'tokens'."""

    can_stream = True
    attachment_types = ACCEPTED_TYPES
    make_text = staticmethod(echo_text)

    def _pieces(self, prompt, conversation) -> list[str]:
        return _chunks(type(self).make_text(prompt, conversation))

    def _record_usage(self, prompt, conversation, response, text_parts: list[str]) -> None:
        earlier = sum(_count_words(a, b) for a, b in _turns(conversation))
        response.set_usage(input=_count_words(prompt.prompt, prompt.system) + earlier,
                           output=_count_words("".join(text_parts)))


class Echo(_Offline, Model):
    model_id = "echo"
    description = ("Offline test model: streams back, as Markdown, the prompt, system prompt, options, "
                   "attachments and earlier turns it received. No key, no network.")
    Options = _DelayOptions

    def execute(self, prompt, stream, response, conversation) -> Iterator[str]:
        pieces = self._pieces(prompt, conversation)
        for piece in pieces:
            if prompt.options.delay:
                time.sleep(prompt.options.delay)
            yield piece
        self._record_usage(prompt, conversation, response, pieces)


class AsyncEcho(_Offline, AsyncModel):
    model_id = "echo"
    description = Echo.description
    Options = _DelayOptions

    async def execute(self, prompt, stream, response, conversation):
        pieces = self._pieces(prompt, conversation)
        for piece in pieces:
            await asyncio.sleep(prompt.options.delay)
            yield piece
        self._record_usage(prompt, conversation, response, pieces)


class Markov(Echo):
    model_id = "markov"
    description = ("Offline test model: generates text from a Markov chain built from the prompt and "
                   "the conversation. Options: length, seed, delay. No key, no network.")
    attachment_types: set[str] = set()
    Options = MarkovOptions
    make_text = staticmethod(markov_text)


class AsyncMarkov(AsyncEcho):
    model_id = "markov"
    description = Markov.description
    attachment_types: set[str] = set()
    Options = MarkovOptions
    make_text = staticmethod(markov_text)


@hookimpl
def register_models(register):
    register(Echo(), AsyncEcho())
    register(Markov(), AsyncMarkov())
