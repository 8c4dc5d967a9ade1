"""`{name}` interpolation rules, on plain namespaces."""

from __future__ import annotations

import pandas as pd
import pytest

from llm_notebook.interpolate import InterpolationError, interpolate, is_reference, resolve


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
