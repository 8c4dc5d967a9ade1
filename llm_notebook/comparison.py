"""One prompt to several models at once, the answers side by side: `llm_notebook.compare()`.

Plain Python: sync models stream in worker threads and async ones on the runner loop, none
waiting for another, from a script as from a notebook. The result is a `Comparison`: its answers
in the order of the models, and a table of tokens, time to first token, total time and output
speed, with the time all of them took together. In a notebook it displays as columns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from . import runner
from .answers import METADATA_KEY, Answer, ShownOnce, dollars_of, partial_note
from .errors import OptionsError
from .markdown import escape_inline, safe_markdown
from .tables import table_data
from .usage import answer_row

HEADERS = ("model", "status", "input", "output", "first token", "total", "output tok/s", "cost")
_ROW = '<div style="display: flex; gap: 1em; align-items: flex-start">'
_COLUMN = '<div style="flex: 1 1 0; min-width: 0; overflow-x: auto{rule}">'
#: Between two columns: a rule that reads on light and dark themes alike (half-transparent grey).
_RULE = "; border-left: 1px solid #80808080; padding-left: 1em"


def columns_markdown(titles: Sequence[str], bodies: Sequence[str]) -> str:
    """Markdown `bodies` in columns with a rule between them. Each <div> line is an HTML block
    ended by a blank line, so what lies between is parsed as Markdown; the bodies must be safe
    Markdown with no open fence."""
    lines = [_ROW]
    for index, (title, body) in enumerate(zip(titles, bodies)):
        lines += [_COLUMN.format(rule=_RULE if index else ""), "", f"**{escape_inline(title)}**",
                  "", body, "", "</div>"]
    lines.append("</div>")
    return "\n".join(lines)


def plain_columns(titles: Sequence[str], bodies: Sequence[str]) -> str:
    """The answers one under the other, each under a rule with its model's name."""
    return "\n\n".join(f"── {title} ──\n{body}" for title, body in zip(titles, bodies))


def answers_bundle(answers: Sequence[Answer], *,
                   plain: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The finished answers side by side, with each one's provenance in the metadata."""
    titles = [answer.response.model.model_id for answer in answers]
    data = {"text/plain": plain_columns(titles, [answer.plain() for answer in answers])}
    if not plain:
        data["text/markdown"] = columns_markdown(titles, [_column(answer) for answer in answers])
    return data, {METADATA_KEY: {"answers": [answer.metadata()[METADATA_KEY] for answer in answers]}}


def _column(answer: Answer) -> str:
    """One finished column: the answer, marked if it stopped early, then the error if it failed;
    only the reason when it stopped before saying anything."""
    error = (f"_{safe_markdown(answer.response.error or 'failed')}_"
             if answer.status == "error" else "")
    if not answer.said_anything:
        return error or ("_interrupted before any text_" if answer.status == "interrupted" else "")
    # partial=True closes a fence the model left open, which would swallow the layout
    body = safe_markdown(answer.text, partial=True) + partial_note(answer.status)
    return body + (f"\n\n{error}" if error else "")


def options_per_model(names: Sequence[str], models: Sequence[Any], shared: dict[str, Any],
                      own: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The options each model gets: the `shared` ones, then its `own` (keyed by the name it was
    asked by, or its id). Every model must take every shared option: one that does not is an
    OptionsError naming the option, the model, and the models that do take it."""
    asked = {name: index for index, name in enumerate(names)}
    asked.update({model.model_id: index for index, model in enumerate(models)})
    chosen = [dict(shared) for _ in models]
    for name, options in own.items():
        if name not in asked:
            raise OptionsError(f"Options for {name!r}, which is not one of the models asked "
                               f"({', '.join(names)}): name one of those")
        chosen[asked[name]].update(options)
    for option in shared:
        takers = [model.model_id for model in models if option in model.Options.model_fields]
        for model in models:
            if option in model.Options.model_fields:
                continue
            if not takers:
                raise OptionsError(f"No model here has an option {option!r}: "
                                   + "; ".join(_options_of(m) for m in models))
            raise OptionsError(
                f"Option {option!r} goes to every model, but {model.model_id} has no such option: "
                f"give it to {' and '.join(takers)} alone ({takers[0]}.{option} as -o in %llm, "
                f"{takers[0]}={{{option!r}: ...}} in compare())")
    return chosen


def _options_of(model: Any) -> str:
    fields = sorted(model.Options.model_fields)
    return f"{model.model_id} takes {', '.join(fields) if fields else 'no options'}"


class Comparison(ShownOnce):
    """Several answers to one prompt: `comparison[0]` is the first model's `Answer`.

    `responses` stream when `stream()` is called (`compare()` does it); `table()` is the
    comparison table; `interrupted` says whether an interrupt stopped them.
    """

    def __init__(self, responses: Sequence[Any], *, format: str = "markdown") -> None:
        self.responses = list(responses)
        self.answers = [Answer(response, format=format) for response in self.responses]
        self.wall_s = 0.0
        self.interrupted = False

    def stream(self, on_chunk: Callable[[int, str], Any] | None = None) -> bool:
        """Run every response at once, calling `on_chunk(index, chunk)` as chunks arrive; True
        if an interrupt stopped them (each keeps its partial answer, marked interrupted)."""
        start = time.monotonic()
        chunks = runner.iterate_many(self.responses)
        try:
            for index, chunk in chunks:
                if on_chunk is not None:
                    on_chunk(index, chunk)
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            chunks.close()  # an interrupt inside on_chunk leaves it suspended: cancel the rest
        self.wall_s = time.monotonic() - start
        for response in self.responses:
            if not response.finished:
                response.interrupt()
        return self.interrupted

    def __getitem__(self, index: int) -> Answer:
        return self.answers[index]

    def __len__(self) -> int:
        return len(self.answers)

    def __iter__(self):
        return iter(self.answers)

    def __str__(self) -> str:
        return plain_columns([a.response.model.model_id for a in self.answers],
                             [a.text for a in self.answers])

    def __repr__(self) -> str:
        return f"<Comparison {', '.join(a.response.model.model_id for a in self.answers)}>"

    def _repr_mimebundle_(self, include=None, exclude=None):
        return answers_bundle(self.answers, plain=self.answers[0].format == "text")

    def rows(self) -> list[tuple[str, ...]]:
        """One row per answer under HEADERS."""
        rows = []
        for answer in self.answers:
            summary = answer.response.to_dict()
            model, input, output, _details, total, speed, cost = answer_row(
                summary, cost=answer.cost())
            first = summary["first_chunk_ms"]
            if summary["replayed"] is not None:
                first = None  # a replayed answer had no first token: it came whole
            rows.append((model, summary["status"], input, output,
                         "" if first is None else f"{first / 1000:.2f} s", total, speed, cost))
        return rows

    def table(self) -> tuple[dict[str, str], dict[str, Any]]:
        """The comparison table with a line on the time taken together and apart, and the
        timings in its metadata."""
        records = []
        for answer in self.answers:
            summary = answer.response.to_dict()
            records.append({"model": summary["model"], "status": summary["status"],
                            "input": summary["usage"]["input"], "output": summary["usage"]["output"],
                            "first_token_ms": summary["first_chunk_ms"],
                            "duration_ms": summary["duration_ms"], "datetime": summary["datetime_utc"],
                            "cost": dollars_of(answer.cost()),
                            "replayed": summary["replayed"] is not None})
        durations = [record["duration_ms"] / 1000 for record in records]
        wall_ms = round(self.wall_s * 1000)
        note = (f"{len(records)} answers side by side in {wall_ms / 1000:.2f} s: the slowest took "
                f"{max(durations):.2f} s, one after another they would take {sum(durations):.2f} s.")
        data = {mime: f"{text}\n\n{note}" for mime, text in table_data(HEADERS, self.rows()).items()}
        return data, {METADATA_KEY: {"comparison": records, "wall_ms": wall_ms}}


def prepare(prompt: str | None, models: Sequence[Any], *, system: str | None = None,
            attachments: Sequence[Any] | None = None, stream: bool = True, key: str | None = None,
            continue_last: bool = False, prefer_async: bool = False, log: bool = True,
            hide_reasoning: bool = False, format: str = "markdown",
            model_options: dict[str, dict[str, Any]] | None = None, remember: bool = True,
            **options: Any) -> Comparison:
    """A comparison whose responses are made (options and attachments checked) but not started.

    `options` named after one of `models` (as given, or its id) are that model's own, as a dict,
    as are those in `model_options` (keyed by model); the others go to every model. Each
    response is a turn of its model's last conversation with `continue_last`, else of a new one;
    `remember=False` keeps the conversations out of the session's (a preview that sends nothing).
    """
    from .conversations import session_conversations
    from .model_choice import pick_model

    names = [model if isinstance(model, str) else model.model_id for model in models]
    if len(names) < 2:
        raise OptionsError("A comparison needs at least two models: give them as models=[...]")
    chosen = [pick_model(model, prefer_async=prefer_async) for model in models]
    own_names = set(names) | {model.model_id for model in chosen}
    own = {name: value for name, value in options.items() if name in own_names}
    for name, value in (model_options or {}).items():
        own[name] = {**own.get(name, {}), **value}
    for name, value in own.items():
        if not isinstance(value, dict):
            raise OptionsError(f"{name}= names a model: give its own options as a dict, "
                               f"e.g. {name}={{'temperature': 0.2}}")
    shared = {name: value for name, value in options.items() if name not in own_names}
    responses = []
    for model, model_options in zip(chosen, options_per_model(names, chosen, shared, own)):
        conversation = session_conversations.for_prompt(model, continue_last=continue_last)
        response = conversation.prompt(prompt, attachments=attachments, system=system,
                                       stream=stream, key=key, hide_reasoning=hide_reasoning,
                                       **model_options)
        if remember:
            session_conversations.remember(conversation)
        response.log_enabled = response.log_enabled and log
        responses.append(response)
    return Comparison(responses, format=format)


def compare(prompt: str | None = None, models: Sequence[Any] = (), *,
            on_chunk: Callable[[int, str], Any] | None = None, **arguments: Any) -> Comparison:
    """Send `prompt` to every one of `models` at once and return their answers side by side.

    `compare("Name a colour", models=["echo", "markov"], markov={"length": 5})`. Options named
    after a model are that model's (a dict); other keywords (`system=`, `attachments=`,
    `stream=`, `key=`, `continue_last=`, `prefer_async=`, `log=`, `hide_reasoning=`, or model
    options) go to every
    model, and each model must take every such option. `on_chunk(index, chunk)` hears every
    chunk as it arrives. An interrupt stops them all; the comparison keeps each partial answer
    and says so in `.interrupted`.
    """
    comparison = prepare(prompt, models, **arguments)
    comparison.stream(on_chunk)
    return comparison
