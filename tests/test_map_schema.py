"""`map(..., schema=...)` without batch: every row asked for JSON matching the schema, an answer
that does not fit asked once more as the next turn, the result a DataFrame of typed columns on
the input's index. Offline with `echo` (which answers a schema'd prompt with a value that fits,
or exactly what a `{"raw": ...}` script in the prompt says), and over real HTTP on loopback."""

import json

import pandas as pd
import pytest

import llm_notebook
from llm_notebook import settings
from tests.support.fake_llm_server import (
    json_reply,
    openai_completion,
    openai_events,
    openai_usage,
    sse,
    stream_reply,
)

SCHEMA = "name, population int"


def cities(*answers):
    """One row per answer, whose prompt makes echo answer exactly that (JSON unless a str)."""
    scripts = [json.dumps({"raw": answer}) for answer in answers]
    return pd.DataFrame({"script": scripts}, index=[f"c{n}" for n in range(len(answers))])


def ask(frame, **arguments):
    return llm_notebook.map("Describe the city. {script}", frame, model="echo", schema=SCHEMA,
                            progress=False, **arguments)


def test_answers_become_typed_columns_on_the_inputs_index():
    frame = cities({"name": "Oslo", "population": 709000}, {"name": "Lima", "population": 10_000_000})
    result = ask(frame)
    assert isinstance(result, pd.DataFrame) and list(result.index) == ["c0", "c1"]
    assert result["name"].tolist() == ["Oslo", "Lima"]
    assert result["population"].tolist() == [709000, 10_000_000]
    assert str(result["population"].dtype) == "Int64" and str(result["name"].dtype) == "string"
    assert result["error"].isna().all() and result.errors == {}
    assert result.responses[0].prompt.schema["properties"]["population"] == {"type": "integer"}


def test_an_answer_that_does_not_fit_is_asked_once_more_with_what_was_wrong():
    frame = cities({"name": "Oslo", "population": 709000}, "sorry, no JSON today")
    result = ask(frame)
    assert result.errors == {}
    assert result.loc["c0", "name"] == "Oslo"
    assert pd.notna(result.loc["c1", "population"])  # echo's second answer fits the schema
    first, second = [r.prompt for r in result.responses]
    assert "Your answer could not be used" not in (first.prompt or "")
    assert "Your answer could not be used" in second.prompt and '"population"' in second.prompt
    assert second.schema == first.schema
    assert result.sent == 2


def test_rows_that_still_do_not_fit_are_in_errors_with_why():
    frame = cities({"name": "Oslo", "population": 709000}, {"name": "Lima"})
    # a turn without a script of its own (the second asking) answers as the system prompt says
    result = ask(frame, system=json.dumps({"raw": "no idea"}))
    assert set(result.errors) == {"c1"}
    message = result.errors["c1"]
    assert message.startswith("Asked again, the answer still does not fit:")
    assert "not usable JSON" in message
    assert result.loc["c0", "name"] == "Oslo" and pd.isna(result.loc["c1", "name"])
    assert result.loc["c1", "error"] == message and pd.isna(result.loc["c0", "error"])
    again = result.retry_failed()
    assert set(again.errors) == {"c1"} and again.loc["c0", "population"] == 709000


def test_multi_gives_one_row_per_item_labelled_by_the_row_it_came_from():
    frame = cities({"items": [{"name": "Oslo", "population": 1}, {"name": "Bergen", "population": 2}]},
                   [{"name": "Lima", "population": 3}])
    result = ask(frame, multi=True)
    assert list(result.index) == ["c0", "c0", "c1"]
    assert result["item"].tolist() == [0, 1, 0]
    assert result["name"].tolist() == ["Oslo", "Bergen", "Lima"]
    assert result.responses[0].prompt.schema["properties"]["items"]["type"] == "array"
    with pytest.raises(TypeError, match="give schema= too"):
        llm_notebook.map("x {}", ["a"], model="echo", multi=True, progress=False)


def test_a_list_input_gives_a_frame_indexed_by_position_and_replays_from_the_cache(monkeypatch):
    monkeypatch.setattr(settings, "cache", "replay")
    prompts = [json.dumps({"raw": {"name": "Pune", "population": 7}}), "not asked for JSON"]
    first = llm_notebook.map("{} ", prompts, model="echo", schema=SCHEMA, progress=False)
    assert list(first.index) == [0, 1] and first.loc[0, "name"] == "Pune"
    again = llm_notebook.map("{} ", prompts, model="echo", schema=SCHEMA, progress=False)
    assert again.replayed == 2 and again.sent == 0
    pd.testing.assert_frame_equal(pd.DataFrame(again), pd.DataFrame(first))


def test_over_http_the_schema_is_sent_and_a_bad_answer_is_asked_again(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-schema-0000")

    def reply(recorded):
        asked = recorded.body["messages"][-1]["content"]
        text = (json.dumps({"name": "Kyiv", "population": 2_900_000})
                if "could not be used" in asked or "Kyiv" in asked else "Kyiv is large.")
        if recorded.body.get("stream"):
            return stream_reply(sse(openai_events([text], usage=openai_usage())))
        return json_reply(openai_completion(text, usage=openai_usage()))

    llm_server.queue(*[reply] * 3)
    result = llm_notebook.map("Describe {city}", pd.DataFrame({"city": ["Kyiv", "Oslo"]},
                                                              index=[10, 20]),
                              model="gpt-4o-mini", schema=SCHEMA, progress=False)
    assert result.errors == {}
    assert result["population"].tolist() == [2_900_000, 2_900_000]
    bodies = [r.body for r in llm_server.requests]
    assert len(bodies) == 3
    assert all(b["response_format"]["json_schema"]["schema"]["required"] == ["name", "population"]
               for b in bodies)
    follow_up = next(b for b in bodies if "could not be used" in b["messages"][-1]["content"])
    assert [m["role"] for m in follow_up["messages"]] == ["user", "assistant", "user"]
    assert follow_up["messages"][1]["content"] == "Kyiv is large."
