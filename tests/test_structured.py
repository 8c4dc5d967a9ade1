"""Structured output: a model's text to a value checked against a schema (wherever the JSON sits
in it), clear failures that keep the text, the feedback that asks again, and typed columns."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
from pydantic import BaseModel

import llm_notebook
from llm_notebook.schemas import SchemaWarning, json_schema_validator
from llm_notebook.structured import (StructuredOutputError, feedback_prompt, parse_structured,
                                     typed_frame)

DOG = "name, age int, weight float, good bool"
FIDO = {"name": "Fido", "age": 3, "weight": 12.5, "good": True}


@pytest.mark.parametrize("text", [
    json.dumps(FIDO),
    "```json\n" + json.dumps(FIDO, indent=2) + "\n```",
    "Here is your dog:\n\n```json\n" + json.dumps(FIDO) + "\n```\n\nHe is a good boy.",
    "Sure!\n```\n" + json.dumps(FIDO) + "\n```",
    "The dog you asked for is " + json.dumps(FIDO) + ", as requested.",
    "Sure, here: " + json.dumps(FIDO) + " (an example of the format would be {\"name\": 1})",
])
def test_the_json_is_found_bare_fenced_or_inside_prose(text):
    assert parse_structured(text, DOG) == FIDO


def test_of_several_json_values_the_first_that_matches_is_returned():
    text = 'A dog looks like {"name": "..."}; mine is {"name": "Rex", "age": 2, "weight": 30, ' \
           '"good": false}'
    assert parse_structured(text, DOG) == {"name": "Rex", "age": 2, "weight": 30.0,
                                           "good": False}


def test_wrong_types_name_the_field_and_the_type_expected_and_keep_the_text():
    text = 'Here: {"name": "Fido", "age": "three", "weight": 12.5, "good": "yes"}'
    with pytest.raises(StructuredOutputError) as caught:
        parse_structured(text, DOG)
    error = caught.value
    assert error.text == text
    assert error.problems == ["field age: expected an integer, got string 'three'",
                              "field good: expected true or false, got string 'yes'"]
    assert str(error).startswith("The answer does not match the schema: field age: expected an "
                                 "integer")
    assert "\n" not in str(error)


def test_missing_fields_are_named_and_json_numbers_are_taken_as_json_schema_reads_them():
    with pytest.raises(StructuredOutputError, match="field weight: missing"):
        parse_structured('{"name": "Fido", "age": 3, "good": true}', DOG)
    # 3.0 is an integer to JSON Schema; 12 is a number; "3" is not an integer
    assert parse_structured('{"name": "F", "age": 3.0, "weight": 12, "good": true}', DOG) == \
        {"name": "F", "age": 3, "weight": 12.0, "good": True}
    with pytest.raises(StructuredOutputError,
                       match="field age: expected an integer, got number 3.5"):
        parse_structured('{"name": "F", "age": 3.5, "weight": 12, "good": true}', DOG)
    with pytest.raises(StructuredOutputError, match="field weight: expected a finite number"):
        parse_structured('{"name": "F", "age": 3, "weight": NaN, "good": true}', DOG)


def test_extra_fields_are_kept_unless_the_schema_forbids_them():
    extra = dict(FIDO, colour="brown")
    assert parse_structured(json.dumps(extra), DOG) == extra
    closed = {"type": "object", "properties": {"name": {"type": "string"}},
              "required": ["name"], "additionalProperties": False}
    with pytest.raises(StructuredOutputError, match="field colour: not a field the schema allows"):
        parse_structured('{"name": "Fido", "colour": "brown"}', closed)


def test_invalid_json_and_no_json_say_so():
    with pytest.raises(StructuredOutputError) as cut:
        parse_structured('```json\n{"name": "Fido", "age": 3,\n', DOG)
    assert "may have been cut off" in str(cut.value)
    assert cut.value.text == '```json\n{"name": "Fido", "age": 3,\n'
    with pytest.raises(StructuredOutputError, match=r"Expecting ',' delimiter at line 1"):
        parse_structured('{"name": "Fido" "age": 3}', DOG)
    with pytest.raises(StructuredOutputError,
                       match=r"holds no JSON object \(it begins 'I would rather not"):
        parse_structured("I would rather not\n invent a dog.", DOG)


def test_multi_returns_the_items_from_an_items_object_or_a_bare_array():
    items = [FIDO, dict(FIDO, name="Rex")]
    assert parse_structured(json.dumps({"items": items}), DOG, multi=True) == items
    assert parse_structured("Two dogs:\n" + json.dumps(items), DOG, multi=True) == items
    with pytest.raises(StructuredOutputError, match=r"field items\[1\]\.age: expected an integer"):
        parse_structured(json.dumps({"items": [FIDO, dict(FIDO, age="old")]}), DOG, multi=True)


class Address(BaseModel):
    city: str
    postcode: str | None = None


class Person(BaseModel):
    name: str
    address: Address
    tags: list[str] = []
    score: int | float


def test_pydantic_schemas_with_nested_models_optional_fields_and_unions():
    text = '{"name": "Ada", "address": {"city": "London"}, "score": 2.5, "tags": ["x"]}'
    assert parse_structured(text, Person) == {"name": "Ada", "address": {"city": "London"},
                                              "score": 2.5, "tags": ["x"]}
    bad = '{"name": "Ada", "address": {"city": 7, "postcode": null}, "score": "high"}'
    with pytest.raises(StructuredOutputError) as caught:
        parse_structured(bad, Person)
    assert caught.value.problems == ["field address.city: expected a string, got number 7",
                                     "field score: expected integer or number, got string 'high'"]


def test_multi_with_a_pydantic_schema_follows_its_definitions():
    people = [{"name": "Ada", "address": {"city": "London"}, "score": 1},
              {"name": "Alan", "address": {"city": "Wilmslow"}, "score": 2}]
    assert parse_structured(json.dumps({"items": people}), Person, multi=True) == people
    with pytest.raises(StructuredOutputError, match=r"field items\[1\]\.address\.city: expected "
                                                    "a string, got null"):
        parse_structured(json.dumps({"items": [people[0], dict(people[1], address={
            "city": None})]}), Person, multi=True)
    wrapped = llm_notebook.schemas.as_json_schema(Person, multi=True)
    assert wrapped["properties"]["items"]["items"]["properties"]["address"] == {
        "$ref": "#/$defs/Address"} and "Address" in wrapped["$defs"]


def test_enums_are_checked_by_json_type_as_well_as_value():
    schema = {"type": "object", "properties": {"size": {"enum": ["S", "M", 1]}}}
    validate = json_schema_validator(schema)
    assert validate({"size": "M"}) == {"size": "M"} and validate({"size": 1}) == {"size": 1}
    with pytest.raises(llm_notebook.schemas.SchemaMismatch,
                       match=r'field size: expected one of "S", "M", 1, got true'):
        validate({"size": True})


def test_constructs_not_checked_are_named_once_and_the_rest_is_still_checked():
    schema = {"type": "object", "required": ["when", "code"],
              "properties": {"when": {"type": "string", "not": {"const": "never"}},
                             "code": {"type": "string", "pattern": r"^(?=A)\w+$"},
                             "count": {"type": "integer", "minimum": 0}}}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert parse_structured('{"when": "never", "code": "Bx"}', schema) == \
            {"when": "never", "code": "Bx"}
        with pytest.raises(StructuredOutputError, match="field count: input should be greater "
                                                        "than or equal to 0, got number -1"):
            parse_structured('{"when": "now", "code": "A", "count": -1}', schema)
    [warning] = [w for w in seen if issubclass(w.category, SchemaWarning)]
    assert "not at when" in str(warning.message) and "(?=A)" in str(warning.message)


def test_patterns_run_on_a_linear_time_engine():
    """A backtracking engine takes about 2**40 steps on this input; it is refused at once."""
    schema = {"type": "object", "properties": {"word": {"type": "string",
                                                        "pattern": "^(a+)+$"}}}
    with pytest.raises(StructuredOutputError, match="field word: string should match pattern"):
        parse_structured(json.dumps({"word": "a" * 40 + "!"}), schema)


def test_the_feedback_prompt_names_the_problems_and_carries_the_schema():
    with pytest.raises(StructuredOutputError) as caught:
        parse_structured('{"name": "Fido", "age": "three", "weight": 1, "good": true}', DOG)
    feedback = feedback_prompt(caught.value, DOG)
    assert "- field age: expected an integer, got string 'three'" in feedback
    schema_line = feedback.strip().splitlines()[-1]
    assert json.loads(schema_line) == llm_notebook.schema_dsl(DOG)
    assert '"items" array' in feedback_prompt(caught.value, DOG, multi=True)


class Forgetful(llm_notebook.Model):
    """Gives the age as words, and as a number once told what was wrong."""

    model_id = "forgetful"
    supports_schema = True

    def execute(self, prompt, stream, response, conversation):
        corrected = "could not be used" in (prompt.prompt or "")
        yield json.dumps(dict(FIDO, age=3 if corrected else "three"))


def test_asking_again_with_the_feedback_gets_a_value_that_validates():
    first = Forgetful().prompt("Invent a dog", schema=DOG)
    with pytest.raises(StructuredOutputError) as caught:
        parse_structured(first.text(), DOG)
    second = first.reply(feedback_prompt(caught.value, DOG), schema=DOG)
    assert parse_structured(second.text(), DOG) == FIDO
    assert [r.prompt.prompt for r in second.conversation.responses][0] == "Invent a dog"


# -- typed columns ------------------------------------------------------------------------------
def _outcome(text, schema=DOG, multi=False):
    try:
        return parse_structured(text, schema, multi=multi)
    except StructuredOutputError as exc:
        return exc


def test_typed_columns_have_nullable_dtypes_and_keep_the_rows_index():
    index = pd.Index(["b", "a", "c", "d"], name="dog_id")  # not sorted: positions decide
    texts = [json.dumps(FIDO), 'I do not know', json.dumps(dict(FIDO, age="x")),
             json.dumps({"name": "Rex", "age": 5, "weight": 1, "good": False})]
    frame = typed_frame([(label, _outcome(t)) for label, t in zip(index, texts)], DOG,
                        index=index)
    assert frame.index.equals(index) and frame.index.name == "dog_id"
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        "name": "string", "age": "Int64", "weight": "Float64", "good": "boolean",
        "error": "string"}
    assert frame.loc["b"].tolist() == ["Fido", 3, 12.5, True, pd.NA]
    assert frame.loc["d", "age"] == 5 and frame.loc["d", "error"] is pd.NA
    assert frame.loc["a"].iloc[:4].isna().all()
    assert frame.loc["a", "error"].startswith("The answer is not usable JSON")
    assert frame.loc["c", "error"] == ("The answer does not match the schema: field age: "
                                       "expected an integer, got string 'x'")


def test_arrays_objects_and_unions_are_object_columns_and_missing_optionals_are_na():
    schema = {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string"}},
        "pair": {"type": "array", "items": {"type": "integer"}},
        "meta": {"type": "object"}, "either": {"type": ["integer", "string"]},
        "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "level": {"enum": ["low", "high"]}}}
    outcomes = [{"tags": ["a", "b"], "pair": [1, 2], "meta": {"k": 1}, "either": 1, "maybe": 4,
                 "level": "low"}, {"pair": [3, 4], "either": "x", "maybe": None}]
    frame = typed_frame(list(enumerate(outcomes)), schema)
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        "tags": "object", "pair": "object", "meta": "object", "either": "object",
        "maybe": "Int64", "level": "string", "error": "string"}
    assert frame.loc[0, "pair"] == [1, 2] and frame.loc[1, "pair"] == [3, 4]  # lists stay lists
    assert frame.loc[1, "tags"] is None and frame.loc[1, "maybe"] is pd.NA
    assert frame.loc[1, "level"] is pd.NA


def test_a_field_named_error_moves_the_error_column_aside_and_big_integers_are_kept():
    schema = "error, count int"
    frame = typed_frame([(0, {"error": "none", "count": 2 ** 70}), (1, ValueError("timeout"))],
                        schema)
    assert list(frame.columns) == ["error", "count", "error_"]
    assert frame.loc[0, "count"] == 2 ** 70  # too big for Int64: an object column keeps it
    assert frame.loc[1, "error_"] == "timeout" and frame.loc[0, "error"] == "none"


def test_multi_gives_a_row_per_item_indexed_by_its_source_row_so_join_lines_them_up():
    articles = pd.DataFrame({"headline": ["Dogs win", "Cats lose", "Nothing"]},
                            index=pd.Index([10, 20, 30], name="article"))
    answers = ['{"items": [{"name": "Rex", "age": 2, "weight": 9, "good": true}, '
               '{"name": "Ace", "age": 4, "weight": 7, "good": false}]}',
               "no dogs here", '{"items": []}']
    results = [(label, _outcome(text, multi=True))
               for label, text in zip(articles.index, answers)]
    items = typed_frame(results, DOG, multi=True, index=articles.index)
    assert list(items.index) == [10, 10, 20] and items.index.name == "article"
    assert items["item"].tolist() == [0, 1, pd.NA] and str(items["item"].dtype) == "Int64"
    assert items.loc[20, "error"].startswith("The answer is not usable JSON")
    joined = articles.join(items)
    assert joined[["headline", "name"]].fillna("-").values.tolist() == [
        ["Dogs win", "Rex"], ["Dogs win", "Ace"], ["Cats lose", "-"], ["Nothing", "-"]]


def test_an_index_of_another_length_is_refused():
    with pytest.raises(ValueError, match="index has 2 labels for 1 results"):
        typed_frame([(0, FIDO)], DOG, index=pd.Index([0, 1]))
