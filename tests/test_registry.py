"""The registry: run-time registration, aliases, the default model and lookup errors."""

import json
import re

import pytest

import llm_notebook
from llm_notebook import AsyncModel, Model
from llm_notebook.userfiles import UserFileWarning
from tests.magics_kernel import KernelNotebook


class Upper(Model):
    model_id = "upper"

    def execute(self, prompt, stream, response, conversation):
        yield (prompt.prompt or "").upper()


class Lower(Model):
    model_id = "upper"

    def execute(self, prompt, stream, response, conversation):
        yield (prompt.prompt or "").lower()


class OnlyAsync(AsyncModel):
    model_id = "only-async"

    async def execute(self, prompt, stream, response, conversation):
        yield "async!"


@pytest.fixture(autouse=True)
def cleanup():
    yield
    for model_id in ("upper", "only-async"):
        llm_notebook.plugins.registry.unregister(model_id)


def test_offline_models_are_registered_sync_and_async_with_descriptions():
    entries = {e.model_id: e for e in llm_notebook.get_models_with_aliases()}
    for model_id in ("echo", "markov"):
        assert entries[model_id].model is not None and entries[model_id].async_model is not None
        assert "No key, no network" in entries[model_id].model.description
    assert {m.model_id for m in llm_notebook.get_async_models()} >= {"echo", "markov"}


def test_register_at_run_time_and_again_replaces():
    llm_notebook.register(Upper(), aliases=("up",))
    assert llm_notebook.get_model("up").prompt("shout").text() == "SHOUT"
    llm_notebook.register(Lower())
    assert llm_notebook.get_model("upper").prompt("WHISPER").text() == "whisper"
    assert [m.model_id for m in llm_notebook.get_models()].count("upper") == 1


def test_async_only_model_is_reached_with_get_async_model():
    llm_notebook.register(None, OnlyAsync())
    assert isinstance(llm_notebook.get_async_model("only-async"), OnlyAsync)
    with pytest.raises(llm_notebook.AsyncOnlyModelError) as error:
        llm_notebook.get_model("only-async")
    assert str(error.value) == ("Model 'only-async' is async-only: use "
                                "llm_notebook.get_async_model('only-async') and await its responses")


def test_sync_only_model_named_in_get_async_model_error():
    llm_notebook.register(Upper())
    with pytest.raises(llm_notebook.AsyncOnlyModelError, match=r"has no async version: use llm_notebook.get_model\('upper'\)"):
        llm_notebook.get_async_model("upper")


def test_unknown_model_suggests_closest_ids():
    with pytest.raises(llm_notebook.UnknownModelError) as error:
        llm_notebook.get_model("markow")
    assert str(error.value).startswith("Unknown model 'markow'. Did you mean: markov?")
    with pytest.raises(LookupError, match="List the models with llm_notebook.get_models"):
        llm_notebook.get_model("zzzzzz")


def test_user_aliases_are_stored_in_user_dir(user_dir):
    llm_notebook.set_alias("fast", "markov")
    assert llm_notebook.get_model("fast").model_id == "markov"
    assert '"fast": "markov"' in (user_dir / "aliases.json").read_text()
    assert "fast" in {e.model_id: e for e in llm_notebook.get_models_with_aliases()}["markov"].aliases
    assert llm_notebook.remove_alias("fast") is True
    with pytest.raises(llm_notebook.UnknownModelError):
        llm_notebook.get_model("fast")


def test_alias_to_unknown_model_is_refused():
    with pytest.raises(llm_notebook.UnknownModelError, match="Unknown model 'nope'"):
        llm_notebook.set_alias("x", "nope")


def test_default_model_is_stored_in_user_dir(user_dir):
    assert llm_notebook.get_default_model() == "echo"
    assert llm_notebook.get_model().model_id == "echo"
    llm_notebook.set_default_model("markov")
    assert (user_dir / "default_model.txt").read_text() == "markov"
    assert llm_notebook.get_model().model_id == "markov"
    assert llm_notebook.get_async_model().model_id == "markov"
    with pytest.raises(llm_notebook.UnknownModelError):
        llm_notebook.set_default_model("no-such-model")
    llm_notebook.set_default_model(None)
    assert llm_notebook.get_default_model() == "echo"


def test_register_without_any_model_is_a_clear_error():
    with pytest.raises(ValueError, match="register\\(\\) needs a model"):
        llm_notebook.register(None)


def test_registering_again_replaces_the_aliases_too():
    llm_notebook.register(Upper(), aliases=("old-name",))
    llm_notebook.register(Upper(), aliases=("new-name",))
    assert llm_notebook.get_model("new-name").model_id == "upper"
    with pytest.raises(llm_notebook.UnknownModelError):
        llm_notebook.get_model("old-name")


# -- aliases that would never work, loops, and user files that cannot be read ----------------------
def test_an_alias_named_like_a_model_is_refused_not_silently_ignored(user_dir):
    with pytest.raises(llm_notebook.plugins.AliasError) as error:
        llm_notebook.set_alias("echo", "markov")
    assert str(error.value) == ("'echo' is the id of a registered model, so an alias with that name "
                                "would never be used: choose another name")
    assert isinstance(error.value, llm_notebook.LLMNotebookError)
    assert llm_notebook.get_model("echo").model_id == "echo"
    assert not (user_dir / "aliases.json").exists()


def test_an_alias_naming_itself_or_making_a_loop_is_refused(user_dir):
    with pytest.raises(llm_notebook.plugins.AliasError, match=r"^An alias cannot name itself: 'me'$"):
        llm_notebook.set_alias("me", "me")
    user_dir.mkdir()
    (user_dir / "aliases.json").write_text(json.dumps({"a": "b", "b": "markov"}))
    with pytest.raises(llm_notebook.plugins.AliasError,
                       match=r"^Alias 'b' for 'a' would make a loop: b -> a -> b\. Name the model"):
        llm_notebook.set_alias("b", "a")
    assert json.loads((user_dir / "aliases.json").read_text()) == {"a": "b", "b": "markov"}
    with pytest.raises(llm_notebook.plugins.AliasError, match="needs a name without spaces"):
        llm_notebook.set_alias("two words", "markov")


def test_an_alias_chain_is_followed_and_a_loop_in_the_file_is_named(user_dir):
    user_dir.mkdir()
    (user_dir / "aliases.json").write_text(json.dumps({"quick": "fast", "fast": "markov"}))
    assert llm_notebook.get_model("quick").model_id == "markov"
    (user_dir / "aliases.json").write_text(json.dumps({"la": "lb", "lb": "la"}))
    with pytest.raises(llm_notebook.plugins.AliasError) as error:
        llm_notebook.get_model("la")
    assert str(error.value) == (f"The aliases make a loop: la -> lb -> la (see {user_dir / 'aliases.json'}); "
                                "remove one with llm_notebook.remove_alias('la')")
    (user_dir / "aliases.json").write_text(json.dumps({"gone": "no-such-model"}))
    with pytest.raises(llm_notebook.UnknownModelError,
                       match=r"^Unknown model 'no-such-model' \(named by alias gone\)\."):
        llm_notebook.get_model("gone")


@pytest.mark.parametrize("broken", ["folder", "bad utf-8"])
def test_an_unreadable_default_model_file_warns_and_uses_the_fallback(user_dir, broken):
    path = user_dir / "default_model.txt"
    user_dir.mkdir()
    if broken == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"mark\xffov")
    why = "it is a folder, not a file" if broken == "folder" else "it is not UTF-8 text (byte 4"
    with pytest.warns(UserFileWarning, match=rf"default_model\.txt cannot be read: {re.escape(why)}"):
        assert llm_notebook.get_default_model() == "echo"
    assert llm_notebook.get_model().model_id == "echo"
    with pytest.warns(UserFileWarning, match=r"moved to default_model\.txt\.corrupt-"):
        llm_notebook.set_default_model("markov")
    assert path.read_text() == "markov" and llm_notebook.get_model().model_id == "markov"
    [aside] = user_dir.glob("default_model.txt.corrupt-*")
    assert aside.is_dir() if broken == "folder" else aside.read_bytes() == b"mark\xffov"


def test_resetting_an_unreadable_default_model_keeps_its_bytes(user_dir):
    user_dir.mkdir()
    (user_dir / "default_model.txt").write_bytes(b"\xfe\xff")
    with pytest.warns(UserFileWarning, match=r"moved to default_model\.txt\.corrupt-.*, its bytes "
                                             r"untouched, and nothing written in its place"):
        llm_notebook.set_default_model(None)
    assert not (user_dir / "default_model.txt").exists()
    [aside] = user_dir.glob("default_model.txt.corrupt-*")
    assert aside.read_bytes() == b"\xfe\xff"


def test_alias_refusals_are_one_line_in_the_notebook(tmp_path):
    from tests.test_magics import one_line_error

    notebook = KernelNotebook(tmp_path, env={"LLM_NOTEBOOK_USER_PATH": str(tmp_path / "user"),
                                             "LLM_NOTEBOOK_LOAD_PLUGINS": ""})
    try:
        notebook.run("%load_ext llm_notebook")
        run = notebook.run("%llm alias echo markov", expect_error=True)
        assert one_line_error(run) == ("AliasError: 'echo' is the id of a registered model, so an "
                                       "alias with that name would never be used: choose another name")
        assert notebook.run("%llm -m echo --no-usage still echo").error is None
    finally:
        notebook.close()


def test_the_default_embedding_models_load_with_the_plugins():
    from llm_notebook.plugins import Registry

    registry = Registry()
    assert registry.get_embedding_model("offline").model_id == "hashed-ngrams"
    assert registry.get_embedding_model("3-small").model_id == "text-embedding-3-small"
    vectors = llm_notebook.embed(["a cat", "a dog"], model="offline", progress=False)
    assert vectors.shape == (2, 256)
