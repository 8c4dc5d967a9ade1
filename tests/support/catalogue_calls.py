"""The catalogue's Python calls: bad arguments to the public API, broken user files and widgets
driven as a front end would drive them, each with the one line the user must get.

A call raises the error (of one of the types `raises` allows), or, for the widgets, returns the
line the widget shows. `check` then looks at what must have been kept.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import llm_notebook
import llm_notebook.log
from llm_notebook.markdown import escape_inline
from llm_notebook import (
    AliasError,
    AsyncOnlyModelError,
    AttachmentError,
    InvalidKeyError,
    LLMNotebookError,
    ModelError,
    OptionsError,
    UnknownModelError,
    UserFileError,
)
from llm_notebook.interpolate import InterpolationError, interpolate
from tests.magics_kernel import unescaped
from tests.support import fault_server as faults
from tests.support.awkward_values import BrokenText
from tests.support.catalogue_files import (
    FOLDER,
    Preparation,
    absent,
    as_it_is,
    holding,
    holds,
    linked,
    moved_aside,
    read_only,
    unchanged,
    under_a_file,
)
from tests.support.catalogue_models import FailsMidway, SyncOnly
from tests.support.fake_llm_server import FakeLLMServer, error_reply
from tests.support.hostile_images import PPM_16_BYTES, bomb_png

KEY = "sk-catalogue-key-0123456789"
NOT_UTF8 = b"\xff\xfe\x00 not text \x9c"
KEYS = b'{"openai": "sk-kept-0123456789"}\n'


@dataclass
class Bench:
    """What a call works with: the user directory in use and the loopback server, with the
    OpenAI and Anthropic models pointed at it."""

    user: Path
    server: FakeLLMServer


@dataclass(frozen=True)
class Call:
    """One case: `call` must raise one of `raises` with a one-line message holding `says`, or,
    with `raises=()`, return normally (the line a widget shows, checked for `says`). `warns`:
    words of a warning it gives; `files` prepares the user directory and `check` looks at it
    afterwards; `broken` names the file and fault of a case that fails today."""

    what: str
    call: Callable[[Bench], Any]
    says: tuple[str, ...] = ()
    raises: tuple[type[BaseException], ...] = (LLMNotebookError,)
    warns: tuple[str, ...] = ()
    files: Preparation = as_it_is
    check: Callable[[Path], None] | None = None
    broken: str = ""


def prompt(model: str, *args: Any, **kwargs: Any) -> str:
    return llm_notebook.get_model(model).prompt(*args, **kwargs).text()


def held_lock(bench: Bench) -> None:
    """keys.json's lock held by another process while set_key waits a moment for it."""
    from llm_notebook import userfiles

    bench.user.mkdir(parents=True, exist_ok=True)
    lock = bench.user / "keys.json.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", (f"import filelock, sys\nwith filelock.FileLock({str(lock)!r}):\n"
                                "    print('held', flush=True)\n    sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        waited, userfiles.LOCK_TIMEOUT = userfiles.LOCK_TIMEOUT, 0.5
        try:
            llm_notebook.set_key("openai", KEY)
        finally:
            userfiles.LOCK_TIMEOUT = waited
    finally:
        holder.communicate("")


def fresh_registry_models(bench: Bench) -> None:
    """The plugins loaded again, as a new session loads them (reading openai_endpoints.json)."""
    from llm_notebook.plugins import Registry

    ids = {entry.model_id for entry in Registry().entries()}
    assert "still-loaded" in ids and "echo" in ids, ids


def chat_error(model: Any = "echo", *, text: str = "hi", attachments: Any = None,
               **options: Any) -> Callable[[Bench], str]:
    """The error line a chat shows after sending `text`; the turn must record it too."""
    def run(bench: Bench) -> str:
        chat = llm_notebook.chat(model, **options)
        turn = chat.send(text, attachments)
        assert chat.wait(20), "the chat never finished"
        assert turn.status == "error"
        kind, shown = chat.transcript()[-1]
        assert kind == "error" and escape_inline(turn.error) in shown  # shown as it is
        return turn.error
    return run


def chat_partial(bench: Bench) -> str:
    llm_notebook.register(FailsMidway())
    chat = llm_notebook.chat("fails-midway")
    turn = chat.send("hi")
    assert chat.wait(20)
    shown = chat.transcript()
    assert ("answer" in [kind for kind, _ in shown]
            and any("half an answer" in text for kind, text in shown if kind == "answer"))
    return turn.error


def map_errors(*replies: Any, requests: int, retries: int = 0) -> Callable[[Bench], str]:
    """The error map records for the first of two items the server fails, after checking how
    many requests were made (none again for what cannot succeed, or was retried already)."""
    def run(bench: Bench) -> str:
        llm_notebook.settings.max_retries = retries
        bench.server.queue(*replies)
        answers = llm_notebook.map("{}", ["one", "two"], model="gpt-4o-mini", key=KEY,
                                   progress=False)
        assert list(answers) == [None, None] and len(bench.server.requests) == requests
        return answers.errors[0]
    return run


def option_error(name: str, value: Any) -> Callable[[Bench], str]:
    def run(bench: Bench) -> str:
        chat = llm_notebook.chat("echo", delay=0.0)
        chat.set_option(name, value)
        assert chat.options == {"delay": 0.0}, "a bad edit changed the options"
        return chat.widget.option_error
    return run


def picker_status(chosen: Any) -> Callable[[Bench], str]:
    def run(bench: Bench) -> str:
        picker = llm_notebook.model_picker()
        picker._on_front_end_message(picker, {"event": "choose", "id": chosen}, [])
        assert llm_notebook.get_default_model() == "echo"
        return picker.status
    return run


def chat_model_menu(bench: Bench) -> str:
    chat = llm_notebook.chat("echo")
    chat._on_model_menu({"id": "gone-model"}, [])
    assert chat.model.model_id == "echo"
    return unescaped(chat.transcript()[-1][1])  # the line as a reader sees it


CALLS: list[Call] = [
    # -- models ------------------------------------------------------------------------------------
    Call("get_model of an unknown name", lambda b: llm_notebook.get_model("nope"),
         says=("Unknown model 'nope'", "llm_notebook.get_models()")),
    Call("get_model of a number", lambda b: llm_notebook.get_model(123),
         raises=(TypeError, UnknownModelError), says=("model", "123")),
    Call("get_model of a list", lambda b: llm_notebook.get_model(["echo"]),
         raises=(TypeError, UnknownModelError), says=("model", "list")),
    Call("get_async_model of a sync-only model",
         lambda b: (llm_notebook.register(SyncOnly()),
                    llm_notebook.get_async_model("sync-only")),
         raises=(AsyncOnlyModelError,), says=("has no async version", "llm_notebook.get_model")),
    Call("a prompt that is a number", lambda b: prompt("echo", 123),
         raises=(TypeError, ValueError, LLMNotebookError), says=("prompt", "str")),
    Call("a system prompt that is a number", lambda b: prompt("echo", "hi", system=5),
         raises=(TypeError, ValueError, LLMNotebookError), says=("system", "str")),
    Call("attachments that are a number", lambda b: prompt("echo", "hi", attachments=5),
         raises=(AttachmentError,), says=("Cannot attach an object of type int",)),
    Call("attachments given as one path string",
         lambda b: prompt("echo", "hi", attachments="chart.png"),
         raises=(AttachmentError,), says=("'chart.png'",)),
    Call("prompt with an unknown option", lambda b: prompt("echo", "hi", foo=1),
         raises=(OptionsError,), says=("unknown option 'foo'", "options of 'echo': delay")),
    Call("an option of the wrong type", lambda b: prompt("markov", "hi", length="long"),
         raises=(OptionsError,), says=("option 'length'", "valid integer")),
    Call("a key that is a number", lambda b: prompt("gpt-4o-mini", "hi", key=5),
         raises=(InvalidKeyError,), says=("A key must be a string, not int",)),
    Call("a key with a newline", lambda b: prompt("gpt-4o-mini", "hi", key=KEY + "\nmore"),
         raises=(InvalidKeyError,),
         says=("The key given with key=... has a control or invisible character (U+000A)",)),
    Call("a key with a control character", lambda b: prompt("claude", "hi", key=KEY + "\x01"),
         raises=(InvalidKeyError,), says=("control or invisible character (U+0001)",)),
    Call("a model.key that is not ASCII",
         lambda b: setattr(llm_notebook.get_model("gpt-4o"), "key", "sk-caf\u00e9-0123456789")
         or prompt("gpt-4o", "hi"),
         raises=(InvalidKeyError,),
         says=("The model's key attribute (model.key) has a character that is not ASCII",)),
    Call("no key at all", lambda b: prompt("gpt-4o-mini", "hi"),
         raises=(ModelError,), says=("needs an API key", "OPENAI_API_KEY")),
    # -- keys ----------------------------------------------------------------------------------------
    Call("set_key without a name", lambda b: llm_notebook.set_key(None, KEY),
         raises=(InvalidKeyError,), says=("set_key needs a key name",), check=absent("keys.json")),
    Call("set_key of a number", lambda b: llm_notebook.set_key("openai", 123),
         raises=(InvalidKeyError,), says=("not int",), check=absent("keys.json")),
    Call("set_key of an empty key", lambda b: llm_notebook.set_key("openai", "  "),
         raises=(InvalidKeyError,), says=("non-empty key value",)),
    Call("set_key of a key with a newline",
         lambda b: llm_notebook.set_key("openai", KEY + "\nsecond"),
         raises=(InvalidKeyError,), says=("control or invisible character (U+000A)",
                                          "Copy it again"),
         files=holding({"keys.json": KEYS}), check=unchanged("keys.json", KEYS)),
    Call("set_key of a key with a zero-width space",
         lambda b: llm_notebook.set_key("openai", "sk-\u200b" + KEY),
         raises=(InvalidKeyError,), says=("U+200B",)),
    # -- aliases and the default model ---------------------------------------------------------------
    Call("set_alias with a space", lambda b: llm_notebook.set_alias("a b", "echo"),
         raises=(AliasError,), says=("An alias needs a name without spaces",)),
    Call("set_alias echo -> markov", lambda b: llm_notebook.set_alias("echo", "markov"),
         raises=(AliasError,), says=("'echo' is the id of a registered model",)),
    Call("set_alias to a number", lambda b: llm_notebook.set_alias("short", 5),
         raises=(TypeError, UnknownModelError), says=("model", "5")),
    Call("set_default_model of an unknown model", lambda b: llm_notebook.set_default_model("nope"),
         raises=(UnknownModelError,), says=("Unknown model 'nope'",),
         check=absent("default_model.txt")),
    Call("set_default_model of a number", lambda b: llm_notebook.set_default_model(5),
         raises=(TypeError, UnknownModelError), says=("model", "5")),
    # -- user files ------------------------------------------------------------------------------------
    Call("set_key in a read-only user directory", lambda b: llm_notebook.set_key("svc", KEY),
         files=read_only({"keys.json": KEYS}), raises=(UserFileError,),
         says=("Cannot write", "keys.json", "LLM_NOTEBOOK_USER_PATH"),
         check=unchanged("keys.json", KEYS)),
    Call("set_default_model in a read-only user directory",
         lambda b: llm_notebook.set_default_model("markov"),
         files=read_only({"keys.json": KEYS}), raises=(UserFileError,),
         says=("Cannot write", "default_model.txt"), check=unchanged("keys.json", KEYS)),
    Call("set_key when the user directory cannot be created",
         lambda b: llm_notebook.set_key("svc", KEY), files=under_a_file, raises=(UserFileError,),
         says=("Cannot create the llm_notebook user directory", "a file stands where a folder")),
    Call("set_key over a keys.json link", lambda b: llm_notebook.set_key("svc", KEY),
         files=linked("keys.json", "target.json", KEYS), raises=(UserFileError,),
         says=("is a symbolic link", "does not write through links"),
         check=unchanged("target.json", KEYS)),
    Call("set_key while another process holds the lock", held_lock, raises=(UserFileError,),
         says=("locked by another process", "keys.json.lock")),
    Call("keys.json of binary junk, then set_key",
         lambda b: llm_notebook.set_key("svc", KEY), raises=(),
         files=holding({"keys.json": NOT_UTF8}),
         warns=("keys.json could not be read: it is not UTF-8 text", "its bytes untouched"),
         check=moved_aside("keys.json", NOT_UTF8)),
    Call("keys.json of binary junk, listed", lambda b: llm_notebook.stored_key_names(), raises=(),
         files=holding({"keys.json": NOT_UTF8}),
         warns=("keys.json cannot be read: it is not UTF-8 text", "It is ignored until"),
         check=unchanged("keys.json", NOT_UTF8)),
    Call("get_model with an aliases.json that holds a list", lambda b: llm_notebook.get_model("short"),
         files=holding({"aliases.json": b"[1, 2]"}), raises=(UnknownModelError,),
         says=("Unknown model 'short'",), warns=("it holds an array, not an object",),
         check=unchanged("aliases.json", b"[1, 2]")),
    Call("get_default_model with a default_model.txt folder", lambda b: llm_notebook.get_default_model(),
         files=holding({"default_model.txt": FOLDER}), raises=(),
         warns=("default_model.txt cannot be read: it is a folder, not a file",)),
    Call("set_default_model over a default_model.txt folder",
         lambda b: llm_notebook.set_default_model("markov"), raises=(),
         files=holding({"default_model.txt": FOLDER}), warns=("It was moved to",),
         check=lambda user: (moved_aside("default_model.txt", FOLDER)(user),
                             holds("default_model.txt", "markov")(user))),
    Call("openai_endpoints.json with a bad entry", fresh_registry_models, raises=(),
         files=holding({"openai_endpoints.json": b'[{"base_url": "not a url", "models": ["m"]},'
                        b' 7, {"base_url": "http://127.0.0.1:9/v1", "models": ["still-loaded"]}]'}),
         warns=("openai_endpoints.json, endpoint 1: Not a base URL or a preset: 'not a url'",
                "openai_endpoints.json, endpoint 2:")),
    Call("openai_endpoints.json that is not JSON", lambda b: llm_notebook.plugins.Registry().entries(),
         raises=(), files=holding({"openai_endpoints.json": NOT_UTF8}),
         warns=("openai_endpoints.json is not valid JSON", "its endpoints are not registered")),
    Call("prompt with a junk logs.db",
         lambda b: (prompt("echo", "answered anyway"), llm_notebook.log.flush(10)), raises=(),
         files=holding({"logs.db": b"junk " * 400}), warns=("could not write the log",),
         check=unchanged("logs.db", b"junk " * 400)),
    # -- the log -------------------------------------------------------------------------------------
    Call("logs(n) of text", lambda b: llm_notebook.logs("abc"), raises=(ValueError,),
         says=("logs(n) takes a number of responses of 1 or more", "None for all")),
    Call("logs(n) of -1", lambda b: llm_notebook.logs(-1), raises=(ValueError,),
         says=("not -1",)),
    Call("logs(model=) of a number", lambda b: llm_notebook.logs(model=5), raises=(TypeError,),
         says=("logs(model=...) takes text", "logs(model='5')")),
    # -- endpoints -----------------------------------------------------------------------------------
    Call("add_openai_endpoint of no URL", lambda b: llm_notebook.add_openai_endpoint("not a url"),
         raises=(ValueError,), says=("Not a base URL or a preset: 'not a url'", "ollama")),
    Call("add_openai_endpoint of a number", lambda b: llm_notebook.add_openai_endpoint(5),
         raises=(TypeError, ValueError), says=("base URL",)),
    Call("add_openai_endpoint of a server that is down",
         lambda b: llm_notebook.add_openai_endpoint("http://127.0.0.1:9/v1"),
         raises=(ModelError,), says=("Cannot list the models of http://127.0.0.1:9/v1",
                                     "Is the server running")),
    Call("add_openai_endpoint of a server answering HTML",
         lambda b: (b.server.queue(error_reply(200, "Sign in", kind="html")),
                    llm_notebook.add_openai_endpoint(b.server.openai_url)),
         raises=(ModelError,), says=("not JSON", "Sign in")),
    # -- interpolation ---------------------------------------------------------------------------------
    Call("interpolate of a number", lambda b: interpolate(5, {}), raises=(TypeError,),
         says=("interpolate() takes the prompt as a string, not int",)),
    Call("interpolate with no mapping", lambda b: interpolate("{x}", ["x"]), raises=(TypeError,),
         says=("as a mapping", "not list")),
    Call("interpolate of a value whose __str__ raises",
         lambda b: interpolate("{loud}", {"loud": BrokenText()}), raises=(InterpolationError,),
         says=("{loud} cannot be turned into text (RuntimeError: first line)",)),
    # -- attachments ---------------------------------------------------------------------------------
    Call("from_object of a ZipFile",
         lambda b: llm_notebook.Attachment.from_object(zipfile.ZipFile(io.BytesIO(), "w")),
         raises=(AttachmentError,), says=("zipfile.ZipFile", "accepted are")),
    Call("from_object of a 14000² array",
         lambda b: llm_notebook.Attachment.from_object(np.zeros((14000, 14000), np.uint8)),
         raises=(AttachmentError,), says=("14,000×14,000", "max_image_pixels")),
    Call("from_object of a decompression bomb",
         lambda b: llm_notebook.Attachment.from_object(bomb_png(12000, 12000)),
         raises=(AttachmentError,), says=("12,000×12,000",)),
    Call("from_object of a 16-byte PPM",
         lambda b: llm_notebook.Attachment.from_object(PPM_16_BYTES),
         raises=(AttachmentError,), says=("16 bytes",)),
    Call("a URL attachment from an endless server",
         lambda b: (b.server.queue(faults.endless_stream()),
                    setattr(llm_notebook.settings, "max_attachment_bytes", 100_000),
                    llm_notebook.Attachment(url=b.server.url + "/endless").content_bytes()),
         raises=(AttachmentError,), says=("larger than 100,000 bytes",)),
    # -- map -------------------------------------------------------------------------------------------
    Call("map over an unknown model",
         lambda b: llm_notebook.map("{}", ["a"], model="nope", progress=False),
         raises=(UnknownModelError,), says=("Unknown model 'nope'",)),
    Call("map over a number", lambda b: llm_notebook.map("{}", 5, model="echo", progress=False),
         raises=(TypeError,), says=("items must be a list, a pandas Series or a DataFrame",)),
    Call("map with concurrency 0",
         lambda b: llm_notebook.map("{}", ["a"], model="echo", concurrency=0, progress=False),
         raises=(ValueError,), says=("concurrency must be at least 1",)),
    Call("map with a rejected key", map_errors(*[error_reply(401, "bad key")] * 2, requests=2),
         raises=(), says=("The API key was rejected", "set_key('openai', ...)")),
    Call("map over a server that keeps failing",
         map_errors(*[error_reply(500, "down", headers={"Retry-After": "0"})] * 4, requests=4,
                    retries=1),
         raises=(), says=("The server failed (after 1 retry)", "Try again later")),
    Call("map with a field the items lack",
         lambda b: llm_notebook.map("{nope}", [{"a": 1}], model="echo", progress=False),
         raises=(LLMNotebookError,), says=("{nope}", "its fields: a")),
    # -- conversations -------------------------------------------------------------------------------
    Call("a conversation without a name", lambda b: llm_notebook.conversation(""),
         raises=(ValueError,), says=("A conversation needs a name",)),
    Call("a named conversation with another model",
         lambda b: (llm_notebook.conversation("catalogue-talk", model="echo"),
                    llm_notebook.conversation("catalogue-talk", model="markov")),
         raises=(ValueError,), says=("is with model 'echo', not 'markov'",)),
    # -- widgets ---------------------------------------------------------------------------------------
    Call("chat with an unknown model", lambda b: llm_notebook.chat("nope"),
         raises=(UnknownModelError,), says=("Unknown model 'nope'",)),
    Call("chat: an attachment that names nothing", chat_error(attachments=["nope_nope"]),
         raises=(), says=("'nope_nope' is neither a variable nor a file",)),
    Call("chat: an unknown option", chat_error(foo=1), raises=(),
         says=("unknown option 'foo'",)),
    Call("chat: a model failing mid-answer", chat_partial, raises=(),
         says=("RuntimeError: backend fell over",)),
    Call("chat: an option edit that is no number", option_error("delay", "abc"), raises=(),
         says=("option 'delay'", "valid number")),
    Call("chat: an edit of an unknown option", option_error("nope", "1"), raises=(),
         says=("echo has no option 'nope'",)),
    Call("chat: a model menu pick that is gone", chat_model_menu, raises=(),
         says=("Unknown model 'gone-model'",)),
    Call("model picker: setting an unknown model",
         lambda b: setattr(llm_notebook.model_picker(), "value", "nope"),
         raises=(UnknownModelError,), says=("Unknown model 'nope'",),
         check=absent("default_model.txt")),
    Call("model picker: a front end choosing an unknown id", picker_status("nope"), raises=(),
         says=("Unknown model 'nope'",)),
    Call("model picker: a front end choosing a number", picker_status(5), raises=(),
         says=("model",)),
]