"""The registry: run-time registration, aliases, the default model and lookup errors."""

import pytest

import llm_notebook
from llm_notebook import AsyncModel, Model


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
