"""The catalogue's notebook cells: bad input a hostile user types into `%%llm` / `%llm` cells,
broken user files, and servers that misbehave, each with what the notebook must show.

Every case runs in the one kernel of tests/test_catalogue.py, in a user directory of its own
(see `catalogue_kernel.fresh_case`). `@@URL@@` in a cell stands for the loopback server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support import fault_server as faults
from tests.support.catalogue_files import (
    FOLDER,
    Check,
    Preparation,
    absent,
    all_of,
    as_it_is,
    holding,
    holds,
    moved_aside,
    read_only,
    unchanged,
    under_a_file,
)
from tests.support.fake_llm_server import (
    Reply,
    error_reply,
    json_reply,
    openai_chunk,
    openai_events,
    sse,
    stream_reply,
)

KEY = "--key sk-catalogue-key-0123456789"
OPENAI = f"%llm -m gpt-4o-mini {KEY}"
CLAUDE = f"%llm -m claude {KEY}"
LAST_LOG = ("row = llm_notebook.logs(1)[0]\n"
            "print(row['status'], repr(row['text']))")
NOT_UTF8 = b"\xff\xfe\x00 not text \x9c"
LOOPING_ALIASES = {"aliases.json": b'{"ping": "pong", "pong": "ping"}'}


@dataclass(frozen=True)
class Cell:
    """One case: `source` typed into a cell, and what the notebook must show for it.

    `says`: the words of the one error line it must show (a traceback of exactly one entry);
    without them the cell must not fail, and `shows` are words of the answer it displays.
    `warns`: words of a warning on stderr. `after` is run next and prints what must have been
    kept (`kept` words); `check` looks at the user directory afterwards. `broken` names the file
    and the fault of a case that fails today (an xfail until that file is fixed).
    """

    what: str
    source: str
    says: tuple[str, ...] = ()
    shows: tuple[str, ...] = ()
    warns: tuple[str, ...] = ()
    replies: Callable[[], list] | None = None
    files: Preparation = as_it_is
    setup: str = ""
    after: str = ""
    kept: tuple[str, ...] = ()
    check: Check | None = None
    cleanup: str = ""
    broken: str = ""
    seconds: int = field(default=30)


def delta_as_a_string() -> list:
    bad = openai_chunk("x") | {"choices": [{"index": 0, "delta": "x"}]}
    return [stream_reply(sse(openai_events(["Before "], done=False)[:2]
                             + [(None, bad), (None, "[DONE]")]))]


def html_page(status: int = 200) -> Reply:
    return Reply(status=status, pieces=[b"<html><title>Sign in</title><body>proxy</body></html>"],
                 content_type="text/html", chunked=False)


CELLS: list[Cell] = [
    # -- interpolation -----------------------------------------------------------------------------
    Cell("a {variable} whose __str__ raises", "%llm -m echo tell me about {loud}",
         says=("InterpolationError: {loud} cannot be turned into text", "RuntimeError: first line")),
    Cell("a {variable} whose __str__ recurses", "%llm -m echo tell me about {endless}",
         says=("{endless} cannot be turned into text", "RecursionError")),
    Cell("a {variable} that is not defined", "%llm -m echo summarise {nothing_here}",
         says=("no variable named 'nothing_here'", "define it first", "{{nothing_here}}")),
    Cell("a {variable[key]} that is missing", "%llm -m echo {cfg[missing]}",
         says=("{cfg[missing]}: [missing] failed (KeyError",)),
    Cell("a {_private} variable", "%llm -m echo {_hidden}",
         says=("variables starting with _ are not filled in",)),
    Cell("a missing {variable} in the system prompt", '%llm -m echo -s "Be {tone}" hi',
         says=("no variable named 'tone'",)),
    # -- subcommands -------------------------------------------------------------------------------
    Cell("%llm logs -n 99999999999999999999", "%llm logs -n 99999999999999999999",
         says=("UsageError: %llm logs -n takes a number of answers from 1 to 10,000",)),
    Cell("%llm logs -n 0", "%llm logs -n 0", says=("from 1 to 10,000, not 0",)),
    Cell("%llm keys set with no stdin", "%llm keys set foo",
         says=("cannot ask for a key", "llm_notebook.set_key('foo', ...)"),
         check=absent("keys.json")),
    Cell("%llm reset of an unknown conversation", "%llm reset nosuch",
         says=("no conversation is named 'nosuch'", "%llm reset alone")),
    Cell("%llm default of an unknown model", "%llm default nope",
         says=("UnknownModelError: Unknown model 'nope'", "%llm models"),
         check=absent("default_model.txt")),
    Cell("%llm alias echo markov", "%llm alias echo markov",
         says=("AliasError: 'echo' is the id of a registered model", "choose another name"),
         check=absent("aliases.json")),
    Cell("%llm alias to an unknown model", "%llm alias short nope",
         says=("Unknown model 'nope'",), check=absent("aliases.json")),
    Cell("-m of an alias loop", "%llm -m ping hi", files=holding(LOOPING_ALIASES),
         says=("AliasError: The aliases make a loop: ping -> pong -> ping", "remove_alias"),
         check=unchanged("aliases.json", LOOPING_ALIASES["aliases.json"])),
    Cell("%llm alias onto an alias loop", "%llm alias third ping", files=holding(LOOPING_ALIASES),
         says=("The aliases make a loop",),
         check=unchanged("aliases.json", LOOPING_ALIASES["aliases.json"])),
    Cell("%llm default of an alias loop", "%llm default pong", files=holding(LOOPING_ALIASES),
         says=("The aliases make a loop: pong -> ping -> pong",),
         check=absent("default_model.txt")),
    Cell("%llm models of an alias loop", "%llm models ping", files=holding(LOOPING_ALIASES),
         says=("The aliases make a loop",)),
    # -- user files --------------------------------------------------------------------------------
    Cell("%llm default in a read-only user directory", "%llm default markov",
         files=read_only({"aliases.json": b'{"short": "echo"}'}),
         says=("UserFileError: Cannot write", "default_model.txt", "LLM_NOTEBOOK_USER_PATH"),
         after="%llm default", kept=("Default model: echo",),
         check=unchanged("aliases.json", b'{"short": "echo"}')),
    Cell("%llm alias in a read-only user directory", "%llm alias brief echo",
         files=read_only({"aliases.json": b'{"short": "echo"}'}),
         says=("Cannot write", "aliases.json", "a folder you can write"),
         check=unchanged("aliases.json", b'{"short": "echo"}')),
    Cell("%llm default with a user directory that cannot be created", "%llm default markov",
         files=under_a_file,
         says=("Cannot create the llm_notebook user directory", "a file stands where a folder",
               "LLM_NOTEBOOK_USER_PATH")),
    Cell("%llm alias with a user directory that cannot be created", "%llm alias brief echo",
         files=under_a_file, says=("Cannot create the llm_notebook user directory",)),
    Cell("the offline models answer when the user directory cannot be created, cache on",
         "llm_notebook.settings.cache = 'auto'\n%llm -m echo --no-usage still answering",
         files=under_a_file, shows=("still answering",), warns=("could not write the log",)),
    Cell("default_model.txt that is a folder", "%llm default",
         files=holding({"default_model.txt": FOLDER}),
         warns=("default_model.txt cannot be read: it is a folder, not a file",),
         after="print(llm_notebook.get_default_model())", kept=("echo",)),
    Cell("%llm default over a default_model.txt that is a folder", "%llm default markov",
         files=holding({"default_model.txt": FOLDER}),
         warns=("It was moved to default_model.txt.corrupt-",),
         check=all_of(moved_aside("default_model.txt", FOLDER), holds("default_model.txt",
                                                                      "markov"))),
    Cell("default_model.txt that is not UTF-8", "%llm default",
         files=holding({"default_model.txt": NOT_UTF8}), warns=("it is not UTF-8 text",),
         after="print(llm_notebook.get_default_model())", kept=("echo",),
         check=unchanged("default_model.txt", NOT_UTF8)),
    Cell("%llm default over a default_model.txt that is not UTF-8", "%llm default markov",
         files=holding({"default_model.txt": NOT_UTF8}), warns=("it is not UTF-8 text",),
         check=moved_aside("default_model.txt", NOT_UTF8)),
    Cell("keys.json of binary junk", "%llm keys", files=holding({"keys.json": NOT_UTF8}),
         warns=("keys.json cannot be read: it is not UTF-8 text",),
         check=unchanged("keys.json", NOT_UTF8)),
    Cell("aliases.json that holds a list", "%llm -m short hi",
         files=holding({"aliases.json": b'["short", "echo"]'}),
         says=("Unknown model 'short'",), warns=("it holds an array, not an object",),
         check=unchanged("aliases.json", b'["short", "echo"]')),
    Cell("a junk logs.db", "%llm -m echo --no-usage answered anyway\nllm_notebook.log.flush(10)",
         files=holding({"logs.db": b"not a database " * 100}), shows=("answered anyway",),
         after="print(llm_notebook.logs(1))", kept=("[]",),
         warns=("could not write the log",),
         check=unchanged("logs.db", b"not a database " * 100)),
    # -- settings ------------------------------------------------------------------------------------
    Cell("%config LLMMagics.plot_history of the wrong type before %load_ext",
         "%config LLMMagics.plot_history = 'many'\n%load_ext llm_notebook",
         setup="%unload_ext llm_notebook",
         warns=("LLMMagics.plot_history = 'many' is not used",),
         after=("magics = get_ipython().find_magic('llm').__self__\n"
                "print(type(magics).__name__, magics.plot_history)"),
         kept=("LLMMagics 10",),  # loaded, with the default
         cleanup=("get_ipython().config.LLMMagics.plot_history = 10\n"
                  "%load_ext llm_notebook")),
    # -- the magic line --------------------------------------------------------------------------------
    Cell("an unknown option", "%llm -m echo --bogus hi", says=("unrecognized arguments: --bogus",)),
    Cell("an unknown format", "%llm -m echo -f yaml hi", says=("invalid choice: 'yaml'",)),
    Cell("-m with no model", "%llm -m", says=("argument -m/--model: expected one argument",)),
    Cell("an unclosed quote in an option", '%llm -m echo -s "unterminated hi',
         says=('-s: the quote " that starts "unterminated hi is never closed',)),
    Cell("text after %%llm's options", "%%llm -m echo extra words\nhi",
         says=("unexpected text on the %%llm line: 'extra words'",)),
    Cell("an empty %llm", "%llm", says=("UsageError: the prompt is empty",)),
    Cell("a %%llm cell of spaces", "%%llm -m echo\n   \n", says=("the prompt is empty",)),
    Cell("a %%llm cell with no body", "%%llm -m echo", warns=("the cell body is empty",)),
    Cell("a huge cell", "%%llm -m echo --no-usage --out big_answer\n{big}",
         setup="big = 'word ' * 60_000 + 'last'",
         shows=("last",), after="print(big_answer.count('word'), 'last' in big_answer)",
         kept=("60000 True",)),
    Cell("--conversation with another model",
         "%llm -m markov --conversation talk hi",
         setup="%llm -m echo --conversation talk --no-usage first",
         says=("Conversation 'talk' is with model 'echo', not 'markov'",)),
    Cell("--models naming an unknown model", "%llm --models echo,nope hi",
         says=("Unknown model 'nope'",)),
    Cell("-f json with several models", "%llm -m echo -m markov -f json hi",
         says=("-f json takes one model",)),
    Cell("-f code in the background", "%llm -m echo --background -f code hi",
         says=("-f code cannot add a cell from the background",)),
    # -- prompts that look like something else -----------------------------------------------------------
    Cell("a prompt ending in ?", "%llm -m echo --no-usage is it ok?", shows=("is it ok?",)),
    Cell("a prompt ending in ??", "%llm -m echo --no-usage really??", shows=("really??",)),
    Cell("a prompt that starts like %llm help", "%llm -m echo --no-usage help me name this",
         shows=("help me name this",)),
    Cell("a prompt that starts like %llm models", "%llm models are hard, explain overfitting",
         shows=("models are hard, explain overfitting",)),
    Cell("a prompt that starts like %llm logs", "%llm logs -n many", shows=("logs -n many",)),
    Cell("-- before a subcommand's name", "%llm -- help", shows=("> help\n",)),
    # -- models that fail ---------------------------------------------------------------------------------
    Cell("an error before any text", "%llm -m fails-early --out kept_before hi",
         setup="kept_before = 'untouched'",
         says=("ModelError: the backend refused the prompt",),
         after="print(kept_before)", kept=("untouched",)),
    Cell("a failure mid-answer", "%llm -m fails-midway --out partial hi",
         says=("Model 'fails-midway' failed: RuntimeError: backend fell over",),
         after="print(repr(partial))\n" + LAST_LOG,
         kept=("'half an answer '", "error 'half an answer '")),
    Cell("no key for an OpenAI model", "%llm -m gpt-4o-mini hi",
         says=("NeedsKeyException", "llm_notebook.set_key('openai', ...)", "OPENAI_API_KEY")),
    Cell("a key with a newline in the environment",
         "os.environ['OPENAI_API_KEY'] = 'sk-catalogue-0123\\nsecond line'\n%llm -m gpt-4o-mini hi",
         says=("$OPENAI_API_KEY has a control or invisible character (U+000A)",
               "set the variable again")),
    Cell("a key with a typographic quote", "%llm -m gpt-4o-mini --key sk-catalogue\u2019s-key hi",
         says=("The key given with key=... has a character that is not ASCII",)),
    # -- servers that misbehave -------------------------------------------------------------------------
    Cell("a same-origin 307 redirect", f"{OPENAI} --no-usage follow me",
         replies=lambda: [faults.redirect(307, "/moved/v1/chat/completions"), faults.echo()],
         shows=("follow me",)),
    Cell("a redirect to another address", f"{OPENAI} hi",
         replies=lambda: [faults.redirect(307, "http://127.0.0.1:9/v1/steal")],
         says=("HTTP 307", "not sent to another address")),
    Cell("delta as a string", f"{OPENAI} --out kept_text hi", replies=delta_as_a_string,
         says=("The server sent malformed data", '"delta": "x"', "The partial answer is kept"),
         after="print(repr(kept_text))\n" + LAST_LOG, kept=("'Before '", "error 'Before '")),
    Cell("a server answering HTML", f"{OPENAI} hi", replies=lambda: [html_page()],
         says=("answered with text/html instead of an event stream",)),
    Cell("a proxy's HTML error page", f"{CLAUDE} hi",
         setup="llm_notebook.settings.max_retries = 0",
         replies=lambda: [error_reply(502, "Bad gateway", kind="html")],
         says=("HTTP 502", "Bad gateway", "Try again later")),
    Cell("a 500, then a 200", f"{OPENAI} --no-usage hi",
         replies=lambda: [error_reply(500, "down", headers={"Retry-After": "0"})],
         shows=("Hello from the fake server.",)),
    Cell("a TCP reset mid-stream", f"{CLAUDE} --out kept_text hi",
         replies=lambda: [faults.reset_mid_stream(words=2)],
         says=("broke off", "The partial answer is kept"),
         after="print(repr(kept_text))\n" + LAST_LOG,
         kept=("'Partial answers '", "error 'Partial answers '")),
    Cell("a TCP reset before the reply", f"{OPENAI} hi",
         replies=lambda: [faults.reset_before_reply()], says=("@@URL@@",)),
    Cell("a rejected key", f"{OPENAI} hi", replies=lambda: [faults.echo_key_in_error(401)],
         says=("The API key was rejected", "set_key('openai', ...)")),
    Cell("a Retry-After of an hour", f"{CLAUDE} hi",
         replies=lambda: [error_reply(429, "slow down", headers={"Retry-After": "3600"})],
         says=("Rate limited", "wait 3600 s")),
    Cell("an error event before any text", f"{CLAUDE} hi",
         replies=lambda: [stream_reply(sse([("error", {"type": "error", "error": {
             "type": "invalid_request_error", "message": "prompt is too long"}})]))],
         says=("reported an error instead of an answer: prompt is too long",)),
    Cell("an event that is not JSON", f"{OPENAI} hi",
         replies=lambda: [stream_reply([b"data: {not json}\n\n"])],
         says=("malformed data: '{not json}'",)),
    Cell("a whole answer without a message", f"{OPENAI} --no-stream hi",
         replies=lambda: [json_reply({"choices": []})], says=("answered without a message",)),
    Cell("an endless stream past the deadline", f"{OPENAI} --out kept_text hi",
         setup="llm_notebook.settings.answer_timeout = 1.0",
         replies=lambda: [faults.endless_stream()],
         says=("took longer than 1 s", "answer_timeout", "The partial answer is kept"),
         after="print(kept_text[:10])", kept=("more more",)),
]
