"""Real plugins written for `llm`, ported by the minimal rewrite (tests/support/port_plugin.py),
installed with their own dependencies and used through llm_notebook in a fresh interpreter each,
against loopback servers in their wire formats wherever their base URL can be pointed.

llm-mistral and llm-gemini fix their URLs in code: for them, registration and a clear network
error. A proxy that refuses every connection (HTTPS_PROXY at a closed loopback port) stands in
for the sandbox's refused internet, so the result never depends on the network and nothing is
sent to it.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.support.fake_llm_server import (DEFAULT_WORDS, anthropic_events, anthropic_usage,
                                           openai_chunk, openai_events, sse, stream_reply)
from tests.support.ollama_server import WORDS as OLLAMA_WORDS
from tests.support.ollama_server import OllamaModel, OllamaServer
from tests.support.plugin_probe import run_probe
from tests.support.port_plugin import PLUGINS, installed_plugins, rewrite_metadata, rewrite_python

ANTHROPIC_KEY = "sk-ant-port-test-1234"
GROQ_KEY = "gsk-port-test-1234567"
HELLO = "".join(DEFAULT_WORDS)
REFUSING_PROXY = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}


@pytest.fixture(scope="module")
def ported():
    """The eight plugins, ported and installed once (cached between runs)."""
    return installed_plugins(ported=True)


@pytest.fixture
def probe(ported, user_dir):
    def run(steps, *, load, env=None):
        return run_probe(ported, steps, user_dir=user_dir, load=load, env=env)

    return run


def prompt(model, text="hi", **extra):
    return {"do": "prompt", "model": model, "prompt": text, **extra}


def talk(model, *texts, **extra):
    return {"do": "conversation", "model": model, "prompts": list(texts), **extra}


def the_usual(model, *, key=None, image_model=None, image_prompt="describe"):
    """What a user does first with a plugin: list the models, then a streamed prompt, an async
    one, one with an image, a two-turn conversation and a prompt that is not streamed."""
    keyed = {"key": key} if key else {}
    return [{"do": "models"}, prompt(model, **keyed), prompt(model, **{"async": True}, **keyed),
            prompt(image_model or model, image_prompt, image=True, **keyed),
            talk(model, "first", "second", **keyed), prompt(model, stream=False, **keyed)]


def loaded(result):
    """The models step, once it is clear that no plugin failed."""
    assert result["failed"] == {}, result["failed"]
    return result


# -- the rewrite itself ------------------------------------------------------------------------------
def test_the_rewrite_points_imports_entry_points_and_dependencies_at_llm_notebook():
    source = ("import llm\nfrom llm import hookimpl\nfrom llm.parts import (\n    TextPart,\n)\n"
              "import llm_ollama\nfrom llm_ollama.auth import get_client\n"
              "    import llm  # inside a function\nimport llm as l\n"
              "def f():\n    from llm.default_plugins.openai_models import Chat\n")
    assert rewrite_python(source) == (
        "import llm_notebook as llm\nfrom llm_notebook import hookimpl\n"
        "from llm_notebook.parts import (\n    TextPart,\n)\n"
        "import llm_ollama\nfrom llm_ollama.auth import get_client\n"
        "    import llm_notebook as llm  # inside a function\nimport llm_notebook as l\n"
        "def f():\n    from llm_notebook.default_plugins.openai_models import Chat\n")
    metadata = ('dependencies = [\n    "llm>=0.36",\n    "llm-foo",\n    "anthropic>=1.5,<2",\n]\n'
                'other = ["llm"]\n[project.entry-points.llm]\nanthropic = "llm_anthropic"\n')
    assert rewrite_metadata(metadata) == (
        'dependencies = [\n    "llm-foo",\n    "anthropic>=1.5,<2",\n]\nother = []\n'
        '[project.entry-points.llm_notebook]\nanthropic = "llm_anthropic"\n')
    assert rewrite_metadata('entry_points={"llm": ["x = x"]}') == 'entry_points={"llm_notebook": ["x = x"]}'


def test_each_ported_plugin_has_the_llm_notebook_entry_point_and_no_llm_requirement(ported):
    for name in PLUGINS:
        [info] = ported.glob(f"{name.replace('-', '_')}-*.dist-info")
        assert "[llm_notebook]" in (info / "entry_points.txt").read_text()
        requires = [line for line in (info / "METADATA").read_text().splitlines()
                    if line.startswith("Requires-Dist:")]
        assert not [r for r in requires if re.match(r"Requires-Dist: llm\b(?!-)", r)], requires


# -- llm-echo: offline -------------------------------------------------------------------------------
def test_llm_echo(probe):
    key = "echo-secret-key-12345"
    models, sync, async_, image, conversation, thinking, keyed = probe([
        {"do": "models"}, prompt("echo", "one two"), prompt("echo", "three", **{"async": True}),
        prompt("echo", "look", image=True), talk("echo", "first", "second"),
        prompt("echo", "think", options={"thinking": True}),
        prompt("echo-needs-key", "keyed", key=key)], load="llm-echo")
    loaded(models)
    assert {"echo", "echo-needs-key"} <= set(models["sync"]) & set(models["async"])
    assert json.loads(sync["text"])["prompt"] == "one two" and sync["status"] == "done"
    assert sync["chunks"] == [sync["text"]]
    assert sync["usage"]["input"] == 2 and sync["usage"]["output"] > 0
    assert json.loads(async_["text"])["prompt"] == "three"
    assert json.loads(image["text"])["attachments"][0]["type"] == "image/png"
    first, second = conversation
    assert json.loads(second["text"])["previous"] == [{"prompt": "first"}]
    assert [p["type"] for p in thinking["parts"]] == ["reasoning", "text"]
    assert thinking["parts"][0]["text"].startswith("First I consider the prompt")
    assert key not in keyed["text"] and json.loads(keyed["text"])["key"] == "***"


# -- llm-anthropic: the Anthropic SDK against the loopback server --------------------------------------
def test_llm_anthropic(probe, llm_server):
    usage = anthropic_usage(input_tokens=30, output_tokens=1, cache_read=7)
    llm_server.queue(stream_reply(sse(anthropic_events(["Claude ", "streams."], usage=usage,
                                                       final_output=9))))
    model = "anthropic/claude-sonnet-4-5"
    models, sync, async_, image, conversation, whole = probe(
        the_usual(model, key=ANTHROPIC_KEY), load="llm-anthropic",
        env={"ANTHROPIC_BASE_URL": llm_server.url})
    loaded(models)
    assert model in models["sync"] and model in models["async"]
    assert sync["chunks"] == ["Claude ", "streams."]
    assert sync["usage"]["input"] == 30 and sync["usage"]["output"] == 9
    assert async_["text"] == HELLO and whole["text"] == HELLO
    requests = [r for r in llm_server.requests if r.path == "/v1/messages"]
    assert all(r.headers["x-api-key"] == ANTHROPIC_KEY for r in requests)
    assert image["text"] == HELLO
    blocks = requests[2].body["messages"][-1]["content"]
    assert {"type": "text", "text": "describe"} in blocks
    [picture] = [b for b in blocks if b["type"] == "image"]
    assert picture["source"]["media_type"] == "image/png"
    assert [c["text"] for c in conversation] == [HELLO, HELLO]
    second = requests[4].body["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"][0]["text"] == HELLO


# -- llm-ollama: the ollama client against a loopback server speaking Ollama's API ---------------------
@pytest.fixture
def ollama():
    server = OllamaServer([OllamaModel("llama3.2:latest", "sha256:aaa", ("completion", "vision",
                                                                           "tools")),
                           OllamaModel("nomic-embed-text:latest", "sha256:bbb", ("embedding",))])
    yield server
    server.stop()


def test_llm_ollama(probe, ollama):
    models, sync, async_, image, conversation, whole = probe(
        the_usual("ollama/llama3.2", image_model="ollama/llama3.2:latest",
                  image_prompt="what is it"), load="llm-ollama", env={"OLLAMA_HOST": ollama.url})
    loaded(models)
    assert models["models"]["ollama/llama3.2:latest"] == ["ollama/llama3.2"]
    assert "ollama/nomic-embed-text:latest" in models["embedding_models"]
    assert models["tools"] == ["ollama_web_fetch", "ollama_web_search"]
    assert sync["chunks"] == OLLAMA_WORDS
    assert sync["usage"]["input"] == 26 and sync["usage"]["output"] == 4
    assert async_["chunks"] == OLLAMA_WORDS and whole["text"] == "".join(OLLAMA_WORDS)
    assert image["status"] == "done"
    chats = ollama.chats()
    assert chats[2].body["messages"][-1]["content"] == "what is it"
    assert len(chats[2].body["messages"][-1]["images"]) == 1
    assert [c["text"] for c in conversation] == ["".join(OLLAMA_WORDS)] * 2
    assert [m["role"] for m in chats[4].body["messages"]] == ["user", "assistant", "user"]
    assert chats[4].body["messages"][1]["content"] == "".join(OLLAMA_WORDS)
    assert chats[5].body["stream"] is False


# -- llm-groq: the Groq SDK against the loopback server -----------------------------------------------
def groq_stream(words, prompt_tokens, completion_tokens):
    """Groq's stream: OpenAI's chunks, the usage in the last one's `x_groq`."""
    events = openai_events(words, usage=None)
    finish = openai_chunk(None, "stop")
    finish["x_groq"] = {"id": "req_1", "usage": {"prompt_tokens": prompt_tokens,
                                                 "completion_tokens": completion_tokens,
                                                 "total_tokens": prompt_tokens + completion_tokens}}
    return stream_reply(sse(events[:-2] + [(None, finish), events[-1]]))


def test_llm_groq(probe, llm_server, user_dir):
    user_dir.mkdir(parents=True, exist_ok=True)  # the plugin reads its model list from there
    (user_dir / "groq_models.json").write_text(json.dumps({"models": [
        {"id": "llama-3.1-8b-instant"}, {"id": "llama-3.2-11b-vision-preview"}]}))
    llm_server.queue(groq_stream(["Fast ", "answer."], 12, 2))
    text_model, vision = "groq/llama-3.1-8b-instant", "groq/llama-3.2-11b-vision-preview"
    models, sync, async_, image, conversation, whole = probe(
        the_usual(text_model, key=GROQ_KEY, image_model=vision), load="llm-groq",
        env={"GROQ_BASE_URL": llm_server.url})
    loaded(models)
    assert {text_model, vision} <= set(models["async"])
    assert sync["chunks"] == ["Fast ", "answer."]
    assert (sync["usage"]["input"], sync["usage"]["output"]) == (12, 2)
    assert async_["text"] == HELLO and whole["text"] == HELLO
    assert whole["usage"]["input"] == 11 and whole["usage"]["output"] == 5
    requests = llm_server.requests
    assert all(r.path == "/openai/v1/chat/completions" for r in requests)
    assert all(r.headers["authorization"] == f"Bearer {GROQ_KEY}" for r in requests)
    assert image["text"] == HELLO
    picture = requests[2].body["messages"][-1]["content"][0]
    assert picture["image_url"]["url"].startswith("data:image/png;base64,")
    assert [m["role"] for m in requests[4].body["messages"]] == ["user", "assistant", "user"]
    assert requests[4].body["messages"][1]["content"] == conversation[0]["text"] == HELLO


# -- llm-llamafile: llm's Chat class, subclassed ---------------------------------------------------
def test_llm_llamafile(probe, llm_server):
    models, pointed, sync, conversation, whole, async_ = probe([
        {"do": "models"},
        {"do": "set", "model": "llamafile", "attribute": "api_base", "value": llm_server.openai_url},
        prompt("llamafile"), talk("llamafile", "first", "second"),
        prompt("llamafile", stream=False), prompt("llamafile", **{"async": True})],
        load="llm-llamafile")
    loaded(models)
    assert "llamafile" in models["sync"]
    assert sync["chunks"] == DEFAULT_WORDS and sync["status"] == "done"
    assert (sync["usage"]["input"], sync["usage"]["output"]) == (11, 5)
    assert whole["text"] == HELLO
    requests = llm_server.requests
    assert requests[0].headers["authorization"] == "Bearer sk-llamafile"  # the plugin's own key
    assert [m["role"] for m in requests[2].body["messages"]] == ["user", "assistant", "user"]
    assert requests[2].body["messages"][1]["content"] == conversation[0]["text"]
    assert "no async version" in async_["error"]  # the plugin registers a sync model only


# -- llm-gguf: llama-cpp-python in the kernel's process, on the tiny GGUF ----------------------------
def test_llm_gguf(probe, user_dir):
    from tests.support.tiny_gguf import make_tiny_llama_gguf

    model_file = make_tiny_llama_gguf(user_dir.parent / "tiny.gguf", seed=0)
    (user_dir / "gguf").mkdir(parents=True)
    (user_dir / "gguf" / "models.json").write_text(json.dumps(
        {"tiny": {"path": str(model_file), "aliases": ["tiny"], "n_ctx": 128}}))
    models, sync, conversation, async_ = probe([
        {"do": "models"}, prompt("tiny", "Say hello"), talk("gguf/tiny", "One", "Two"),
        prompt("tiny", **{"async": True})], load="llm-gguf")
    loaded(models)
    assert models["models"]["gguf/tiny"] == ["tiny"]
    assert len(sync["chunks"]) > 1 and "".join(sync["chunks"]) == sync["text"]
    assert sync["status"] == "done"
    # The random-weight model talks until its context is full, so the second turn, which carries
    # the first turn's answer, no longer fits: the server-side count proves the history went in.
    assert conversation["error_type"] == "ModelError"
    assert re.search(r"Requested tokens \(\d+\) exceed context window", conversation["error"])
    assert "no async version" in async_["error"]
    [warning] = [w for w in models["warnings"] if "llm-gguf" in w]
    assert "register_commands" in warning and "models and tools work" in warning


# -- llm-mistral and llm-gemini: URLs fixed in their code ------------------------------------------
@pytest.mark.parametrize("plugin, model, alias, embedding", [
    ("llm-mistral", "mistral/mistral-small-latest", "mistral-small", "mistral/mistral-embed"),
    ("llm-gemini", "gemini/gemini-2.5-flash", None, "gemini-embedding-001")])
def test_plugins_with_fixed_urls_register_and_fail_clearly_without_a_network(
        probe, plugin, model, alias, embedding):
    models, sync, async_ = probe([
        {"do": "models"}, prompt(alias or model, key="not-a-real-key-123"),
        prompt(model, **{"async": True}, key="not-a-real-key-123")],
        load=plugin, env=REFUSING_PROXY)
    loaded(models)
    assert model in models["sync"] and model in models["async"]
    if alias:
        assert alias in models["models"][model]
    assert embedding in models["embedding_models"]
    for failed in (sync, async_):
        assert failed["error_type"] == "ModelError"
        assert failed["error"].startswith(f"Model {model!r} failed: ConnectError")
        assert "\n" not in failed["error"]


def test_all_eight_load_together(probe):
    [models] = probe([{"do": "models"}], load=",".join(PLUGINS),
                     env={"OLLAMA_HOST": "http://127.0.0.1:9"})
    assert models["failed"] == {}
    for expected in ("echo-needs-key", "llamafile", "anthropic/claude-sonnet-4-5",
                     "gemini/gemini-2.5-flash", "mistral/mistral-small-latest"):
        assert expected in models["models"]
    commands = [w for w in models["warnings"] if "register_commands" in w]
    assert len(commands) == len(set(commands)) == 6  # once per plugin that adds commands


def test_the_registering_hooks_fill_the_registry_and_command_line_hooks_are_named():
    import llm_notebook
    from llm_notebook.plugins import PluginWarning, Registry, hookimpl

    class Tiny(llm_notebook.Model):
        model_id = "hooks-tiny"

        def execute(self, prompt, stream, response, conversation):
            yield "ok"

    class Vectors(llm_notebook.EmbeddingModel):
        model_id = "hooks-vectors"

        def embed_batch(self, items):
            return [[float(len(item))] for item in items]

    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    class Box(llm_notebook.Toolbox):
        def count(self, text: str) -> int:
            return len(text)

    class Plugin:
        @hookimpl
        def register_models(self, register, model_aliases):
            register(Tiny(), aliases=("tiny-alias",))

        @hookimpl
        def register_embedding_models(self, register):
            register(Vectors(), aliases=("vec",))

        @hookimpl
        def register_tools(self, register):
            register(shout)
            register(shout)
            register(Box)

        @hookimpl
        def register_commands(self, cli):
            raise AssertionError("a notebook has no command line to add to")

    registry = Registry()
    with pytest.warns(PluginWarning, match="'hooks-test' implements register_commands.*its "
                                           "models and tools work"):
        registry.register_plugin(Plugin(), name="hooks-test")
    assert registry.get_model("tiny-alias").prompt("x").text() == "ok"
    assert registry.get_embedding_model("vec").embed("abc") == [3.0]
    assert [e.aliases for e in registry.embedding_entries()
            if e.model.model_id == "hooks-vectors"] == [["vec"]]
    tools = registry.tools()
    assert sorted(tools) == ["Box", "shout", "shout_1"]
    assert tools["shout"].implementation("a") == "A" and tools["shout"].plugin == "hooks-test"
    assert tools["Box"] is Box
    assert registry.unserved_hooks == {"hooks-test": ["register_commands"]}
    with pytest.raises(llm_notebook.UnknownModelError, match="Unknown embedding model 've'"):
        registry.get_embedding_model("ve")
