"""`echo` and `markov`: models that need no key and no network, for trying and testing.

echo also calls tools and answers schemas when its prompt holds a JSON block telling it how
(see `echo_script`), so every tool and structured-output path runs offline.
"""

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
from llm_notebook.parts import StreamEvent
from llm_notebook.tools import ToolCall, new_tool_call_id

from .echo_script import example_value, script_of

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


def _tool_results(prompt) -> list[str]:
    """The results echo was sent, each named, with its output as received."""
    if not prompt.tool_results:
        return []
    sections = [f"**Tool results** ({len(prompt.tool_results)})"]
    for result in prompt.tool_results:
        sections += [f"`{result.name.replace('`', '')}` ({result.tool_call_id})",
                     _quote(result.output) if result.output else "_(empty)_"]
    return sections


def echo_text(prompt, conversation) -> str:
    """Readable Markdown of everything the model received."""
    sections = []
    if prompt.prompt or not prompt.tool_results:
        sections += ["**Prompt**", _quote(prompt.prompt) if prompt.prompt else "_(none)_"]
    if prompt.system:
        sections += ["**System**", _quote(prompt.system)]
    options = prompt.options.model_dump(exclude_unset=True)
    if options:
        sections += ["**Options**", "\n".join(f"- `{k}`: `{json.dumps(v, default=str)}`"
                                              for k, v in options.items())]
    if prompt.attachments:
        sections += ["**Attachments**", "\n".join(
            _describe_attachment(i, a) for i, a in enumerate(prompt.attachments, 1))]
    sections += _tool_results(prompt)
    turns = _turns(conversation)
    if turns:
        lines = []
        for i, (asked, answered) in enumerate(turns, 1):
            lines.append(f"{i}. **user:** {_excerpt(asked) or '_(attachments only)_'} — "
                         f"**assistant:** {_excerpt(answered) or '_(no text)_'}")
        sections += [f"**Earlier turns** ({len(turns)})", "\n".join(lines)]
    return "\n\n".join(sections) + "\n"


def _tool_call_events(response, calls: list[dict]) -> list[StreamEvent]:
    """Ask for `calls`: each is added to the response and streamed as its events."""
    events = []
    for call in calls:
        call_id = new_tool_call_id()
        response.add_tool_call(ToolCall(name=call["name"], arguments=call["arguments"],
                                        tool_call_id=call_id))
        events += [StreamEvent(type="tool_call_name", chunk=call["name"], tool_call_id=call_id),
                   StreamEvent(type="tool_call_args", chunk=json.dumps(call["arguments"]),
                               tool_call_id=call_id)]
    return events


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

    def _answer(self, prompt, conversation, response) -> tuple[list, dict[str, int]]:
        """What execute() yields, in order, and the usage it records once it has yielded all."""
        pieces = _chunks(type(self).make_text(prompt, conversation))
        return pieces, self._usage(prompt, conversation, pieces)

    def _usage(self, prompt, conversation, text_parts: list[str], asked: int = 0) -> dict[str, int]:
        earlier = sum(_count_words(a, b) for a, b in _turns(conversation))
        results = _count_words(*(result.output for result in prompt.tool_results))
        return {"input": _count_words(prompt.prompt, prompt.system) + earlier + results,
                "output": _count_words("".join(text_parts)) + asked}


class _Echo(_Offline):
    """echo: it echoes, and follows the script of a JSON block in its prompt (`echo_script`)."""

    model_id = "echo"
    description = ("Offline test model: streams back, as Markdown, the prompt, system prompt, options, "
                   "attachments, tool results and earlier turns it received; a JSON block in the "
                   "prompt makes it call tools or answer exactly. No key, no network.")
    supports_tools = True
    supports_schema = True
    Options = _DelayOptions

    def _answer(self, prompt, conversation, response) -> tuple[list, dict[str, int]]:
        script, round_number = script_of(prompt.messages)
        calls = script.calls_for(round_number)
        if calls or not (script.has_raw or prompt.schema is not None):
            text = echo_text(prompt, conversation)
        elif script.has_raw:
            text = script.raw_text()
        else:
            text = json.dumps(example_value(prompt.schema), indent=2)
        pieces = _chunks(text)
        events = _tool_call_events(response, calls)
        usage = self._usage(prompt, conversation, pieces,
                            asked=_count_words(*(event.chunk for event in events)))
        return [*pieces, *events], usage


class Echo(_Echo, Model):
    def execute(self, prompt, stream, response, conversation) -> Iterator:
        pieces, usage = self._answer(prompt, conversation, response)
        for piece in pieces:
            if prompt.options.delay:
                time.sleep(prompt.options.delay)
            yield piece
        response.set_usage(**usage)


class AsyncEcho(_Echo, AsyncModel):
    async def execute(self, prompt, stream, response, conversation):
        pieces, usage = self._answer(prompt, conversation, response)
        for piece in pieces:
            await asyncio.sleep(prompt.options.delay)
            yield piece
        response.set_usage(**usage)


class Markov(_Offline, Model):
    model_id = "markov"
    description = ("Offline test model: generates text from a Markov chain built from the prompt and "
                   "the conversation. Options: length, seed, delay. No key, no network.")
    attachment_types: set[str] = set()
    Options = MarkovOptions
    make_text = staticmethod(markov_text)
    execute = Echo.execute


class AsyncMarkov(_Offline, AsyncModel):
    model_id = "markov"
    description = Markov.description
    attachment_types: set[str] = set()
    Options = MarkovOptions
    make_text = staticmethod(markov_text)
    execute = AsyncEcho.execute


@hookimpl
def register_models(register):
    register(Echo(), AsyncEcho())
    register(Markov(), AsyncMarkov())
