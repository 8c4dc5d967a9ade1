"""Embeddings: EmbeddingModel as llm defines it, `llm_notebook.embed` over lists and pandas
columns, the offline `hashed-ngrams` model, and the OpenAI-compatible model against the
loopback server and llama.cpp's own server (llama-cpp-python, `--embedding`, a tiny GGUF)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import llm_notebook
from llm_notebook.default_plugins.offline_embeddings import HashedNgrams
from llm_notebook.default_plugins.openai_embeddings import OpenAIEmbeddingModel
from llm_notebook.embeddings import EmbeddingInputError, EmbeddingModel
from llm_notebook.errors import ModelError, NeedsKeyException, UnknownModelError
from llm_notebook.plugins import PluginWarning, Registry
from llm_notebook.usage import session_usage
from llm_notebook.vectors import (EmbedFailed, embed, get_default_embedding_model,
                                  set_default_embedding_model)
from tests.support.fake_embeddings import embeddings_reply, fake_vector
from tests.support.fake_llm_server import error_reply, json_reply
from tests.support.llama_server import start_llama_server

ROOT = Path(__file__).resolve().parent.parent
REVIEWS = ["the soup was cold", "cold soup, slow service", "a lovely warm soup",
           "the train was late", "late trains again", "an on-time train"]


class Counting(EmbeddingModel):
    """Records each batch it is given; the vector of a text is [its length, its word count]."""

    model_id = "counting"
    dimensions = 2

    def __init__(self, batch_size=None):
        self.batch_size = batch_size
        self.batches: list[list[str]] = []

    def embed_batch(self, items, *, key=None):
        items = list(items)
        self.batches.append(items)
        return [[float(len(text)), float(len(text.split()))] for text in items]


class OldStyleKeyed(EmbeddingModel):
    """A plugin written before `key=`: embed_batch(self, texts) reads self.get_key()."""

    model_id = "old-style"
    needs_key = "old-style"
    concurrency = 2

    def __init__(self, barrier=None):
        self.barrier = barrier

    def embed_batch(self, texts):
        key = self.get_key()
        if self.barrier is not None:  # both batches are inside embed_batch at once
            self.barrier.wait(10)
        return [[float(len(key))] for _ in texts]


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


# -- EmbeddingModel ---------------------------------------------------------------------------
def test_embed_multi_sends_batches_of_batch_size_in_order():
    model = Counting(batch_size=2)
    vectors = list(model.embed_multi(["a", "bb", "ccc", "dddd", "eeeee"]))
    assert model.batches == [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]
    assert [v[0] for v in vectors] == [1, 2, 3, 4, 5]
    list(model.embed_multi(["a", "b", "c"], batch_size=3))
    assert model.batches[-1] == ["a", "b", "c"]


def test_embed_multi_without_a_batch_size_sends_one_batch_and_is_lazy():
    model = Counting()
    vectors = model.embed_multi(iter(["x", "yy", "zzz"]))
    assert model.batches == []  # a generator: nothing is embedded until it is read
    assert [v[0] for v in vectors] == [1, 2, 3] and model.batches == [["x", "yy", "zzz"]]


def test_embed_returns_one_vector():
    assert Counting().embed("two words") == [9.0, 2.0]


def test_a_text_only_model_refuses_bytes_and_a_binary_model_takes_them():
    with pytest.raises(EmbeddingInputError, match="is bytes.*embeds text only"):
        Counting().embed(b"\x89PNG")
    vector = HashedNgrams().embed(b"\x89PNG\r\n\x1a\n")
    assert len(vector) == 256 and math.isclose(sum(x * x for x in vector), 1.0, rel_tol=1e-9)


def test_a_plugin_without_key_parameter_sees_each_calls_own_key_across_threads():
    assert embed(["a"], OldStyleKeyed(), key="k" * 11).tolist() == [[11.0]]
    model = OldStyleKeyed(threading.Barrier(2))
    results = {}

    def run(name, key):
        results[name] = embed(["x"], model, key=key, progress=False)[0, 0]

    threads = [threading.Thread(target=run, args=("short", "s" * 9)),
               threading.Thread(target=run, args=("long", "l" * 20))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {"short": 9.0, "long": 20.0}
    assert model.key is None  # the key went to the call, not onto the shared model


def test_a_missing_key_is_one_line_before_any_batch():
    model = OldStyleKeyed()
    with pytest.raises(NeedsKeyException) as caught:
        embed(["a", "b"], model)
    assert "llm_notebook.set_key('old-style', ...)" in one_line(caught.value)
    llm_notebook.set_key("old-style", "stored-key-1")
    assert embed(["a"], model, progress=False).tolist() == [[12.0]]


def test_a_model_key_never_shows_in_its_repr():
    model = OldStyleKeyed()
    model.key = "sk-verysecret-123"
    assert "verysecret" not in repr(model) + repr(vars(model)) + str(model)


# -- embed(): lists, Series, errors --------------------------------------------------------------
def test_a_list_gives_an_array_row_per_item_in_order():
    model = HashedNgrams()
    vectors = embed(REVIEWS, model, batch_size=4)
    assert isinstance(vectors, np.ndarray) and vectors.shape == (6, 256)
    assert vectors.dtype == np.float32
    for row, text in zip(vectors, REVIEWS):
        assert np.allclose(row, model.embed(text))


def test_a_series_gives_a_dataframe_whose_rows_follow_its_index():
    df = pd.DataFrame({"review": REVIEWS, "stars": [1, 2, 5, 1, 2, 5]},
                      index=[f"r{i}" for i in (5, 3, 1, 0, 2, 4)])
    liked = df[df.stars < 5]  # a filtered column: positions no longer match df's
    vectors = embed(liked["review"], HashedNgrams(), batch_size=3)
    assert isinstance(vectors, pd.DataFrame) and vectors.shape == (4, 256)
    assert list(vectors.index) == list(liked.index)
    assert vectors.attrs["embedding_model"] == "hashed-ngrams"
    for label in liked.index:
        assert np.allclose(vectors.loc[label], HashedNgrams().embed(df.loc[label, "review"]))
    joined = df.join(vectors)  # by label: rows not embedded get NaN, none are shifted
    assert joined.loc["r0", 0] == vectors.loc["r0", 0] and joined.loc[["r1", "r4"], 0].isna().all()
    df["vector"] = pd.Series(list(vectors.to_numpy()), index=vectors.index)
    assert np.allclose(df.loc["r3", "vector"], vectors.loc["r3"])


def test_a_missing_value_is_named_by_its_label_before_any_batch():
    model = Counting(batch_size=1)
    column = pd.Series(["fine", None, "also fine"], index=["a", "missing", "c"])
    with pytest.raises(EmbeddingInputError) as caught:
        embed(column, model)
    assert "'missing'" in one_line(caught.value) and "missing value" in str(caught.value)
    assert model.batches == []
    with pytest.raises(EmbeddingInputError, match="at 1 is int 7"):
        embed(["ok", 7], model)


def test_wrong_kinds_of_input_say_what_to_pass():
    model = Counting()
    with pytest.raises(TypeError, match=r"df\['column_name'\]"):
        embed(pd.DataFrame({"a": ["x"]}), model)
    with pytest.raises(TypeError, match="not str: wrap one text in a list"):
        embed("one text", model)
    with pytest.raises(TypeError, match=r"not dict: .*pandas.Series\(d\)"):
        embed({"a": "x"}, model)
    with pytest.raises(TypeError, match="not int:"):
        embed(3, model)
    with pytest.raises(ValueError, match="batch_size"):
        embed(["x"], model, batch_size=0)


def test_empty_input_gives_zero_rows_of_the_models_dimension():
    assert embed([], HashedNgrams()).shape == (0, 256)
    empty = embed(pd.Series([], dtype=object), HashedNgrams())
    assert isinstance(empty, pd.DataFrame) and empty.shape == (0, 256)
    with pytest.raises(EmbeddingInputError, match="input is empty"):
        embed([], OldStyleKeyed(), key="k")


def test_a_failing_batch_says_which_and_how_many_finished():
    class FailsOnThird(Counting):
        def embed_batch(self, items, *, key=None):
            if len(self.batches) == 2:
                raise RuntimeError("disk full")
            return super().embed_batch(items)

    with pytest.raises(EmbedFailed) as caught:
        embed([f"t{i}" for i in range(7)], FailsOnThird(batch_size=2), progress=False)
    assert one_line(caught.value) == (
        "Embedding failed on batch 3 of 4 (items 4 to 5): RuntimeError: disk full "
        "(4 of 7 items had been embedded; nothing is returned)")


def test_vectors_of_different_lengths_are_the_models_error():
    class Ragged(Counting):
        def embed_batch(self, items, *, key=None):
            return [[1.0] * len(text) for text in items]

    with pytest.raises(ModelError, match="different lengths"):
        embed(["a", "bb"], Ragged())


def test_progress_shows_for_more_than_one_batch(capsys):
    embed([f"t{i}" for i in range(5)], Counting(batch_size=2))
    assert "counting embeddings" in capsys.readouterr().err
    embed(["one batch"], Counting(batch_size=2))
    assert capsys.readouterr().err == ""


# -- names and the default model ------------------------------------------------------------------
@pytest.fixture
def offline_registered():
    """The offline model in the registry, as a notebook cell would add it."""
    llm_notebook.register_embedding_model(HashedNgrams(), aliases=("offline",))


def test_without_a_stored_default_embed_uses_the_offline_model(offline_registered):
    assert get_default_embedding_model() == "hashed-ngrams"
    assert np.array_equal(embed(REVIEWS), embed(REVIEWS, HashedNgrams()))
    assert np.array_equal(embed(REVIEWS[:2], "offline"), embed(REVIEWS[:2], "hashed-ngrams"))


def test_the_default_embedding_model_is_stored_in_the_user_directory(offline_registered,
                                                                     user_dir):
    llm_notebook.register_embedding_model(Counting(), aliases=("count",))
    set_default_embedding_model("count")
    assert (user_dir / "default_embedding_model.txt").read_text() == "count"
    assert embed(["four"]).tolist() == [[4.0, 1.0]]
    set_default_embedding_model(None)
    assert get_default_embedding_model() == "hashed-ngrams"
    assert embed(["four"]).shape == (1, 256)


def test_an_unknown_embedding_model_is_refused_and_not_stored(user_dir):
    with pytest.raises(UnknownModelError, match="Unknown embedding model 'nope'"):
        set_default_embedding_model("nope")
    assert not (user_dir / "default_embedding_model.txt").exists()
    with pytest.raises(UnknownModelError, match="'nope'"):
        embed(["x"], "nope")


def registered_by(plugin) -> dict[str, tuple[EmbeddingModel, tuple[str, ...]]]:
    """What a plugin's register_embedding_models hook registers, by model id."""
    found = {}
    plugin.register_embedding_models(
        register=lambda model, aliases=(): found.setdefault(model.model_id, (model, aliases)))
    return found


def test_the_offline_plugin_registers_hashed_ngrams_as_offline():
    from llm_notebook.default_plugins import offline_embeddings

    ((model, aliases),) = registered_by(offline_embeddings).values()
    assert (model.model_id, aliases, model.dimensions) == ("hashed-ngrams", ("offline",), 256)


def test_the_openai_models_are_registered_under_llms_ids_and_aliases():
    from llm_notebook.default_plugins import openai_embeddings

    found = registered_by(openai_embeddings)
    model, aliases = found["text-embedding-3-small-512"]
    assert (model.openai_model_id, model.dimensions, aliases) == (
        "text-embedding-3-small", 512, ("3-small-512",))
    assert found["text-embedding-ada-002"][1] == ("ada", "ada-002")
    assert len(found) == 6
    with pytest.raises(NeedsKeyException, match="set the OPENAI_API_KEY environment variable"):
        embed(["x"], model)


def test_openai_models_send_base64_and_the_dimensions_asked_for(loopback, monkeypatch):
    from llm_notebook.default_plugins.openai_embeddings import OPENAI_KEY_HINT

    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    model = OpenAIEmbeddingModel("text-embedding-3-large-256", "text-embedding-3-large", 256,
                                 needs_key="openai", key_env_var="OPENAI_API_KEY",
                                 encoding_format="base64", key_hint=OPENAI_KEY_HINT)
    loopback.queue(embeddings_reply(dimensions=4))
    vectors = embed(["a b"], model, key="sk-test-000000000")
    assert vectors.tolist() == [fake_vector("a b", 4)]
    assert loopback.last_body() == {"model": "text-embedding-3-large", "input": ["a b"],
                                    "encoding_format": "base64", "dimensions": 256}


# -- endpoints -------------------------------------------------------------------------------------
def test_an_endpoints_embedding_models_are_registered_apart_from_its_chat_models(loopback,
                                                                               monkeypatch):
    monkeypatch.setattr(loopback, "models", ["chatty", "embed-small"])
    ids = llm_notebook.add_openai_endpoint(loopback.openai_url, name="loop", api_key_env="LOOP_KEY",
                                           embedding_models=["embed-small"],
                                           aliases={"embed-small": "es"})
    assert ids == ["chatty", "embed-small"]
    assert llm_notebook.get_model("chatty").model_id == "chatty"
    model = llm_notebook.get_embedding_model("es")
    assert isinstance(model, OpenAIEmbeddingModel) and model.base_url == loopback.openai_url
    with pytest.raises(NeedsKeyException, match=r"set_key\('loop', \.\.\.\).*LOOP_KEY"):
        embed(["x"], "es")
    loopback.queue(embeddings_reply())
    assert embed(["abc"], "embed-small", key="loop-key-123456")[0, 0] == 3.0
    assert loopback.requests[-1].headers["authorization"] == "Bearer loop-key-123456"


def test_configured_endpoints_register_their_embedding_models_on_load(user_dir, loopback):
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "openai_endpoints.json").write_text(json.dumps([
        {"base_url": loopback.openai_url, "name": "filed", "embedding_models": ["embed-file"]},
        {"base_url": loopback.openai_url, "embedding_models": "not a list"},
    ]))
    registry = Registry()
    with pytest.warns(PluginWarning, match="endpoint 2.*embedding_models") as warned:
        model = registry.get_embedding_model("embed-file")
    assert len(warned) == 1  # told once, though both hooks read the file
    loopback.queue(embeddings_reply())
    assert embed(["four"], model)[0, 0] == 4.0


# -- the offline model ------------------------------------------------------------------------
def test_offline_vectors_are_unit_length_and_near_for_similar_texts():
    vectors = embed(REVIEWS, HashedNgrams())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 3]  # cold soup is nearer to cold soup than to trains
    assert similarity[3, 4] > similarity[3, 1]
    assert not embed([""], HashedNgrams()).any()  # nothing to count: all zeros, not NaN


def test_offline_vectors_are_the_same_in_another_process():
    script = ("import json; from llm_notebook.default_plugins.offline_embeddings import "
              f"HashedNgrams; print(json.dumps(HashedNgrams().embed({REVIEWS[1]!r})))")
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=60, cwd=ROOT, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout) == HashedNgrams().embed(REVIEWS[1])


# -- the OpenAI-compatible model on the loopback server ---------------------------------------------
@pytest.fixture
def loopback(llm_server, monkeypatch):
    monkeypatch.setattr(llm_notebook.settings, "max_retries", 0)
    return llm_server


def loopback_model(server, **kwargs):
    return OpenAIEmbeddingModel("fake-embed", base_url=server.openai_url, **kwargs)


def test_loopback_batches_are_one_request_each_and_rows_follow_the_input(loopback):
    texts = [f"text {'x' * i}" for i in range(250)]
    loopback.queue(*[embeddings_reply() for _ in range(3)])
    vectors = embed(texts, loopback_model(loopback), batch_size=100, progress=False)
    assert vectors.shape == (250, 8)
    assert vectors[:, 0].tolist() == [float(len(t)) for t in texts]  # each row is its text's
    sent = [r.body for r in loopback.requests]
    assert len(sent) == math.ceil(250 / 100) and all(r.path == "/v1/embeddings"
                                                     for r in loopback.requests)
    assert sorted(len(body["input"]) for body in sent) == [50, 100, 100]
    assert {body["model"] for body in sent} == {"fake-embed"}


def test_base64_and_float_answers_give_the_same_vectors(loopback):
    texts = ["alpha beta", "gamma"]
    loopback.queue(embeddings_reply(), embeddings_reply())
    as_float = embed(texts, loopback_model(loopback, encoding_format="float"))
    as_base64 = embed(texts, loopback_model(loopback, encoding_format="base64"))
    assert [r.body["encoding_format"] for r in loopback.requests] == ["float", "base64"]
    assert as_float.tolist() == as_base64.tolist() == [fake_vector(t) for t in texts]


def test_a_series_through_the_server_keeps_its_index(loopback):
    column = pd.Series(["a b c", "d", "e f"], index=[30, 10, 20], name="text")
    loopback.queue(*[embeddings_reply() for _ in range(2)])
    vectors = embed(column, loopback_model(loopback), batch_size=2)
    assert list(vectors.index) == [30, 10, 20]
    assert vectors.loc[10].tolist() == fake_vector("d")


def test_usage_goes_to_the_sessions_account(loopback):
    session_usage.reset()
    loopback.queue(embeddings_reply(), embeddings_reply())
    embed(["one two", "three", "four five six"], loopback_model(loopback), batch_size=2)
    (row,) = [u for u in session_usage.by_model() if u.model == "fake-embed"]
    assert (row.responses, row.input, row.output) == (2, 6, 0)


def test_concurrent_batches_are_in_flight_together(loopback):
    gate, started = threading.Event(), threading.Semaphore(0)
    loopback.queue(*[embeddings_reply(gate=gate, started=started) for _ in range(8)])
    result = {}
    texts = ["a" * i for i in range(1, 9)]
    worker = threading.Thread(target=lambda: result.setdefault("v", embed(
        texts, loopback_model(loopback), batch_size=1, concurrency=8, progress=False)))
    worker.start()
    try:
        for _ in range(8):  # all eight requests arrive before any is answered
            assert started.acquire(timeout=30)
    finally:
        gate.set()
    worker.join(30)
    assert result["v"][:, 0].tolist() == [float(i) for i in range(1, 9)]


def test_a_rejected_key_is_one_line_without_the_key(loopback):
    loopback.queue(error_reply(401, "Incorrect API key provided: sk-wrong-***"))
    with pytest.raises(EmbedFailed) as caught:
        embed(["a"], loopback_model(loopback, api_key="sk-wrong-key-123456"))
    text = one_line(caught.value)
    assert "The API key was rejected (HTTP 401" in text and "sk-wrong-key-123456" not in text
    assert loopback.requests[0].headers["authorization"] == "Bearer sk-wrong-key-123456"


def test_a_server_error_is_one_line(loopback):
    loopback.queue(error_reply(500, "llama_decode returned -1"))
    with pytest.raises(EmbedFailed) as caught:
        embed(["a"], loopback_model(loopback))
    assert one_line(caught.value).startswith(
        "Embedding failed on the batch: The server failed (HTTP 500 from ")
    assert "llama_decode returned -1" in str(caught.value)


def test_a_text_too_long_is_the_servers_own_words_on_one_line(loopback):
    loopback.queue(error_reply(400, "This model's maximum context length is 8192 tokens, "
                                    "however you requested 9000 tokens"))
    with pytest.raises(EmbedFailed) as caught:
        embed(["very long " * 5000], loopback_model(loopback))
    assert "maximum context length is 8192 tokens" in one_line(caught.value)


def test_an_empty_text_is_refused_before_any_request(loopback):
    with pytest.raises(EmbeddingInputError, match="at 'b' is an empty string"):
        embed(pd.Series(["x", ""], index=["a", "b"]), loopback_model(loopback))
    assert loopback.requests == []


def test_vectors_per_token_say_the_model_does_not_pool(loopback):
    loopback.queue(json_reply({"data": [{"index": 0, "embedding": [[0.1, 0.2], [0.3, 0.4]]}]}))
    with pytest.raises(EmbedFailed, match="one vector per token.*does not pool"):
        embed(["two tokens"], loopback_model(loopback))


def test_a_wrong_number_of_vectors_is_malformed_data(loopback):
    loopback.queue(json_reply({"data": [{"index": 0, "embedding": [1.0]}]}))
    with pytest.raises(EmbedFailed, match="where 2 vectors belong"):
        embed(["a", "b"], loopback_model(loopback))


_INTERRUPT_SCRIPT = """
import json, os, signal, sys, threading
sys.path.insert(0, {root!r})
from llm_notebook.default_plugins.openai_embeddings import OpenAIEmbeddingModel
from llm_notebook.vectors import EmbedInterrupted, embed
from tests.support.fake_embeddings import embeddings_reply
from tests.support.fake_llm_server import FakeLLMServer

server = FakeLLMServer().start()
gate, started = threading.Event(), threading.Semaphore(0)
server.queue(embeddings_reply(started=started), embeddings_reply(gate=gate, started=started))


def interrupt_once_the_second_batch_is_asked():  # a kernel interrupt while embed waits
    started.acquire(); started.acquire()
    os.kill(os.getpid(), signal.SIGINT)


threading.Thread(target=interrupt_once_the_second_batch_is_asked, daemon=True).start()
model = OpenAIEmbeddingModel("fake", base_url=server.openai_url)
try:
    embed(["a"] * 30, model, batch_size=10, concurrency=1, progress=False)
except EmbedInterrupted as exc:
    print(json.dumps({{"message": str(exc), "finished": exc.finished, "total": exc.total,
                      "asked": len(server.requests)}}))
gate.set()
"""


def test_an_interrupt_raises_saying_how_many_were_embedded():
    """A real SIGINT while embed waits, as a kernel interrupt sends."""
    done = subprocess.run([sys.executable, "-c", _INTERRUPT_SCRIPT.format(root=str(ROOT))],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["finished"], result["total"], result["asked"]) == (10, 30, 2)
    assert result["message"].startswith("embed interrupted with 10 of 30 items embedded")


# -- llama.cpp's own server ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llama_embedding_server(tmp_path_factory):
    server = start_llama_server(tmp_path_factory.mktemp("llama_embeddings"), embedding=True)
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(30)


def llama_requests(server) -> int:
    return server.log_tail(10_000).count('"POST /v1/embeddings HTTP/1.1" 200')


def test_llama_cpp_vectors_have_its_dimension_and_follow_the_series_index(llama_embedding_server):
    ids = llm_notebook.add_openai_endpoint(llama_embedding_server.base_url, name="llama-embed",
                                           embedding_models=[llama_embedding_server.model_id])
    assert ids == [llama_embedding_server.model_id]  # not also a chat model
    model = llm_notebook.get_embedding_model(llama_embedding_server.model_id)
    column = pd.Series(REVIEWS, index=[f"row{i}" for i in range(6)][::-1])
    before = llama_requests(llama_embedding_server)
    vectors = embed(column, model, batch_size=4)
    assert llama_requests(llama_embedding_server) - before == math.ceil(6 / 4)
    assert vectors.shape == (6, 64) and list(vectors.index) == list(column.index)
    again = embed(column, model, batch_size=4)
    assert np.array_equal(vectors.to_numpy(), again.to_numpy())  # the same input, the same vectors
    alone = np.asarray(model.embed(REVIEWS[2]), dtype=np.float32)
    assert np.allclose(vectors.loc["row3"], alone, atol=1e-4)
    assert not np.allclose(vectors.loc["row3"], vectors.loc["row2"], atol=1e-3)


# -- keys in a notebook -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def verbose_kernel(tmp_path_factory):
    from tests.magics_kernel import KernelNotebook

    workdir = tmp_path_factory.mktemp("embedding_keys")
    notebook = KernelNotebook(workdir, env={
        "LLM_NOTEBOOK_USER_PATH": str(workdir / "user"), "LLM_NOTEBOOK_LOAD_PLUGINS": "",
        "CANARY": "sk-canary-" + "7" * 24, "PYTHONPATH": str(ROOT)})
    notebook.run("%xmode Verbose\nimport os\nfrom llm_notebook.vectors import embed\n"
                 "from llm_notebook.default_plugins.openai_embeddings import OpenAIEmbeddingModel")
    yield notebook
    notebook.close()


@pytest.mark.parametrize("way", ["embed(key=)", "model.key", "api_key="])
def test_a_rejected_key_in_verbose_mode_is_shown_nowhere(verbose_kernel, fake_llm_server, way):
    canary = "sk-canary-" + "7" * 24
    fake_llm_server.reset()
    fake_llm_server.queue(error_reply(401, f"Incorrect API key provided: {canary}"))
    make = f"model = OpenAIEmbeddingModel('fake-embed', base_url={fake_llm_server.openai_url!r}"
    make += ", api_key=os.environ['CANARY'])" if way == "api_key=" else ")"
    if way == "model.key":
        make += "\nmodel.key = os.environ['CANARY']"
    call = ("embed(['a', 'b'], model, key=os.environ['CANARY'])" if way == "embed(key=)"
            else "embed(['a', 'b'], model)")
    verbose_kernel.run(make)
    run = verbose_kernel.run(call, expect_error=True)
    assert run.error["ename"] == "EmbedFailed"
    assert "llm_notebook/" in run.error_text()  # the package's frames, with their variables
    assert canary not in json.dumps(run.outputs)
    assert fake_llm_server.requests[0].headers["authorization"] == f"Bearer {canary}"
