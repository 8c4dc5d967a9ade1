"""Keys never shown: masked reprs, redaction of every form a key takes, keys checked when stored,
and a real kernel in verbose traceback mode where a failing request shows no key anywhere."""

from __future__ import annotations

import base64
import copy
import json
import pickle
import secrets
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llm_notebook
from llm_notebook import keys
from llm_notebook.keys import MIN_REDACTED_LENGTH, InvalidKeyError, Secret, redact, redact_known
from tests.magics_kernel import KernelNotebook
from tests.support.fake_llm_server import error_reply
from tests.test_magics import one_line_error


ROOT = Path(__file__).resolve().parent.parent


def new_key() -> str:
    """A key no other test has seen, so the process-wide set of known keys cannot help."""
    return "sk-test-" + secrets.token_hex(12)


# -- Secret ------------------------------------------------------------------------------------------
def test_a_secret_is_its_string_where_used_and_masked_where_shown():
    key = new_key()
    secret = Secret(key)
    assert secret == key and hash(secret) == hash(key)
    assert f"Bearer {secret}" == f"Bearer {key}" and "Bearer " + secret == f"Bearer {key}"
    assert json.dumps({"api_key": secret}) == json.dumps({"api_key": key})
    assert secret.encode() == key.encode()
    for shown in (repr(secret), repr([secret]), repr({"openai": secret}), str({"openai": secret}),
                  repr((secret,)), "%r" % (secret,), f"{secret!r}", repr(copy.deepcopy([secret])),
                  repr(pickle.loads(pickle.dumps(secret)))):
        assert key not in shown and "***" in shown


def test_models_holding_keys_show_none_in_their_reprs():
    key = new_key()
    model = llm_notebook.get_model("gpt-4o-mini")
    try:
        model.key = key
        response = model.prompt("hi")
        prompt = response.prompt
        for shown in (repr(model), str(model), repr(vars(model)), repr(response), repr(prompt),
                      repr(response.__dict__), repr(llm_notebook.get_models())):
            assert key not in shown
        assert model.get_key() == key and isinstance(model.get_key(), Secret)
    finally:
        model.key = None


def test_every_key_handed_around_is_a_secret(monkeypatch):
    stored, from_env, given = new_key(), new_key(), new_key()
    llm_notebook.set_key("svc", stored)
    monkeypatch.setenv("SVC_API_KEY", from_env)
    assert keys.known_secrets().isdisjoint({from_env, given})
    for found, expected in ((keys.stored_key("svc"), stored),
                            (keys.resolve_key(explicit=None, model_key=None, name=None,
                                              env_var="SVC_API_KEY"), from_env),
                            (keys.resolve_key(explicit=given, model_key=None, name="svc",
                                              env_var=None), given)):
        assert type(found) is Secret and found == expected
    assert {stored, from_env, given} <= keys.known_secrets()
    assert all(type(k) is Secret for k in keys.known_secrets())
    text = f"sent {stored}, then {from_env} and {given}"
    assert redact_known(text) == "sent ***, then *** and ***"


# -- storing a key -------------------------------------------------------------------------------------
def test_a_key_read_from_a_file_is_stored_without_its_newline(user_dir, tmp_path):
    key = new_key()
    (tmp_path / "key.txt").write_text(f"  {key}\n")
    llm_notebook.set_key("svc", open(tmp_path / "key.txt").read())
    assert json.loads((user_dir / "keys.json").read_text()) == {"svc": key}
    assert keys.stored_key("svc") == key


@pytest.mark.parametrize("value, problem", [
    ("", "set_key needs a non-empty key value (it was empty or only spaces)"),
    (" \n\t ", "set_key needs a non-empty key value (it was empty or only spaces)"),
    ("{key}\x00", "The key has a control or invisible character (U+0000) at position 33"),
    ("{key}\nsecond line", "The key has a control or invisible character (U+000A) at position 33"),
    ("sk-\u200b{key}", "The key has a control or invisible character (U+200B) at position 4"),
    ("{key}\u2019", "The key has a character that is not ASCII at position 33"),
])
def test_a_key_that_cannot_be_one_is_refused_naming_the_problem_not_the_key(user_dir, value,
                                                                           problem):
    key = new_key()
    with pytest.raises(InvalidKeyError) as error:
        llm_notebook.set_key("svc", value.format(key=key))
    assert str(error.value).startswith(problem)
    assert isinstance(error.value, ValueError) and isinstance(error.value, llm_notebook.LLMNotebookError)
    assert key not in str(error.value) and "\n" not in str(error.value)
    assert not (user_dir / "keys.json").exists()


def test_a_key_name_is_needed():
    with pytest.raises(InvalidKeyError, match="set_key needs a key name, such as 'openai'"):
        llm_notebook.set_key(" ", new_key())


# -- redaction -----------------------------------------------------------------------------------------
KEY_CHARACTERS = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="*")
#: Random keys: printable ASCII (no `*`, which the mask itself is made of), sometimes with the
#: surrounding whitespace or the quotes and backslashes that change how a repr escapes them.
KEYS = st.builds(lambda core, end: core + end,
                 st.text(KEY_CHARACTERS, min_size=MIN_REDACTED_LENGTH, max_size=64),
                 st.sampled_from(["", "\n", "'", '"', "\\", "'\"", " \n"]))
TEXT = st.text(max_size=40)


def forms_of(key: str) -> dict[str, tuple[str, str]]:
    """Each way a key shows up in text: (the text that carries it, the part that must go)."""
    raw = key.encode()
    bearer = f"Bearer {key}"
    b64 = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    basic = base64.b64encode(b"user:" + raw).decode()
    str_repr, bytes_repr = repr(bearer), repr(bearer.encode())
    return {
        "as is": (key, key),
        "str repr": (str_repr, str_repr[len("'Bearer "):-1]),
        "bytes repr": (bytes_repr, bytes_repr[len("b'Bearer "):-1]),
        "json": (json.dumps({"auth": bearer}), json.dumps(key)[1:-1]),
        "base64": (b64, b64),
        "base64 unpadded": (b64.rstrip("="), b64.rstrip("=")),
        "urlsafe base64": (urlsafe, urlsafe),
        "urlsafe base64 unpadded": (urlsafe.rstrip("="), urlsafe.rstrip("=")),
        "basic auth": (f"Authorization: Basic {basic}", basic[8:-4]),
        "url": (f"https://h/?key={quote(key, safe='')}", quote(key, safe="")),
        "url plus": (f"https://h/?key={quote_plus(key)}", quote_plus(key)),
    }


@settings(max_examples=300, deadline=None)
@given(key=KEYS, before=TEXT, after=TEXT, form=st.sampled_from(sorted(forms_of("x" * 8))))
def test_every_form_of_a_key_embedded_in_text_is_gone_after_redact(key, before, after, form):
    carrier, core = forms_of(key)[form]
    redacted = redact(before + carrier + after, key)
    assert core not in redacted and carrier not in redacted


def test_redacting_the_known_keys_covers_the_same_forms():
    key = new_key() + "'\n"
    carriers = forms_of(key)
    assert all(core in redact_known(carrier) for carrier, core in carriers.values())
    Secret(key)
    for carrier, core in carriers.values():
        assert core not in redact_known(f"before {carrier} after")


def test_short_keys_are_not_redacted_and_ordinary_text_is_untouched():
    assert MIN_REDACTED_LENGTH == 8
    assert redact("the cat sat on the mat", "cat") == "the cat sat on the mat"
    assert redact("a 1234567 b", "1234567") == "a 1234567 b"
    assert redact("a 12345678 b", "12345678") == "a *** b"
    key = new_key()
    ordinary = "HTTP 401: Incorrect API key provided. See https://platform.example/account"
    assert redact(ordinary, key) == ordinary


# -- a real kernel, verbose tracebacks --------------------------------------------------------------
CANARY = "sk-canary-" + secrets.token_hex(16)
GET = "llm_notebook.get_model('{model}')"
#: way -> (cell supplying the key, cell whose failure is shown). The key comes from the kernel's
#: environment, so no cell's source holds it.
WAYS = {
    "environment variable": ("os.environ['OPENAI_API_KEY'] = os.environ['CANARY']",
                             GET + ".prompt('hi').text()"),
    "set_key": ("llm_notebook.set_key('openai', os.environ['CANARY'])",
                GET + ".prompt('hi').text()"),
    "prompt(key=)": ("response = " + GET + ".prompt('hi', key=os.environ['CANARY'])",
                     "response.text()"),
    "model.key": ("model = " + GET + "\nmodel.key = os.environ['CANARY']",
                  "model.prompt('hi').text()"),
    "endpoint api_key": ("llm_notebook.add_openai_endpoint(os.environ['OPENAI_BASE_URL'], "
                         "name='canary', models=['canary-model'], api_key=os.environ['CANARY'])",
                         GET.format(model="canary-model") + ".prompt('hi').text()"),
    "anthropic environment variable": ("os.environ['ANTHROPIC_API_KEY'] = os.environ['CANARY']",
                                       GET.format(model="claude-sonnet-4-5") + ".prompt('hi').text()"),
}
RESET = """
for name in ('OPENAI_API_KEY', 'ANTHROPIC_API_KEY'):
    os.environ.pop(name, None)
llm_notebook.delete_key('openai')
llm_notebook.get_model('gpt-4o-mini').key = None
os.environ['OPENAI_BASE_URL'] = {openai!r}
os.environ['ANTHROPIC_BASE_URL'] = {anthropic!r}
"""
INTERPOLATION_SETUP = """
from llm_notebook.keys import Secret
secret = Secret(os.environ['CANARY'])
in_a_dict = {'openai': secret}
plain_copy = {'auth': 'Bearer ' + os.environ['CANARY']}
keyed = llm_notebook.get_model('gpt-4o-mini')
keyed.key = os.environ['CANARY']
os.environ['SERVICE_TOKEN'] = os.environ['CANARY']
from tests.support.awkward_values import BrokenText, EndlessText
loud, endless, _hidden = BrokenText(), EndlessText(), 'private'
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("secrets")
    notebook = KernelNotebook(workdir, env={
        "LLM_NOTEBOOK_USER_PATH": str(workdir / "user"), "LLM_NOTEBOOK_LOAD_PLUGINS": "",
        "CANARY": CANARY, "PYTHONPATH": str(ROOT)})
    notebook.run("%load_ext llm_notebook\n%xmode Verbose\nimport os\nimport llm_notebook")
    yield notebook
    notebook.close()


def assert_no_canary(run) -> None:
    shown = json.dumps(run.outputs)
    assert CANARY not in shown
    assert redact(shown, CANARY) == shown, "a form of the key (escaped, base64, URL) is shown"


@pytest.mark.parametrize("failure", ["connection refused", "key rejected"])
@pytest.mark.parametrize("way", sorted(WAYS))
def test_a_failing_request_in_verbose_mode_shows_the_key_nowhere(kernel, fake_llm_server, way,
                                                                 failure):
    fake_llm_server.reset()
    if failure == "key rejected":
        urls = {"openai": fake_llm_server.openai_url, "anthropic": fake_llm_server.url}
        kind = "anthropic" if "anthropic" in way else "openai"
        fake_llm_server.queue(error_reply(401, f"Incorrect API key provided: {CANARY}", kind=kind))
    else:
        urls = {"openai": "http://127.0.0.1:1/v1", "anthropic": "http://127.0.0.1:1"}
    kernel.run(RESET.format(**urls))
    supply, fail = WAYS[way]
    kernel.run(supply.format(model="gpt-4o-mini"))
    run = kernel.run(fail.format(model="gpt-4o-mini"), expect_error=True)
    assert run.error["ename"] == "ModelError"
    traceback = run.error_text()
    assert traceback.count("llm_notebook/") >= 2 and "(self=<Response model=" in traceback, (
        "verbose mode shows the package's frames with their variables")
    assert_no_canary(run)
    if failure == "key rejected":  # the key really went out, in its header
        [request] = fake_llm_server.requests
        sent = request.headers.get("authorization") or request.headers.get("x-api-key")
        assert CANARY in sent


REFUSED_REFERENCES = [
    ("{_hidden}", "{_hidden}: variables starting with _ are not filled in"),
    ("{keyed.__dict__}", "{keyed.__dict__}: .__dict__ is private"),
    ("{keyed._llm_notebook_key}", "{keyed._llm_notebook_key}: ._llm_notebook_key is private"),
    ("{secret}", "{secret}: an API key is never put in a prompt"),
    ("{in_a_dict[openai]}", "{in_a_dict[openai]}: an API key is never put in a prompt"),
    ("{keyed.key}", "{keyed.key}: .key of a model is its API key"),
    ("{plain_copy}", "{plain_copy}: its text contains an API key"),
    ("{os.environ}", "{os.environ}: the environment holds API keys"),
    ("{os.environ.copy}", "{os.environ.copy}: the environment holds API keys"),
    ("{os.environ[SERVICE_TOKEN]}", "{os.environ[SERVICE_TOKEN]}: environment variables named "
                                    "like credentials are never put in a prompt"),
    ("{loud}", "{loud} cannot be turned into text (RuntimeError: first line)"),
    ("{endless}", "{endless} cannot be turned into text (RecursionError: maximum recursion depth"),
]


@pytest.mark.parametrize("reference, message", REFUSED_REFERENCES)
def test_interpolation_refusals_are_one_line_in_the_notebook(kernel, reference, message):
    kernel.run(INTERPOLATION_SETUP)
    run = kernel.run(f"%%llm -m echo\nsummarise {reference} please", expect_error=True)
    assert one_line_error(run).startswith(f"InterpolationError: {message}")
    assert_no_canary(run)


def test_a_dict_holding_a_key_interpolates_masked(kernel):
    kernel.run(INTERPOLATION_SETUP)
    run = kernel.run("%%llm -m echo --no-usage\nconfig: {in_a_dict}")
    assert run.error is None
    assert "{'openai': '***'}" in json.dumps(run.outputs).replace('\\"', '"')
    assert_no_canary(run)
