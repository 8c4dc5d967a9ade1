"""The DataFrame toolbox: each tool on a table of mixed dtypes, the query language and every
refusal (anything outside it is refused with a line saying what is allowed), size caps, the
table never modified, and a chain in which a scripted model questions the table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import llm_notebook
from llm_notebook import Model, ToolCall
from llm_notebook.tool_execution import execute_tool_calls
from llm_notebook.tools import as_tools

REGIONS = ["north", "south", "east", "west"]


def sales_frame(rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "region": [REGIONS[i % 4] for i in range(rows)],
        "sales": rng.normal(100, 15, rows).round(2),
        "units": pd.array(rng.integers(0, 20, rows), dtype="Int64"),
        "date": pd.date_range("2024-01-01", periods=rows, freq="D"),
        "grade": pd.Categorical([["A", "B", "C"][i % 3] for i in range(rows)],
                                categories=["A", "B", "C"], ordered=True),
        "promo": [i % 5 == 0 for i in range(rows)],
        "note": [None if i % 6 else f"Restocked shelf {i}" for i in range(rows)],
        "tags": [["x", "y"] if i % 2 else [] for i in range(rows)],
    })
    frame.loc[[3, 8], "sales"] = np.nan
    frame.loc[5, "units"] = pd.NA
    frame.loc[10, "region"] = None
    return frame


@pytest.fixture
def frame():
    return sales_frame()


def call(box, tool: str, **arguments) -> str:
    """What the model reads back for one call, run the way a chain runs it."""
    [result] = execute_tool_calls([ToolCall(name=f"{box.name}_{tool}", arguments=arguments)],
                                  as_tools([box]))
    return result.output


def rows_of(text: str, skip: int = 1) -> list[list[str]]:
    """The data lines of a table the toolbox printed, split on whitespace: `skip` lines (the
    header; a query's also has a line saying what matched) and the notes left out."""
    return [line.split() for line in text.splitlines()[skip:]
            if line and not line.startswith("(")]


def test_the_tools_are_named_after_the_table_and_described_for_the_model(frame):
    box = llm_notebook.tools.dataframe(frame, name="sales")
    tools = {tool.name: tool for tool in as_tools([box])}
    assert sorted(tools) == ["sales_describe", "sales_head", "sales_query", "sales_sample",
                             "sales_schema", "sales_value_counts"]
    query = tools["sales_query"].input_schema
    assert query["$defs"]["Filter"]["properties"]["op"]["enum"] == [
        "==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith", "is null",
        "not null"]
    assert query["$defs"]["Filter"]["additionalProperties"] is False
    assert "never code" in tools["sales_query"].description


def test_schema_lists_columns_dtypes_kinds_and_missing_values(frame):
    text = call(llm_notebook.tools.dataframe(frame, name="sales"), "schema")
    lines = text.splitlines()
    assert lines[0] == "sales: 240 rows, 8 columns"
    columns = {row[0]: row[1:4] for row in rows_of("\n".join(lines[1:]))}
    assert columns["sales"] == ["float64", "number", "2"]
    assert columns["units"] == ["Int64", "number", "1"]
    assert columns["date"][1:] == ["datetime", "0"]
    assert columns["region"][1:] == ["text", "1"] and columns["note"][1:] == ["text", "200"]
    assert columns["promo"] == ["bool", "boolean", "0"]
    assert columns["tags"] == ["object", "other", "0"]
    assert "ordered categories: A < B < C" in text


def test_head_and_sample_show_rows_within_the_cap(frame):
    box = llm_notebook.tools.dataframe(frame, max_rows=20)
    head = call(box, "head", n=3, columns=["region", "sales"])
    assert rows_of(head) == [[str(i), frame.loc[i, "region"], f"{frame.loc[i, 'sales']:.2f}"]
                             for i in range(3)]
    first = call(box, "sample", n=4, seed=3)
    assert first == call(box, "sample", n=4, seed=3) != call(box, "sample", n=4, seed=4)
    assert len(rows_of(first)) == 4
    assert call(box, "head", n=21) == ("Error: n must be between 1 and 20 (got 21): ask for "
                                       "fewer rows, or aggregate")
    assert call(box, "head", n=-5).startswith("Error: n must be between 1 and 20")
    assert call(box, "sample", n=0).startswith("Error: n must be between 1 and 20")


def test_describe_gives_statistics_by_kind(frame):
    text = call(llm_notebook.tools.dataframe(frame), "describe", columns=["sales", "date",
                                                                         "region", "grade"])
    numbers, dates, others = text.split("\n\n")
    [sales] = [row for row in rows_of(numbers) if row[0] == "sales"]
    assert float(sales[1]) == 238 and float(sales[2]) == pytest.approx(frame["sales"].mean(),
                                                                      abs=1e-3)
    assert dates.splitlines()[-1].split() == ["date", "240", "2024-01-01", "2024-08-27"]
    region = [row for row in rows_of(others) if row[0] == "region"][0]
    assert region[1:3] == ["239", "4"]
    assert "numbers:" in numbers and "text, categories and others:" in others


def test_value_counts_counts_missing_values_and_says_what_was_left_out(frame):
    box = llm_notebook.tools.dataframe(frame)
    text = call(box, "value_counts", column="region")
    counts = {row[0]: int(row[1]) for row in rows_of(text)}
    assert counts == {"north": 60, "south": 60, "west": 60, "east": 59, "NaN": 1}
    limited = call(box, "value_counts", column="note", limit=3)
    assert "(3 of 41 rows shown; the other values cover 38 rows: raise limit" in limited
    assert call(box, "value_counts", column="nowhere").startswith(
        "Error: column: no column 'nowhere'; the columns are region, sales")


def test_values_that_cannot_be_hashed_or_ordered_get_a_clear_refusal():
    box = llm_notebook.tools.dataframe(pd.DataFrame({"g": [1, 1, 2], "v": [{1}, {2}, {3}]}))
    assert call(box, "query", group_by=["g"],
                aggregations=[{"function": "nunique", "column": "v"}]) == (
        "Error: unhashable type: 'set': these values cannot be grouped, aggregated or sorted; "
        "count them, or filter them with ==, in or is null")
    assert call(box, "query", group_by=["v"]).startswith("Error: unhashable type: 'set'")


def test_query_filters_groups_aggregates_and_sorts_as_pandas_would(frame):
    box = llm_notebook.tools.dataframe(frame, name="sales")
    text = call(box, "query", filters=[{"column": "date", "op": ">=", "value": "2024-03-01"},
                                       {"column": "region", "op": "in",
                                        "value": ["north", "south", "east"]}],
                group_by=["region"],
                aggregations=[{"function": "sum", "column": "sales"},
                              {"function": "count"}, {"function": "max", "column": "units"}],
                sort=[{"column": "sum_sales", "descending": True}])
    kept = frame[(frame["date"] >= "2024-03-01") & frame["region"].isin(["north", "south",
                                                                         "east"])]
    expected = kept.groupby("region")["sales"].sum().sort_values(ascending=False)
    lines = text.splitlines()
    assert lines[0] == "3 groups of the rows that match"
    assert lines[1].split() == ["region", "sum_sales", "count", "max_units"]
    got = [(row[0], float(row[1]), int(row[2])) for row in rows_of(text, skip=2)]
    assert [name for name, _, _ in got] == list(expected.index)
    assert [total for _, total, _ in got] == pytest.approx(list(expected.round(2)), abs=0.01)
    assert [count for _, _, count in got] == [int((kept["region"] == r).sum())
                                             for r in expected.index]


def test_query_text_category_null_and_whole_table_aggregates(frame):
    box = llm_notebook.tools.dataframe(frame)
    shelf_1 = frame["note"].str.lower().str.contains("restocked shelf 1", regex=False).sum()
    assert call(box, "query", filters=[{"column": "note", "op": "contains",
                                        "value": "RESTOCKED shelf 1"}]).splitlines()[0] == \
        f"{shelf_1} of 240 rows match"  # any case, plain text
    shelf_2 = frame["note"].str.startswith("Restocked shelf 2").fillna(False).sum()
    assert call(box, "query", filters=[{"column": "note", "op": "startswith",
                                        "value": "restocked SHELF 2"}]).splitlines()[0] == \
        f"{shelf_2} of 240 rows match"
    assert call(box, "query", filters=[{"column": "grade", "op": "<", "value": "C"}]
                ).splitlines()[0] == "160 of 240 rows match"
    assert call(box, "query", filters=[{"column": "sales", "op": "is null"}]
                ).splitlines()[0] == "2 of 240 rows match"
    # missing values match no comparison, not even !=
    assert call(box, "query", filters=[{"column": "region", "op": "!=", "value": "north"}]
                ).splitlines()[0] == "179 of 240 rows match"
    whole = call(box, "query", aggregations=[{"function": "mean", "column": "sales"},
                                             {"function": "nunique", "column": "grade"},
                                             {"function": "min", "column": "date"}])
    assert whole.splitlines()[0] == "aggregates"
    mean, unique, first = rows_of(whole, skip=2)[0]
    assert float(mean) == pytest.approx(frame["sales"].mean(), abs=1e-3)
    assert (unique, first) == ("3", "2024-01-01")
    grouped = call(box, "query", group_by=["promo"])  # count of rows by default
    assert rows_of(grouped, skip=2) == [["False", "192"], ["True", "48"]]


def test_query_lists_matching_rows_with_chosen_columns_and_limit(frame):
    box = llm_notebook.tools.dataframe(frame)
    text = call(box, "query", filters=[{"column": "promo", "op": "==", "value": True}],
                columns=["region", "units"], sort=[{"column": "units", "descending": True}],
                limit=3)
    lines = text.splitlines()
    assert lines[0] == "48 of 240 rows match" and lines[1].split() == ["region", "units"]
    top = frame[frame["promo"]].sort_values("units", ascending=False, kind="stable").head(3)
    assert [int(row[2]) for row in rows_of(text, skip=2)] == top["units"].tolist()
    assert "(3 of 48 rows shown; add filters" in text
    assert call(box, "query", filters=[{"column": "region", "op": "==", "value": "mars"}]) == \
        "0 of 240 rows match"


@pytest.mark.parametrize(("arguments", "message"), [
    ({"filters": [{"column": "revenue", "op": "==", "value": 1}]},
     "Error: filters[0].column: no column 'revenue'; the columns are region, sales, units, date, "
     "grade, promo, note, tags"),
    ({"filters": [{"column": "sales", "op": "like", "value": 1}]},
     "Error: field filters[0].op: expected '==', '!=', '<', '<=', '>', '>=', 'in', "
     "'not in', 'contains', 'startswith', 'is null' or 'not null', got string 'like'"),
    ({"filters": [{"column": "region", "op": ">", "value": "m"}]},
     "Error: filters[0]: '>' compares order, which 'region' (text) does not have; use ==, !=, "
     "in or not in"),
    ({"filters": [{"column": "sales", "op": "contains", "value": "1"}]},
     "Error: filters[0]: 'contains' applies to text columns; 'sales' is number: use ==, in or a "
     "comparison"),
    ({"filters": [{"column": "sales", "op": ">", "value": "100"}]},
     "Error: filters[0]: 'sales' holds numbers: compare it with a number, not the text '100'"),
    ({"filters": [{"column": "date", "op": ">", "value": "last week"}]},
     "Error: filters[0]: 'date' holds dates: give an ISO date such as 2024-01-31 or "
     "2024-01-31T09:30, not 'last week'"),
    ({"filters": [{"column": "grade", "op": "<", "value": "Z"}]},
     "Error: filters[0]: 'grade' is an ordered category: compare it with one of its categories "
     "(A, B, C)"),
    ({"filters": [{"column": "sales", "op": "in", "value": 3}]},
     "Error: filters[0]: 'in' takes a list of values, e.g. [\"a\", \"b\"]"),
    ({"filters": [{"column": "sales", "op": "in", "value": list(range(101))}]},
     "Error: filters[0]: 'in' takes at most 100 values"),
    ({"filters": [{"column": "sales", "op": "is null", "value": 0}]},
     "Error: filters[0]: 'is null' takes no value"),
    ({"aggregations": [{"function": "mean", "column": "region"}]},
     "Error: aggregations[0]: mean does not apply to 'region' (text); it applies to number or "
     "boolean or datetime columns, count and nunique to any"),
    ({"aggregations": [{"function": "sum"}]}, "Error: aggregations[0]: sum needs a column"),
    ({"aggregations": [{"function": "stddev", "column": "sales"}]},
     "Error: field aggregations[0].function: expected 'count', 'sum', 'mean', 'median', "
     "'min', 'max' or 'nunique', got string 'stddev'"),
    ({"group_by": ["region"], "sort": [{"column": "sales"}]},
     "Error: sort[0].column: 'sales' is not in the result; sort by one of region, count"),
    ({"group_by": ["region"], "columns": ["sales"]},
     "Error: columns: applies to rows only; with group_by or aggregations the result holds the "
     "groups and the aggregations"),
    ({"limit": 10 ** 9}, "Error: limit must be between 1 and 50 (got 1000000000): ask for fewer "
                         "rows, or aggregate"),
    ({"filters": [{"column": "sales", "op": "not null"}] * 21, "group_by": ["region"] * 6},
     "Error: filters: at most 20; group_by: at most 5"),
])
def test_the_query_language_refuses_with_a_line_saying_what_is_allowed(frame, arguments, message):
    assert call(llm_notebook.tools.dataframe(frame), "query", **arguments) == message


def test_every_problem_of_a_query_is_reported_at_once_on_one_bounded_line(frame):
    box = llm_notebook.tools.dataframe(frame)
    text = call(box, "query", filters=[{"column": "nope", "op": "==", "value": 1},
                                       {"column": "units", "op": ">", "value": True}],
                group_by=["missing"])
    assert "filters[0].column: no column 'nope'" in text
    assert "filters[1]: 'units' holds numbers" in text and "group_by: no column 'missing'" in text
    many = call(box, "query", filters=[{"column": f"c{i}", "op": "?"} for i in range(20)])
    assert many.endswith("; and 15 more") and len(many.splitlines()) == 1


@pytest.mark.parametrize(("arguments", "message"), [
    # Python and pandas expressions where a column is expected are just unknown names
    ({"filters": [{"column": "__import__('os').system('touch /tmp/owned')", "op": "==",
                   "value": 1}]}, "no column \"__import__('os').system('touch /tmp/owned')\""),
    ({"filters": [{"column": "`sales` > 100", "op": "not null"}]}, "no column '`sales` > 100'"),
    ({"filters": [{"column": "@threshold", "op": "not null"}]}, "no column '@threshold'"),
    ({"group_by": ["region.str.upper()"]}, "group_by: no column 'region.str.upper()'"),
    ({"aggregations": [{"function": "sum", "column": "sales.pipe(print)"}]},
     "no column 'sales.pipe(print)'"),
    # a df.query / df.eval string instead of the structure
    ({"filters": "sales > 100 and region == 'north'"},
     "field filters: expected an array, got string"),
    ({"query": "sales > 100"}, "field query: not a field the schema allows"),
    ({"expr": "df.eval('sales * 2')", "filters": []}, "field expr: not a field the schema allows"),
    # unknown keys in nested dicts, wrong shapes
    ({"filters": [{"column": "sales", "op": ">", "value": 1, "engine": "python"}]},
     "field filters[0].engine: not a field the schema allows"),
    ({"aggregations": [{"function": "sum", "column": "sales", "func": "lambda x: x"}]},
     "field aggregations[0].func: not a field the schema allows"),
    ({"sort": [{"column": "sales", "descending": "yes", "key": "abs"}]},
     "field sort[0].descending: expected true or false"),
    ({"filters": [{"column": "sales", "op": "==", "value": {"$gt": 1}}]},
     "expected a single value, got an object"),
    ({"limit": 3.5}, "field limit: expected an integer"),
    ({"limit": -1}, "limit must be between 1 and 50"),
    # values that are no number
    ({"filters": [{"column": "sales", "op": ">", "value": float("nan")}]},
     "nan is not a finite number (to find missing values use op 'is null')"),
    ({"filters": [{"column": "sales", "op": "<", "value": float("inf")}]},
     "inf is not a finite number"),
    ({"filters": [{"column": "sales", "op": "in", "value": [1, float("-inf")]}]},
     "-inf is not a finite number"),
    ({"filters": [{"column": "region", "op": "==", "value": "x" * 201}]},
     "values are at most 200 characters"),
])
def test_anything_outside_the_language_is_refused(frame, arguments, message):
    text = call(llm_notebook.tools.dataframe(frame), "query", **arguments)
    assert text.startswith("Error: ") and message in text
    assert "Traceback" not in text and len(text.splitlines()) == 1


def test_values_are_data_never_evaluated(frame):
    box = llm_notebook.tools.dataframe(pd.DataFrame({"text": ["@threshold", "a" * 30 + "!",
                                                              "(a+)+$ literally", "`x`"]}))
    for value, rows in [("@threshold", 1), ("__import__('os')", 0), ("`x`", 1)]:
        assert call(box, "query", filters=[{"column": "text", "op": "==", "value": value}]
                    ).splitlines()[0] == f"{rows} of 4 rows match"
    # a regex bomb is plain text: it matches itself, not the string it would blow up on
    text = call(box, "query", filters=[{"column": "text", "op": "contains", "value": "(a+)+$"}])
    assert text.splitlines()[0] == "1 of 4 rows match" and "literally" in text


def test_results_are_capped_in_rows_and_characters_with_a_note():
    wide = pd.DataFrame({"text": [f"row {i} " + "word " * 30 for i in range(5000)],
                         **{f"c{i}": range(i, i + 5000) for i in range(40)}})
    box = llm_notebook.tools.dataframe(wide, max_rows=50, max_chars=2000)
    for tool, arguments in [("head", {"n": 50}), ("sample", {"n": 50}), ("query", {}),
                            ("describe", {}), ("value_counts", {"column": "text", "limit": 50}),
                            ("query", {"group_by": ["text"], "limit": 50})]:
        text = call(box, tool, **arguments)
        assert len(text) <= 2000 and "rows shown" in text, (tool, len(text))
    assert len(call(box, "schema")) <= 2000
    head = call(box, "head", n=50)
    assert "rows shown; ask for fewer rows or name fewer columns" in head
    assert "30 of 41 columns shown (the middle ones are left out): name the columns you need" \
        in head
    assert "values longer than 80 characters are cut (...)" in head
    listing = call(box, "query", columns=["c0"])
    assert listing.splitlines()[0] == "5000 of 5000 rows match"
    assert "of 5000 rows shown; add filters, group by fewer columns, or sort and set a smaller " \
           "limit" in listing


def test_no_tool_changes_the_table(frame):
    frame.index = pd.Index([f"r{i}" for i in range(len(frame))], name="row")
    before = frame.copy(deep=True)
    box = llm_notebook.tools.dataframe(frame)
    for tool, arguments in [
            ("schema", {}), ("head", {"n": 5}), ("sample", {"n": 5}), ("describe", {}),
            ("value_counts", {"column": "grade"}),
            ("query", {"filters": [{"column": "sales", "op": ">", "value": 90},
                                   {"column": "note", "op": "contains", "value": "shelf"}],
                       "group_by": ["grade", "region"],
                       "aggregations": [{"function": "median", "column": "sales"}],
                       "sort": [{"column": "median_sales", "descending": True}]}),
            ("query", {"columns": ["sales"], "sort": [{"column": "sales"}], "limit": 5})]:
        assert not call(box, tool, **arguments).startswith("Error"), tool
    pd.testing.assert_frame_equal(frame, before, check_exact=True)
    assert frame.index.equals(before.index) and frame.index.name == "row"
    assert frame.dtypes.equals(before.dtypes) and list(frame.columns) == list(before.columns)
    assert frame["grade"].cat.ordered and frame.loc["r3", "tags"] == ["x", "y"]


def test_a_named_index_is_queryable_and_a_series_is_one_column():
    monthly = pd.Series([5.0, 7.5, np.nan, 2.0], name="revenue",
                        index=pd.Index(["jan", "feb", "mar", "apr"], name="month"))
    box = llm_notebook.tools.dataframe(monthly, name="monthly")
    schema = call(box, "schema")
    assert schema.splitlines()[0] == "monthly: 4 rows, 2 columns" and "from the index" in schema
    text = call(box, "query", filters=[{"column": "revenue", "op": ">", "value": 4}],
                sort=[{"column": "revenue", "descending": True}])
    assert [row[1:] for row in rows_of(text, skip=2)] == [["feb", "7.5"], ["jan", "5.0"]]
    unnamed = llm_notebook.tools.dataframe(pd.Series([1, 2, 3]))
    assert rows_of(call(unnamed, "schema"))[1][:3] == ["value", "int64", "number"]


def test_timezones_and_bad_construction_are_explained():
    aware = pd.DataFrame({"at": pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC")})
    box = llm_notebook.tools.dataframe(aware)
    assert call(box, "query", filters=[{"column": "at", "op": ">", "value": "2024-01-02"}]
                ).splitlines()[0] == "2 of 4 rows match"
    naive = llm_notebook.tools.dataframe(aware.assign(at=aware["at"].dt.tz_localize(None)))
    assert call(naive, "query", filters=[{"column": "at", "op": ">",
                                          "value": "2024-01-02T00:00+02:00"}]) == \
        "Error: filters[0]: 'at' has no time zone: give the date without an offset"
    empty = llm_notebook.tools.dataframe(pd.DataFrame(), name="empty")
    assert (call(empty, "describe"), call(empty, "query")) == ("empty has no columns",
                                                               "0 of 0 rows match")
    with pytest.raises(ValueError, match="name must be letters, digits and _"):
        llm_notebook.tools.dataframe(aware, name="my table")
    with pytest.raises(TypeError, match="takes a pandas DataFrame or Series, not list"):
        llm_notebook.tools.dataframe([1, 2])
    with pytest.raises(ValueError, match="'1' name more than one column"):
        llm_notebook.tools.dataframe(pd.DataFrame([[1, 2]], columns=[1, "1"]))


class Analyst(Model):
    """Makes the calls of each round in `plan`, then answers from the last result it read."""

    model_id = "analyst"
    supports_tools = True

    def __init__(self, plan):
        self.plan = plan
        self.read: list[list[str]] = []

    def execute(self, prompt, stream, response, conversation):
        if prompt.tool_results:
            self.read.append([result.output for result in prompt.tool_results])
        round_number = len(self.read)
        if round_number < len(self.plan):
            for name, arguments in self.plan[round_number]:
                response.add_tool_call(ToolCall(name=name, arguments=arguments))
            return
        top_row = rows_of(self.read[-1][-1], skip=2)[0]
        yield f"{top_row[0]} declined most ({top_row[1]})."


def test_a_model_questions_the_table_in_a_chain_and_answers_from_capped_results():
    frame = sales_frame(2000)
    frame["change"] = np.where(frame["region"] == "east", -3.0, 1.0) * (frame.index % 7)
    plan = [[("sales_schema", {})],
            [("sales_query", {"group_by": ["region"], "aggregations": [  # a typo first
                {"function": "sum", "column": "chnage"}]})],
            [("sales_query", {"group_by": ["region"],
                              "aggregations": [{"function": "sum", "column": "change"}],
                              "sort": [{"column": "sum_change"}], "limit": 1})]]
    model = Analyst(plan)
    chain = model.chain("Which region declined most, and why?",
                        tools=[llm_notebook.tools.dataframe(frame, name="sales")])
    answer = chain.text()
    expected = frame.groupby("region")["change"].sum().sort_values()
    assert answer == f"east declined most ({expected.iloc[0]})."
    schema, typo, result = (outputs[0] for outputs in model.read)
    assert schema.startswith("sales: 2000 rows, 9 columns")
    assert typo.startswith("Error: aggregations[0].column: no column 'chnage'; the columns are")
    assert "change" in typo
    assert result.splitlines()[0] == "5 groups"
    assert "(1 of 5 rows shown;" in result
    assert all(len(outputs[0]) <= 4000 for outputs in model.read)
    assert [r.name for r in chain.tool_results] == ["sales_schema", "sales_query", "sales_query"]


def test_the_toolbox_survives_a_json_round_trip_of_its_arguments(frame):
    """Arguments arrive as parsed JSON: ints for floats, lists for tuples."""
    arguments = json.loads(json.dumps({"filters": [{"column": "sales", "op": ">=", "value": 100},
                                                   {"column": "units", "op": "in",
                                                    "value": [1, 2, 3]}]}))
    text = call(llm_notebook.tools.dataframe(frame), "query", **arguments)
    expected = ((frame["sales"] >= 100) & frame["units"].isin([1, 2, 3])).sum()
    assert text.splitlines()[0] == f"{expected} of 240 rows match"
