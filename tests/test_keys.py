"""Key resolution order, storage with 0600 permissions, and keys kept out of everything shown."""

import os
import stat

import pytest

import llm_notebook
from llm_notebook import KeyModel, NeedsKeyException, runner


class Keyed(KeyModel):
    model_id = "keyed"
    needs_key = "keyed-service"
    key_env_var = "KEYED_API_KEY"

    def execute(self, prompt, stream, response, conversation, key):
        if prompt.prompt == "leak":
            raise RuntimeError(f"server said: bad key {key}")
        yield f"key ends with {key[-3:]}"


SECRET = "sk-test-SECRET-123"


def test_resolution_order(monkeypatch):
    model = Keyed()
    monkeypatch.setenv("KEYED_API_KEY", "from-env-ENV")
    assert model.prompt("x").text() == "key ends with ENV"
    llm_notebook.set_key("keyed-service", "stored-STO")
    assert model.prompt("x").text() == "key ends with STO"
    model.key = "attribute-ATT"
    assert model.prompt("x").text() == "key ends with ATT"
    assert model.prompt("x", key="argument-ARG").text() == "key ends with ARG"


def test_missing_key_says_how_to_provide_it():
    with pytest.raises(NeedsKeyException) as error:
        Keyed().prompt("x")
    assert str(error.value) == (
        "Model 'keyed' needs an API key: pass key=... to prompt(), or store one with "
        "llm_notebook.set_key('keyed-service', ...) (in a notebook: %llm keys set keyed-service), "
        "or set the KEYED_API_KEY environment variable")


def test_keys_file_is_private_and_listed_by_name_only(user_dir):
    llm_notebook.set_key("svc", SECRET)
    path = user_dir / "keys.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert llm_notebook.stored_key_names() == ["svc"]
    assert llm_notebook.delete_key("svc") is True and llm_notebook.stored_key_names() == []
    with pytest.raises(ValueError, match=r"set_key needs a non-empty key value"):
        llm_notebook.set_key("svc", "")


def test_key_never_shown_in_repr_error_or_log():
    model = Keyed()
    response = model.prompt("leak", key=SECRET)
    assert SECRET not in repr(response) and SECRET not in repr(model)
    with pytest.raises(llm_notebook.ModelError) as error:
        response.text()
    assert SECRET not in str(error.value)
    assert str(error.value) == "Model 'keyed' failed: RuntimeError: server said: bad key ***"
    assert SECRET not in str(response.to_dict())
    row = llm_notebook.logs(1)[0]
    assert row["status"] == "error" and SECRET not in str(row)


class Legacy(llm_notebook.Model):
    """A plugin written before KeyModel: a plain Model that looks its key up itself."""

    model_id = "legacy"
    needs_key = "legacy-service"

    def execute(self, prompt, stream, response, conversation):
        key = self.get_key()
        yield f"key ends with {key[-3:]}"
        if prompt.prompt == "ask keyed":  # a model that prompts another: no key handed over
            yield " / " + Keyed().prompt("x").text()


class AsyncLegacy(llm_notebook.AsyncModel):
    model_id = "async-legacy"
    needs_key = "legacy-service"

    async def execute(self, prompt, stream, response, conversation):
        yield f"key ends with {self.get_key()[-3:]}"


def test_plain_model_calling_get_key_sees_every_way_of_giving_the_key():
    model = Legacy()
    assert model.prompt("x", key="argument-ARG").text() == "key ends with ARG"
    llm_notebook.set_key("legacy-service", "stored-STO")
    assert model.prompt("x").text() == "key ends with STO"
    assert model.prompt("x", key="argument-ARG").text() == "key ends with ARG"
    response = AsyncLegacy().prompt("x", key="async-ASY")
    assert runner.run(response.text()) == "key ends with ASY"


def test_a_model_prompting_another_does_not_hand_it_its_key():
    with pytest.raises(NeedsKeyException, match="Model 'keyed' needs an API key"):
        Legacy().prompt("ask keyed", key="argument-ARG").text()
