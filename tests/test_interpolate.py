"""`{name}` interpolation rules, on plain namespaces."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_notebook.interpolate import InterpolationError, interpolate, is_reference, resolve
from llm_notebook.keys import Secret
from tests.support.awkward_values import BrokenText, EndlessText


class Point:
    x = 3
    label = "P"


NAMESPACE = {
    "n": 7, "name": "Ada", "point": Point(), "cfg": {"lr": 0.1, "layers": [16, 32], 2: "two"},
    "In": ["", "df = load()", "plot(df)"], "Out": {2: "a chart"}, "items": ["a", "b", "c"],
}


@pytest.mark.parametrize("text, expected", [
    ("{n} items", "7 items"),
    ("{point.x},{point.label}", "3,P"),
    ('{cfg["lr"]} {cfg[\'lr\']} {cfg[lr]}', "0.1 0.1 0.1"),
    ("{cfg[layers][1]} {cfg[2]} {items[-1]}", "32 two c"),
    ("{In[1]} -> {Out[2]}", "df = load() -> a chart"),
    ("{{name}} is {name}", "{name} is Ada"),
    ("{{ not a reference }}", "{ not a reference }"),
    ('{"a": {"b": [1, 2]}}', '{"a": {"b": [1, 2]}}'),
    ("{'k': v} and {x: 1} and {} and { n }", "{'k': v} and {x: 1} and {} and { n }"),
    ("def f(): return {n: n}", "def f(): return {n: n}"),
    ("f'{n!r:>3}'", "f'{n!r:>3}'"),
    ("{name}{name}", "AdaAda"),
])
def test_references_are_replaced_and_other_braces_kept(text, expected):
    assert interpolate(text, NAMESPACE) == expected


def test_replaced_text_is_not_interpolated_again():
    assert interpolate("{template}", {"template": "{secret}", "secret": "no"}) == "{secret}"


@pytest.mark.parametrize("text, message", [
    ("{missing}", "{missing}: no variable named 'missing'"),
    ("{point.y}", "{point.y}: .y failed (AttributeError"),
    ("{cfg[nope]}", "{cfg[nope]}: [nope] failed (KeyError: 'nope')"),
    ("{items[9]}", "{items[9]}: [9] failed (IndexError"),
])
def test_a_broken_reference_is_an_error_naming_it(text, message):
    with pytest.raises(InterpolationError) as error:
        interpolate(f"before {text} after", NAMESPACE)
    assert str(error.value).startswith(message)


def test_dataframes_become_compact_tables_with_a_note_on_left_out_rows():
    frame = pd.DataFrame({"city": [f"c{i}" for i in range(45)], "pop": range(45)})
    text = interpolate("Data:\n{frame}", {"frame": frame})
    lines = text.splitlines()
    assert lines[1].split() == ["city", "pop"]
    assert lines[2].split() == ["0", "c0", "0"] and lines[31].split() == ["29", "c29", "29"]
    assert lines[32] == "(15 more rows not shown; 45 rows × 2 columns in all)"
    small = interpolate("{s}", {"s": frame["pop"].head(3)})
    assert small.splitlines() == ["0    0", "1    1", "2    2"]
    assert "more rows" not in small


def test_is_reference_and_resolve():
    assert is_reference("point.x") and is_reference('cfg["lr"]') and is_reference("arr")
    assert not is_reference("data.png/x") and not is_reference("@plot") and not is_reference("a b")
    assert resolve("cfg[layers][0]", NAMESPACE) == 16


# -- what is never filled in -----------------------------------------------------------------------
class KeyedModel:
    """Anything with a model_id and a get_key() is treated as a model, whatever its base class."""

    model_id = "keyed"
    api_key = "sk-held-by-a-plugin-model"
    key = "sk-held-by-a-plugin-model"

    def get_key(self):
        return self.key


class NotAModel:
    key = "a door key"


class BrokenLookup:
    def __getattr__(self, name):
        return getattr(self, name)


def test_private_names_and_attributes_are_refused():
    namespace = {"_x": 1, "point": Point(), "m": KeyedModel()}
    for text, message in [
        ("{_x}", "{_x}: variables starting with _ are not filled in (write Out[3] for an earlier "
                 "output, or {{_x}} for the literal text)"),
        ("{point.__class__}", "{point.__class__}: .__class__ is private; attributes starting "
                              "with _ are not filled in"),
        ("{m.__dict__}", "{m.__dict__}: .__dict__ is private"),
        ("{m._key}", "{m._key}: ._key is private"),
        ("{point.x.__class__.__init__}", "{point.x.__class__.__init__}: .__class__ is private"),
    ]:
        with pytest.raises(InterpolationError) as error:
            interpolate(text, namespace)
        assert str(error.value).startswith(message)


def test_keys_are_refused_however_they_are_reached():
    secret = Secret("sk-a-secret-for-interpolation")
    namespace = {"k": secret, "d": {"openai": secret}, "m": KeyedModel(), "door": NotAModel()}
    for text, message in [
        ("{k}", "{k}: an API key is never put in a prompt"),
        ("{k.upper}", "{k.upper}: an API key is never put in a prompt"),
        ("{k[0]}", "{k[0]}: an API key is never put in a prompt"),
        ("{d[openai]}", "{d[openai]}: an API key is never put in a prompt"),
        ("{m.key}", "{m.key}: .key of a model is its API key"),
        ("{m.api_key}", "{m.api_key}: .api_key of a model is its API key"),
    ]:
        with pytest.raises(InterpolationError) as error:
            interpolate(f"use {text} now", namespace)
        assert str(error.value).startswith(message)
        assert "sk-" not in str(error.value)
    assert interpolate("{d}", namespace) == "{'openai': '***'}"  # str(dict) shows reprs: masked
    assert interpolate("{door.key}", namespace) == "a door key"


def test_text_holding_a_known_key_and_credential_variables_are_refused(monkeypatch):
    Secret("sk-known-to-this-process")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-value-123456")
    monkeypatch.setenv("GREETING", "hello")
    namespace = {"os": os, "copy": {"header": "Bearer sk-known-to-this-process"}}
    for text, message in [
        ("{copy}", "{copy}: its text contains an API key"),
        ("{os.environ}", "{os.environ}: the environment holds API keys"),
        ("{os.environ.get}", "{os.environ.get}: the environment holds API keys"),
        ("{os.environ[MY_SERVICE_TOKEN]}", "{os.environ[MY_SERVICE_TOKEN]}: environment variables "
                                           "named like credentials are never put in a prompt"),
    ]:
        with pytest.raises(InterpolationError) as error:
            interpolate(text, namespace)
        assert str(error.value).startswith(message)
    assert interpolate("{os.environ[GREETING]}", namespace) == "hello"


def test_a_value_that_cannot_become_text_is_one_line_naming_the_reference():
    namespace = {"broken": BrokenText(), "endless": EndlessText(), "lookup": BrokenLookup()}
    for text, message in [
        ("{broken}", "{broken} cannot be turned into text (RuntimeError: first line)"),
        ("{endless}", "{endless} cannot be turned into text (RecursionError: maximum recursion "
                      "depth exceeded"),
        ("{lookup.anything}", "{lookup.anything}: .anything failed (RecursionError: maximum "
                              "recursion depth exceeded"),
    ]:
        with pytest.raises(InterpolationError) as error:
            interpolate(text, namespace)
        assert str(error.value).startswith(message)
        assert "\n" not in str(error.value)


# -- fuzzing ---------------------------------------------------------------------------------------
NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6)
NAMESPACES = st.dictionaries(NAMES, VALUES, max_size=6)
BRACE_TEXT = st.lists(st.sampled_from(list("{}[]._'\"ab1 \n") + ["{a}", "{{a}}", "{b.c}",
                                                                   "{a[0]}", "{_a}"]),
                      max_size=20).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=60), BRACE_TEXT), namespace=NAMESPACES)
def test_interpolate_raises_nothing_but_interpolation_errors(text, namespace):
    try:
        result = interpolate(text, namespace)
    except InterpolationError as error:
        assert "\n" not in str(error) and str(error).startswith("{")
    else:
        assert isinstance(result, str)


#: A piece of a prompt: literal text without braces, a {{...}} pair, or a reference.
PIECES = st.lists(st.one_of(
    st.tuples(st.just("text"), st.text(st.characters(exclude_characters="{}"), max_size=10)),
    st.tuples(st.just("literal"), st.text(st.characters(exclude_characters="{}"), max_size=10)),
    st.tuples(st.just("reference"), NAMES)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(pieces=PIECES, values=st.dictionaries(NAMES, st.text(max_size=20) | BRACE_TEXT, min_size=1))
def test_each_reference_is_replaced_once_and_pairs_become_single_braces(pieces, values):
    """Values may themselves hold {references} and {{pairs}}: they are inserted as they are."""
    names = sorted(values)
    text, expected = "", ""
    for number, (kind, content) in enumerate(pieces):
        if kind == "text":
            text, expected = text + content, expected + content
        elif kind == "literal":
            text, expected = text + "{{" + content + "}}", expected + "{" + content + "}"
        else:
            name = names[number % len(names)]
            text, expected = text + "{" + name + "}", expected + values[name]
    assert interpolate(text, values) == expected
