"""The query language of the DataFrame toolbox: JSON a model writes (filters, groups,
aggregations, sort, limit), checked against the table's columns and dtypes before anything
runs. Nothing the model sends is evaluated: column names are looked up, operators and
aggregations come from fixed sets, and values are compared as data (no regex, no expressions).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ..errors import LLMNotebookError
from ..schemas import problems_line

__all__ = ["AGGREGATIONS", "OPERATORS", "Aggregation", "Filter", "QueryError", "SortKey",
           "as_table", "column_kind", "column_problems", "run_query"]

OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith",
             "is null", "not null")
AGGREGATIONS = ("count", "sum", "mean", "median", "min", "max", "nunique")
#: Operators that compare order, and the kinds of column they apply to.
_ORDERED = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_ORDERED_KINDS = ("number", "datetime")
_TEXT_OPERATORS = ("contains", "startswith")
_LIST_OPERATORS = ("in", "not in")
_NULL_OPERATORS = ("is null", "not null")
#: What each aggregation applies to (count and nunique apply to every kind).
_AGGREGATION_KINDS = {"sum": ("number", "boolean"), "mean": ("number", "boolean", "datetime"),
                      "median": ("number", "datetime"),
                      "min": ("number", "boolean", "datetime"),
                      "max": ("number", "boolean", "datetime")}
MOST_VALUES = 100
LONGEST_TEXT = 200
#: The longest list each part of a query may have.
MOST_PARTS = {"filters": 20, "group_by": 5, "aggregations": 20, "sort": 5}
#: Column names listed in a message before the rest are counted.
_NAMES_LISTED = 40

_STRICT = ConfigDict(extra="forbid", strict=True)
_VALUE_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"},
                           {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
                           {"type": "null"}]}


class QueryError(LLMNotebookError, ValueError):
    """A request the toolbox refuses: the message says what was wrong and what is allowed."""


class Filter(BaseModel):
    """Keep the rows where `column` `op` `value` holds (filters combine with AND)."""

    model_config = _STRICT
    column: str
    op: Literal[OPERATORS] = Field(description="contains / startswith: plain text, any case; "
                                               "missing values match only 'is null'")
    value: Any = Field(None, json_schema_extra=_VALUE_SCHEMA,
                       description="a list for in / not in; leave out for is null / not null; "
                                   "dates as ISO text, 2024-01-31")


class Aggregation(BaseModel):
    """One result column: `function` of `column`, named `function_column` (plain `count` when
    no column is given: the number of rows)."""

    model_config = _STRICT
    function: Literal[AGGREGATIONS]
    column: str | None = None


class SortKey(BaseModel):
    model_config = _STRICT
    column: str = Field(description="a group_by column or an aggregation's name")
    descending: bool = False


def as_table(data: Any) -> tuple[pd.DataFrame, list[str]]:
    """The table the tools read, and which of its columns came from the index: a Series is one
    column; index levels that carry meaning (a named or non-range index) become columns too;
    every column is named by a string."""
    if isinstance(data, pd.Series):
        data = data.to_frame(name="value" if data.name is None else data.name)
    elif not isinstance(data, pd.DataFrame):
        raise TypeError(f"dataframe() takes a pandas DataFrame or Series, not "
                        f"{type(data).__name__}")
    index, from_index = data.index, []
    if not (isinstance(index, pd.RangeIndex) and index.name is None):
        names = [str(name) if name is not None else "index" if index.nlevels == 1
                 else f"level_{i}" for i, name in enumerate(index.names)]
        if not set(names) & set(map(_label_text, data.columns)):  # else the index stays out
            data, from_index = data.reset_index(names=names), names
    labels = [_label_text(label) for label in data.columns]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"Columns must have distinct names for a model to ask about them: "
                         f"{', '.join(map(repr, repeated))} name more than one column; rename them")
    return data.set_axis(labels, axis=1), from_index


def _label_text(label: Any) -> str:
    return " / ".join(map(str, label)) if isinstance(label, tuple) else str(label)


def column_kind(series: pd.Series) -> str:
    """What the language can do with a column: number, boolean, datetime, text, category or
    other (timedeltas, periods, mixed objects: equality and null tests only)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype) and (dtype != object or pd.api.types.infer_dtype(
            series, skipna=True) in ("string", "empty")):
        return "text"
    return "other"


def column_problems(table: pd.DataFrame, names: list[str] | None, where: str) -> list[str]:
    """A line for each name that is not a column of `table`, listing the columns."""
    unknown = [name for name in names or () if name not in table.columns]
    return [f"{where}: no column {name!r}; {_listed_columns(table)}" for name in unknown]


def _listed_columns(table: pd.DataFrame) -> str:
    names = list(table.columns)
    shown = ", ".join(names[:_NAMES_LISTED])
    more = len(names) - _NAMES_LISTED
    return f"the columns are {shown}" + (f" and {more} more" if more > 0 else "")


@dataclass
class QueryResult:
    """The rows a query returns, before the limit; `aggregated` when they are groups or
    aggregates rather than rows of the table."""

    frame: pd.DataFrame
    aggregated: bool


def run_query(table: pd.DataFrame, *, filters: list[Filter], group_by: list[str],
              aggregations: list[Aggregation], columns: list[str],
              sort: list[SortKey]) -> QueryResult:
    """Check the whole query (every problem, at once), then run it on `table`."""
    sizes = {"filters": filters, "group_by": group_by, "aggregations": aggregations,
             "sort": sort}
    too_long = [f"{part}: at most {most}" for part, most in MOST_PARTS.items()
                if len(sizes[part]) > most]
    if too_long:
        raise QueryError(problems_line(too_long))
    problems, masks = [], []
    for number, condition in enumerate(filters):
        mask = _mask(table, condition, f"filters[{number}]", problems)
        if mask is not None:
            masks.append(mask)
    problems += column_problems(table, group_by, "group_by")
    problems += column_problems(table, columns, "columns")
    aggregated = bool(group_by or aggregations)
    if aggregated and columns:
        problems.append("columns: applies to rows only; with group_by or aggregations the "
                        "result holds the groups and the aggregations")
    if aggregated and not aggregations:
        aggregations = [Aggregation(function="count")]
    named = _aggregation_names(table, aggregations, problems)
    output = ([*group_by, *named] if aggregated else columns or list(table.columns))
    for number, key in enumerate(sort):
        if key.column not in output:
            problems.append(f"sort[{number}].column: {key.column!r} is not in the result; sort "
                            f"by one of {', '.join(output[:_NAMES_LISTED])}")
    if problems:
        raise QueryError(problems_line(problems))
    rows = table
    if masks:
        keep = masks[0]
        for mask in masks[1:]:
            keep = keep & mask
        rows = table[keep]
    try:
        if aggregated:
            rows = _aggregate(rows, group_by, named)
        elif columns:
            rows = rows[columns]
        if sort:
            rows = rows.sort_values([key.column for key in sort], kind="stable",
                                    na_position="last",
                                    ascending=[not key.descending for key in sort])
    except TypeError as exc:  # values of an "other" column: sets, mixed objects
        raise QueryError(f"{exc}: these values cannot be grouped, aggregated or sorted; count "
                         "them, or filter them with ==, in or is null") from None
    return QueryResult(rows, aggregated)


def _aggregation_names(table: pd.DataFrame, aggregations: list[Aggregation],
                       problems: list[str]) -> dict[str, tuple[str | None, str]]:
    """{result column: (table column or None, function)}, recording what does not apply."""
    named: dict[str, tuple[str | None, str]] = {}
    for number, aggregation in enumerate(aggregations):
        where = f"aggregations[{number}]"
        function, column = aggregation.function, aggregation.column
        if column is None:
            if function != "count":
                problems.append(f"{where}: {function} needs a column")
                continue
        elif column not in table.columns:
            problems += column_problems(table, [column], f"{where}.column")
            continue
        else:
            kind = column_kind(table[column])
            allowed = _AGGREGATION_KINDS.get(function)
            if allowed is not None and kind not in allowed:
                problems.append(f"{where}: {function} does not apply to {column!r} ({kind}); "
                                f"it applies to {' or '.join(allowed)} columns, count and "
                                f"nunique to any")
                continue
        name = function if column is None else f"{function}_{column}"
        if name in named:
            problems.append(f"{where}: {name} is asked for twice")
        named[name] = (column, function)
    return named


def _aggregate(rows: pd.DataFrame, group_by: list[str],
               named: dict[str, tuple[str | None, str]]) -> pd.DataFrame:
    if not group_by:
        return pd.DataFrame({name: [len(rows) if column is None else rows[column].agg(function)]
                             for name, (column, function) in named.items()})
    grouped = rows.groupby(group_by, dropna=False, observed=True, sort=True)
    return grouped.agg(**{name: (group_by[0], "size") if column is None else (column, function)
                          for name, (column, function) in named.items()}).reset_index()


def _mask(table: pd.DataFrame, condition: Filter, where: str,
          problems: list[str]) -> pd.Series | None:
    """The rows `condition` keeps, or None (and a problem recorded) when it cannot apply."""
    if condition.column not in table.columns:
        problems += column_problems(table, [condition.column], f"{where}.column")
        return None
    series, op = table[condition.column], condition.op
    kind = column_kind(series)
    refusal = _operator_problem(series, kind, op)
    if refusal is None:
        try:
            operand = _operand(series, kind, op, condition.value)
        except ValueError as exc:
            refusal = str(exc)
    if refusal is not None:
        problems.append(f"{where}: {refusal}")
        return None
    if op in _NULL_OPERATORS:
        return series.isna() if op == "is null" else series.notna()
    if op in _TEXT_OPERATORS:
        text = series.astype("string").str.lower()
        matched = (text.str.contains(operand.lower(), regex=False) if op == "contains"
                   else text.str.startswith(operand.lower()))
    elif op in _LIST_OPERATORS:
        matched = series.isin(operand) if op == "in" else ~series.isin(operand)
    elif op in _ORDERED:
        matched = _ORDERED[op](series, operand)
    else:
        matched = series == operand if op == "==" else series != operand
    return (matched.fillna(False) & series.notna()).astype(bool)  # missing matches no comparison


def _operator_problem(series: pd.Series, kind: str, op: str) -> str | None:
    name = series.name
    if op in _ORDERED and kind not in _ORDERED_KINDS and not (
            kind == "category" and series.cat.ordered):
        return (f"{op!r} compares order, which {name!r} ({kind}) does not have; use ==, !=, in "
                f"or not in")
    if op in _TEXT_OPERATORS and kind not in ("text", "category"):
        return f"{op!r} applies to text columns; {name!r} is {kind}: use ==, in or a comparison"
    return None


def _operand(series: pd.Series, kind: str, op: str, value: Any) -> Any:
    """`value` as the column's kind compares it; ValueError says what should have come."""
    if op in _NULL_OPERATORS:
        if value is not None:
            raise ValueError(f"{op!r} takes no value")
        return None
    if op in _LIST_OPERATORS:
        if not isinstance(value, list) or not value:
            raise ValueError(f"{op!r} takes a list of values, e.g. [\"a\", \"b\"]")
        if len(value) > MOST_VALUES:
            raise ValueError(f"{op!r} takes at most {MOST_VALUES} values")
        return [_scalar(series, kind, item) for item in value]
    if op in _TEXT_OPERATORS and not isinstance(value, str):
        raise ValueError(f"{op!r} takes text, not {_kind_of(value)}")
    operand = _scalar(series, kind, value)
    if op in _ORDERED and kind == "category" and operand not in series.cat.categories:
        raise ValueError(f"{series.name!r} is an ordered category: compare it with one of its "
                         f"categories ({', '.join(map(str, series.cat.categories[:20]))})")
    return operand


def _scalar(series: pd.Series, kind: str, value: Any) -> Any:
    name = series.name
    if value is None:
        raise ValueError("a value is needed (to find missing values use op 'is null')")
    if isinstance(value, (list, dict)):
        raise ValueError(f"expected a single value, got {_kind_of(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number (to find missing values use op "
                         "'is null')")
    if isinstance(value, str) and len(value) > LONGEST_TEXT:
        raise ValueError(f"values are at most {LONGEST_TEXT} characters")
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "number" and not is_number:
        raise ValueError(f"{name!r} holds numbers: compare it with a number, not "
                         f"{_kind_of(value)}")
    if kind == "boolean" and not isinstance(value, bool):
        raise ValueError(f"{name!r} holds true/false: compare it with true or false")
    if kind == "text" and not isinstance(value, str):
        raise ValueError(f"{name!r} holds text: compare it with a string, not {_kind_of(value)}")
    if kind == "datetime":
        return _timestamp(series, value)
    return value


def _timestamp(series: pd.Series, value: Any) -> pd.Timestamp:
    name = series.name
    try:
        moment = pd.Timestamp(datetime.fromisoformat(value))
    except (TypeError, ValueError):
        raise ValueError(f"{name!r} holds dates: give an ISO date such as 2024-01-31 or "
                         f"2024-01-31T09:30, not {value!r}") from None
    zone = series.dt.tz
    if zone is not None and moment.tzinfo is None:
        return moment.tz_localize(zone)
    if zone is None and moment.tzinfo is not None:
        raise ValueError(f"{name!r} has no time zone: give the date without an offset")
    return moment


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return "a list" if isinstance(value, list) else "an object"
