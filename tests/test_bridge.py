"""The llm bridge: the real `llm` 0.36 and the same eight plugins, unported (installed as they are
published, with their own SDKs), used through llm_notebook in a fresh interpreter each, against
the loopback servers. See tests/test_port_plugins.py for the ported ones.

The plugins whose URLs are fixed in their code (llm-mistral, llm-gemini) get a proxy that refuses
every connection, so their network error never depends on, or reaches, the internet.
"""

from __future__ import annotations

import json

import pytest

from tests.support.fake_llm_server import DEFAULT_WORDS, anthropic_events, sse, stream_reply
from tests.support.ollama_server import WORDS as OLLAMA_WORDS
from tests.support.ollama_server import OllamaModel, OllamaServer
from tests.support.plugin_probe import run_probe
from tests.support.port_plugin import installed_plugins

HELLO = "".join(DEFAULT_WORDS)
ANTHROPIC_KEY = "sk-ant-bridge-test-1234"
REFUSING_PROXY = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}


@pytest.fixture(scope="module")
def unported():
    return installed_plugins(ported=False)


@pytest.fixture
def llm_dir(tmp_path):
    """llm's own user directory (its keys), empty for each test."""
    path = tmp_path / "llm-user"
    path.mkdir()
    return path


@pytest.fixture
def bridge(unported, user_dir, llm_dir):
    """Runs probe steps with the bridge on and only the named llm plugins loaded by llm."""
    def run(steps, *, plugins, env=None, on=True):
        environment = {"LLM_USER_PATH": str(llm_dir), "LLM_LOAD_PLUGINS": plugins, **(env or {})}
        if on:
            environment["LLM_NOTEBOOK_LLM_BRIDGE"] = "1"
        return run_probe(unported, steps, user_dir=user_dir, load="", env=environment)

    return run


def prompt(model, text="hi", **extra):
    return {"do": "prompt", "model": model, "prompt": text, **extra}


def talk(model, *texts, **extra):
    return {"do": "conversation", "model": model, "prompts": list(texts), **extra}


def test_llm_is_imported_only_by_a_lookup_that_needs_it(bridge):
    steps = [{"do": "imported", "module": "llm"}, prompt("echo", "ours"),
             {"do": "imported", "module": "llm"}, prompt("llm/echo", "theirs"),
             {"do": "imported", "module": "llm"}]
    before, ours, still_not, theirs, after = bridge(steps, plugins="llm-echo")
    assert before is False and still_not is False and after is True
    assert "ours" in ours["text"] and not ours["text"].startswith("{")  # our offline echo
    assert json.loads(theirs["text"])["prompt"] == "theirs"  # llm-echo's, through llm


def test_off_unless_asked_for(bridge):
    missing, imported = bridge([prompt("echo-needs-key"), {"do": "imported", "module": "llm"}],
                               plugins="llm-echo", on=False)
    assert missing["error_type"] == "UnknownModelError" and imported is False


def test_ids_that_collide_stay_ours_and_llm_prefix_reaches_theirs(bridge):
    [models] = bridge([{"do": "models"}], plugins="llm-echo")
    assert models["failed"] == {}
    assert "echo" in models["models"] and "llm/echo" in models["models"]
    assert "llm/echo-needs-key" in models["models"]["echo-needs-key"]
    assert "llm/gpt-4o" in models["models"]  # llm's own OpenAI models, beside ours
    assert "4o" in models["models"]["gpt-4o"] and "4o" not in models["models"]["llm/gpt-4o"]
    assert {"llm/echo", "echo-needs-key"} <= set(models["sync"]) & set(models["async"])


def test_llm_echo_through_the_bridge_streams_events_keeps_conversations_and_logs(bridge):
    key = "echo-bridge-key-12345"
    sync, async_, image, conversation, thinking, keyed, logged = bridge([
        prompt("llm/echo", "one two"), prompt("llm/echo", "three", **{"async": True}),
        prompt("llm/echo", "look", image=True), talk("llm/echo", "first", "second"),
        prompt("llm/echo", "think", options={"thinking": True}),
        prompt("echo-needs-key", "keyed", key=key), {"do": "logs"}], plugins="llm-echo")
    assert json.loads(sync["text"])["prompt"] == "one two"
    assert sync["usage"]["input"] == 2 and sync["usage"]["output"] > 0
    assert json.loads(async_["text"])["prompt"] == "three"
    assert json.loads(image["text"])["attachments"][0]["type"] == "image/png"
    assert json.loads(conversation[1]["text"])["previous"] == [{"prompt": "first"}]
    assert [p["type"] for p in thinking["parts"]] == ["reasoning", "text"]
    assert key not in keyed["text"]
    assert [row["model"] for row in logged].count("llm/echo") == 6
    assert {row["status"] for row in logged} == {"done"}


def test_options_are_checked_by_the_llm_models_own_options(bridge):
    [bad] = bridge([prompt("llm/echo", options={"no_such_option": 1})], plugins="llm-echo")
    assert bad["error_type"] == "OptionsError" and "no_such_option" in bad["error"]


def test_llm_openai_plugin_streams_with_usage_and_its_key(bridge, llm_server):
    sync, async_ = bridge([prompt("llm/gpt-4o-mini", key="sk-bridge-openai-123"),
                           prompt("llm/gpt-4o-mini", key="sk-bridge-openai-123",
                                  **{"async": True})],
                          plugins="", env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert sync["chunks"] == DEFAULT_WORDS and async_["text"] == HELLO
    assert sync["usage"]["input"] == 11 and sync["usage"]["output"] == 5
    assert llm_server.requests[0].headers["authorization"] == "Bearer sk-bridge-openai-123"


def test_an_llm_models_events_tool_calls_usage_and_resolved_model_come_through(monkeypatch):
    """In this process: a model written for llm, registered with llm's own plugin manager."""
    import llm
    from llm.parts import StreamEvent

    from llm_notebook import bridge as llm_bridge
    from llm_notebook.plugins import Registry

    class Thinker(llm.Model):
        model_id = "bridge-thinker"

        def execute(self, prompt, stream, response, conversation):
            yield StreamEvent(type="reasoning", chunk="hmm",
                              provider_metadata={"p": {"signature": "s1"}})
            yield "The answer"
            yield StreamEvent(type="tool_call_name", chunk="lookup", tool_call_id="c1")
            yield StreamEvent(type="tool_call_args", chunk='{"q": 1}', tool_call_id="c1")
            response.add_tool_call(llm.ToolCall(name="lookup", arguments={"q": 1},
                                                tool_call_id="c1"))
            response.set_usage(input=3, output=2, details={"cached": 1})
            response.set_resolved_model("bridge-thinker-2026")

    class Plugin:
        @llm.hookimpl
        def register_models(self, register):
            register(Thinker())

    monkeypatch.setenv("LLM_NOTEBOOK_LLM_BRIDGE", "1")
    llm.plugins.pm.register(Plugin(), name="bridge-test-plugin")
    try:
        registry = Registry()
        registry.fallbacks.append(llm_bridge.fallback)
        response = registry.get_model("bridge-thinker").prompt("why?")
        assert response.text() == "The answer"
        parts = [part.to_dict() for part in response.parts_so_far()]
    finally:
        llm.plugins.pm.unregister(name="bridge-test-plugin")
    assert parts[0] == {"type": "reasoning", "text": "hmm",
                        "provider_metadata": {"p": {"signature": "s1"}}}
    assert parts[2]["type"] == "tool_call" and parts[2]["arguments"] == {"q": 1}
    assert [(c.name, c.tool_call_id) for c in response.tool_calls()] == [("lookup", "c1")]
    assert response.usage().input == 3 and response.usage().details == {"cached": 1}
    assert response.resolved_model == "bridge-thinker-2026"


def test_keys_ours_first_then_llms_key_store(bridge, llm_server, user_dir, llm_dir):
    (llm_dir / "keys.json").write_text(json.dumps({"anthropic": "sk-ant-from-llm-store-1"}))
    model = "anthropic/claude-sonnet-4-5"
    env = {"ANTHROPIC_BASE_URL": llm_server.url}
    [from_llm] = bridge([prompt(model)], plugins="llm-anthropic", env=env)
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "keys.json").write_text(json.dumps({"anthropic": "sk-ant-from-our-store-1"}))
    [from_ours] = bridge([prompt(model)], plugins="llm-anthropic", env=env)
    assert from_llm["text"] == from_ours["text"] == HELLO
    assert [r.headers["x-api-key"] for r in llm_server.requests] == [
        "sk-ant-from-llm-store-1", "sk-ant-from-our-store-1"]


def test_llm_anthropic_through_the_bridge(bridge, llm_server):
    llm_server.queue(stream_reply(sse(anthropic_events(["Claude ", "streams."]))))
    model = "anthropic/claude-sonnet-4-5"
    sync, async_, image, conversation = bridge([
        prompt(model, key=ANTHROPIC_KEY), prompt(model, **{"async": True}, key=ANTHROPIC_KEY),
        prompt(model, "describe", image=True, key=ANTHROPIC_KEY),
        talk(model, "first", "second", key=ANTHROPIC_KEY)],
        plugins="llm-anthropic", env={"ANTHROPIC_BASE_URL": llm_server.url})
    assert sync["chunks"] == ["Claude ", "streams."]
    assert sync["usage"]["input"] == 21 and sync["usage"]["output"] == 5
    assert async_["text"] == image["text"] == HELLO
    blocks = llm_server.requests[2].body["messages"][-1]["content"]
    assert [b["type"] for b in blocks] == ["text", "image"]
    second = llm_server.requests[4].body["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert conversation[1]["status"] == "done"


def test_llm_ollama_through_the_bridge(bridge):
    server = OllamaServer([OllamaModel("llama3.2:latest", "sha256:aaa", ("completion", "vision"))])
    try:
        sync, async_, image, conversation = bridge([
            prompt("ollama/llama3.2"), prompt("ollama/llama3.2", **{"async": True}),
            prompt("ollama/llama3.2", "what", image=True), talk("ollama/llama3.2", "a", "b")],
            plugins="llm-ollama", env={"OLLAMA_HOST": server.url})
        chats = server.chats()
    finally:
        server.stop()
    assert sync["chunks"] == async_["chunks"] == OLLAMA_WORDS
    assert (sync["usage"]["input"], sync["usage"]["output"]) == (26, 4)
    assert len(chats[2].body["messages"][-1]["images"]) == 1 and image["status"] == "done"
    assert [m["role"] for m in chats[4].body["messages"]] == ["user", "assistant", "user"]
    assert conversation[1]["text"] == "".join(OLLAMA_WORDS)


def test_llm_groq_through_the_bridge_walks_the_llm_conversation(bridge, llm_server, llm_dir):
    (llm_dir / "groq_models.json").write_text(json.dumps({"models": [
        {"id": "llama-3.1-8b-instant"}]}))
    # llm-groq reads its key itself (from llm's store or its environment variable)
    sync, conversation = bridge([
        prompt("groq/llama-3.1-8b-instant"), talk("groq/llama-3.1-8b-instant", "one", "two")],
        plugins="llm-groq", env={"GROQ_BASE_URL": llm_server.url,
                                 "GROQ_API_KEY": "gsk-bridge-test-12345"})
    assert sync["text"] == HELLO and conversation[1]["text"] == HELLO
    messages = llm_server.requests[2].body["messages"]
    assert messages == [{"role": "user", "content": "one"},
                        {"role": "assistant", "content": HELLO},
                        {"role": "user", "content": "two"}]


def test_llm_llamafile_through_the_bridge(bridge, llm_server):
    _, sync = bridge([
        {"do": "set", "model": "llamafile", "attribute": "llm_model.api_base",
         "value": llm_server.openai_url},
        # under llm, llm-llamafile's model asks for an OpenAI key (its own key is overwritten)
        prompt("llamafile", key="sk-any-key-for-llamafile")], plugins="llm-llamafile")
    assert sync["chunks"] == DEFAULT_WORDS
    assert llm_server.requests[0].body["model"] == "llamafile"


def test_llm_gguf_through_the_bridge(bridge, llm_dir):
    from tests.support.tiny_gguf import make_tiny_llama_gguf

    model_file = make_tiny_llama_gguf(llm_dir.parent / "tiny.gguf", seed=0)
    (llm_dir / "gguf").mkdir()
    (llm_dir / "gguf" / "models.json").write_text(json.dumps(
        {"tiny": {"path": str(model_file), "aliases": ["tiny"], "n_ctx": 128}}))
    [sync] = bridge([prompt("tiny", "Say hello")], plugins="llm-gguf")
    assert sync["status"] == "done" and len(sync["chunks"]) > 1
    assert "".join(sync["chunks"]) == sync["text"]


@pytest.mark.parametrize("plugins, model", [("llm-mistral", "mistral/mistral-small-latest"),
                                            ("llm-gemini", "gemini/gemini-2.5-flash")])
def test_fixed_url_plugins_through_the_bridge_fail_with_one_line(bridge, plugins, model):
    sync, async_ = bridge([prompt(model, key="not-a-real-key-123"),
                           prompt(model, key="not-a-real-key-123", **{"async": True})],
                          plugins=plugins, env=REFUSING_PROXY)
    for failed in (sync, async_):
        assert failed["error_type"] == "ModelError", failed
        assert failed["error"].startswith(f"Model {model!r} failed:") and "\n" not in failed["error"]
