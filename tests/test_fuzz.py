"""Bounded fuzzing (hypothesis) of what reads untrusted text: the `%llm` line and the servers'
event streams. Whatever comes, the answer is the package's one-line error or the right result.

- The magic line: random options and prompts read by the line parser (the user's one-line
  UsageError, or the options and the prompt exactly as typed), and through `%llm` in a real
  kernel, where the prompt must reach the model unchanged.
- Event streams: random server-sent events from the loopback server, through both HTTP
  plugins: the answer, or a ModelError with a one-line message; never another exception.

`Attachment.from_object(bytes)` is fuzzed in tests/test_attachments_hostile.py.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llm_notebook
from llm_notebook import ModelError, runner
from llm_notebook.notebook.magics import arguments
from llm_notebook.notebook.magics.errors import LLMError
from tests.magics_kernel import KernelNotebook
from tests.support.fake_llm_server import stream_reply

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-fuzz-key-0123456789"
BOUNDED = {"deadline": None, "derandomize": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]}

#: One line of text as a user types it: letters, digits, punctuation, symbols, spaces.
LINE_TEXT = st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), max_size=40)
#: A prompt: something that is not blank, with no space around it (the magic strips that).
PROMPTS = LINE_TEXT.map(str.strip).filter(bool)
VALUES = st.one_of(LINE_TEXT, st.sampled_from(["0", "-1", "1e3", "[1]", '{"a": 1}', "{bad", "",
                                               "'", '"', "echo", "markov", "@plot"]))
#: Each option's flag and how many values follow it.
FLAGS = {flag: 0 if keywords.get("action") == "store_true" else keywords.get("nargs", 1)
         for flags, keywords in arguments.OPTIONS for flag in flags}


@st.composite
def option_words(draw) -> list[str]:
    """Leading options, each with as many values as it takes, quoted as a shell would need."""
    words = []
    for flag in draw(st.lists(st.sampled_from(sorted(FLAGS)), max_size=5)):
        words.append(flag)
        words += [shlex.quote(draw(VALUES)) for _ in range(FLAGS[flag])]
    return words


def read(line: str) -> tuple[list[str], str] | None:
    """The options and the prompt of `line` as the magic reads them; None when they cannot be
    read, once the error is checked to be the user's one line."""
    try:
        words, text = arguments.split_line(line)
        arguments.prompt_parser().parse_args(words)
    except LLMError as error:
        assert error.kind == "UsageError" and str(error) and "\n" not in str(error), error
        return None
    return words, text


@settings(max_examples=400, **BOUNDED)
@given(options=option_words(), prompt=PROMPTS)
def test_a_line_reads_as_its_options_and_the_prompt_typed_after_them(options, prompt):
    read_as = read(" ".join(options + ["--", prompt]))
    if read_as is not None:
        assert read_as == ([part for word in options for part in shlex.split(word)], prompt)


@settings(max_examples=400, **BOUNDED)
@given(line=st.text(max_size=80))
def test_any_line_is_options_and_a_prompt_a_subcommand_or_one_usage_error(line):
    called = arguments.subcommand(line)
    if called is not None:
        name, words = called
        assert name in arguments.SUBCOMMANDS and words == line.split()[1:]
        return
    read_as = read(line)
    if read_as is not None:
        assert line.strip().endswith(read_as[1])


# -- the same lines through %llm in a kernel ------------------------------------------------------
SETUP = """
%load_ext llm_notebook
from typing import Any
import llm_notebook
from llm_notebook import Model

class Recorder(Model):
    model_id = "recorder"
    received = []

    class Options(llm_notebook.Options):
        note: Any = None

    def execute(self, prompt, stream, response, conversation):
        type(self).received.append(prompt.prompt)
        yield "noted"

llm_notebook.register(Recorder())
llm_notebook.settings.cache = "off"
"""
#: Options that leave the prompt to the recorder as it is (`-o note` takes any value).
HARMLESS = st.lists(st.one_of(
    st.just("--no-usage"), st.just("--no-log"), st.just("--no-stream"), st.just("-f text"),
    VALUES.map(lambda value: f"-o note {shlex.quote(value)}")), max_size=3)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fuzz")
    notebook = KernelNotebook(workdir, env={
        "LLM_NOTEBOOK_USER_PATH": str(workdir / "user"), "LLM_NOTEBOOK_LOAD_PLUGINS": ""})
    notebook.run(SETUP)
    yield notebook
    notebook.close()


@pytest.mark.timeout(120)
@settings(max_examples=100, **BOUNDED)
@given(options=HARMLESS, dashes=st.booleans(), prompt=PROMPTS)
def test_a_prompt_typed_after_llm_reaches_the_model_unchanged(kernel, options, dashes, prompt):
    if not dashes and prompt.startswith("-"):
        dashes = True  # without `--` it would be read as an option
    words = ["%llm", "-m", "recorder", "--no-interpolate", *options, *(["--"] if dashes else []),
             prompt]
    run = kernel.run(" ".join(words))
    assert run.error is None, run.outputs
    received = kernel.run("print(repr(Recorder.received[-1]))").stream()
    assert received == repr(prompt) + "\n"


# -- event streams ----------------------------------------------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
#: Pieces of the events the two APIs send, to build plausible ones from.
NAMES = st.sampled_from([None, "message_start", "content_block_start", "content_block_delta",
                         "message_delta", "message_stop", "ping", "error", "completion"])
SHAPES = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["message_start", "content_block_delta", "message_delta",
                             "message_stop", "error", "text_delta"]) | st.text(max_size=6),
    "choices": st.lists(st.fixed_dictionaries({}, optional={
        "delta": st.fixed_dictionaries({}, optional={"content": JSON}) | JSON,
        "finish_reason": st.sampled_from([None, "stop", "length"]) | JSON,
        "message": JSON}), max_size=2) | JSON,
    "delta": st.fixed_dictionaries({}, optional={"type": st.just("text_delta"), "text": JSON,
                                                 "stop_reason": JSON}) | JSON,
    "message": st.fixed_dictionaries({}, optional={"usage": JSON, "id": JSON}) | JSON,
    "usage": st.fixed_dictionaries({}, optional={
        "prompt_tokens": JSON, "completion_tokens": JSON, "input_tokens": JSON,
        "output_tokens": JSON}) | JSON,
    "error": st.fixed_dictionaries({}, optional={"message": JSON, "type": JSON,
                                                 "code": JSON}) | JSON,
})
DATA = st.one_of(SHAPES.map(json.dumps), JSON.map(json.dumps), st.just("[DONE]"),
                 st.text(max_size=30))


@st.composite
def event_streams(draw) -> list[bytes]:
    """Server-sent events, sometimes with raw bytes among them, cut into random pieces."""
    body = b""
    for name, data in draw(st.lists(st.tuples(NAMES, DATA), max_size=8)):
        body += (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()
        if draw(st.integers(0, 9)) == 0:
            body += draw(st.binary(max_size=20))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    return [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)]) if end > start]


@pytest.mark.timeout(120)
@settings(max_examples=250, **BOUNDED)
@given(api=st.sampled_from(["gpt-4o-mini", "claude-sonnet-4-5"]), run_async=st.booleans(),
       pieces=event_streams())
def test_any_event_stream_is_an_answer_or_one_model_error(llm_server, monkeypatch, api, run_async,
                                                           pieces):
    monkeypatch.setattr(llm_notebook.settings, "answer_timeout", 10.0)
    monkeypatch.setattr(llm_notebook.settings, "max_retries", 0)
    llm_server.reset()
    llm_server.queue(stream_reply(pieces))
    model = (llm_notebook.get_async_model if run_async else llm_notebook.get_model)(api)
    response = model.prompt("Hi", key=KEY)
    try:  # an async answer on the package's own loop, as the magics run them
        text = runner.run(response.text()) if run_async else response.text()
    except ModelError as error:
        message = str(error)
        assert message and "\n" not in message and "Traceback" not in message, message
        assert "failed: " not in message.split(" from ")[0], f"the plugin crashed: {message}"
        assert KEY not in message
        assert response.status == "error"
        return
    assert isinstance(text, str) and response.status == "done"
