"""The DataFrame toolbox: read-only tools a model calls to inspect one table (its schema, a
few rows, statistics, value counts, and filtered or grouped aggregates) instead of reading the
whole table pasted into its prompt. Method docstrings are what the model reads."""

from __future__ import annotations

import functools
import re
from typing import Any

import pandas as pd
from pydantic import ConfigDict, ValidationError, validate_call

from ..schemas import problems_line, validation_problems
from ..tools import Toolbox
from .frame_query import (Aggregation, Filter, QueryError, SortKey, as_table, column_kind,
                          column_problems, run_query)
from .frame_text import capped_text

__all__ = ["DataFrameToolbox"]

#: A name that keeps every tool name (`name_value_counts`) valid for every provider.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,49}")
_CATEGORIES_LISTED = 12


def _model_arguments(method):
    """Check a tool's arguments against its annotations (strictly: JSON types, no coercion),
    refusing what does not fit with one line per problem."""
    validated = validate_call(config=ConfigDict(strict=True))(method)

    @functools.wraps(method)
    def checked(*args: Any, **kwargs: Any) -> str:
        try:
            return validated(*args, **kwargs)
        except ValidationError as exc:
            raise QueryError(problems_line(validation_problems(exc))) from None

    return checked


class DataFrameToolbox(Toolbox):
    """Tools over one table, named `<name>_schema`, `<name>_head`, ... The table is the data as
    it was when the toolbox was made; no tool changes it."""

    def __init__(self, data: Any, name: str = "df", *, max_rows: int = 50,
                 max_chars: int = 4000) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"name must be letters, digits and _ (at most 50, not starting "
                             f"with a digit), as tool names are: got {name!r}")
        if not 1 <= max_rows <= 1000:
            raise ValueError(f"max_rows must be between 1 and 1000 (got {max_rows})")
        if max_chars < 1000:
            raise ValueError(f"max_chars must be at least 1000 (got {max_chars})")
        self.name = name
        self.max_rows = max_rows
        self.max_chars = max_chars
        self._table, self._index_columns = as_table(data)

    def __repr__(self) -> str:
        rows, columns = self._table.shape
        return f"<DataFrameToolbox {self.name!r}: {rows} rows, {columns} columns>"

    @_model_arguments
    def schema(self) -> str:
        """The table's size and columns: each column's dtype, its kind (what filters and
        aggregations apply to it: number, boolean, datetime, text, category or other) and how
        many values are missing. Call this first."""
        table = self._table
        lines = pd.DataFrame(
            [(name, str(table[name].dtype), column_kind(table[name]),
              int(table[name].isna().sum()), self._column_note(name)) for name in table.columns],
            columns=["column", "dtype", "kind", "missing", "note"])
        return self._text(lines, head=f"{self.name}: {len(table)} rows, {table.shape[1]} columns",
                          index=False, narrower="ask describe about fewer columns")

    def _column_note(self, name: str) -> str:
        series = self._table[name]
        note = "from the index" if name in self._index_columns else ""
        if isinstance(series.dtype, pd.CategoricalDtype):
            categories = list(map(str, series.cat.categories[:_CATEGORIES_LISTED]))
            more = len(series.cat.categories) - len(categories)
            joined = (" < " if series.cat.ordered else ", ").join(categories)
            listed = f"{'ordered ' if series.cat.ordered else ''}categories: {joined}" + (
                f" and {more} more" if more > 0 else "")
            note = f"{note}; {listed}" if note else listed
        return note

    @_model_arguments
    def head(self, n: int = 5, columns: list[str] | None = None) -> str:
        """The first n rows (of the named columns, or all)."""
        self._check_count("n", n)
        return self._text(self._columns(columns).head(n),
                          narrower="ask for fewer rows or name fewer columns")

    @_model_arguments
    def sample(self, n: int = 5, columns: list[str] | None = None, seed: int = 0) -> str:
        """n rows picked at random (the same rows for the same seed)."""
        self._check_count("n", n)
        table = self._columns(columns)
        if not 0 <= seed < 2 ** 32:
            raise QueryError(f"seed must be between 0 and {2 ** 32 - 1}")
        return self._text(table.sample(n=min(n, len(table)), random_state=seed),
                          narrower="ask for fewer rows or name fewer columns")

    @_model_arguments
    def describe(self, columns: list[str] | None = None) -> str:
        """Statistics of each column (of the named ones, or all): count, mean, spread and
        quartiles of numbers; first and last of dates; distinct values and the most common one
        of text, categories and booleans."""
        table = self._columns(columns)
        kinds = {name: column_kind(table[name]) for name in table.columns}
        numbers = [name for name, kind in kinds.items() if kind == "number"]
        dates = [name for name, kind in kinds.items() if kind == "datetime"]
        others = [name for name in table.columns if name not in numbers and name not in dates]
        sections = []
        if numbers:
            sections.append(("numbers", table[numbers].describe().T))
        if dates:
            sections.append(("dates", pd.DataFrame(
                {"count": table[dates].count(), "min": table[dates].min(),
                 "max": table[dates].max()})))
        if others:
            sections.append(("text, categories and others",
                             pd.DataFrame([_counted(table[name]) for name in others],
                                          index=others)))
        if not sections:
            return f"{self.name} has no columns"
        budget = self.max_chars // len(sections) - 2  # two line breaks between sections
        return "\n\n".join(self._text(frame, head=f"{title}:", max_chars=budget,
                                      narrower="name fewer columns")
                           for title, frame in sections)

    @_model_arguments
    def value_counts(self, column: str, limit: int = 20) -> str:
        """How often each value of a column occurs, most common first, with missing values
        counted too."""
        self._check_count("limit", limit)
        problems = column_problems(self._table, [column], "column")
        if problems:
            raise QueryError(problems[0])
        series = self._table[column]
        counts = series.value_counts(dropna=False)
        frame = pd.DataFrame({column: counts.index, "count": counts.to_numpy(),
                              "share": (counts.to_numpy() / max(len(series), 1)).round(4)})
        rest = int(counts.iloc[limit:].sum())
        return self._text(frame.head(limit), total=len(frame), index=False,
                          narrower=f"the other values cover {rest} rows: raise limit (at most "
                                   f"{self.max_rows}) or filter with {self.name}_query")

    @_model_arguments
    def query(self, filters: list[Filter] | None = None, group_by: list[str] | None = None,
              aggregations: list[Aggregation] | None = None, columns: list[str] | None = None,
              sort: list[SortKey] | None = None, limit: int | None = None) -> str:
        """Rows or aggregates of the table, described as data (never code):
        filters (combined with AND) keep rows; group_by with aggregations gives one row per
        group (count of rows when no aggregation is given); aggregations without group_by
        give one row for the whole (filtered) table. Aggregations are named function_column,
        or count for the number of rows; sort by those names or the group_by columns. Without
        aggregations, the matching rows (of the named columns) are listed. limit: at most the
        row cap (50 unless the toolbox was made with another).
        Example: {"filters": [{"column": "year", "op": "==", "value": 2024}],
        "group_by": ["region"], "aggregations": [{"function": "sum", "column": "sales"}],
        "sort": [{"column": "sum_sales", "descending": true}], "limit": 5}"""
        if limit is not None:
            self._check_count("limit", limit)
        result = run_query(self._table, filters=filters or [], group_by=group_by or [],
                           aggregations=aggregations or [], columns=columns or [],
                           sort=sort or [])
        frame = result.frame
        if result.aggregated:
            head = (f"{len(frame)} groups" if group_by else "aggregates") + (
                " of the rows that match" if filters else "")
        else:
            head = f"{len(frame)} of {len(self._table)} rows match"
        if frame.empty:
            return head
        return self._text(frame.head(limit or self.max_rows), head=head, total=len(frame),
                          index=not result.aggregated,
                          narrower="add filters, group by fewer columns, or sort and set a "
                                   "smaller limit")

    def _columns(self, columns: list[str] | None) -> pd.DataFrame:
        problems = column_problems(self._table, columns, "columns")
        if problems:
            raise QueryError("; ".join(problems))
        return self._table[columns] if columns else self._table

    def _check_count(self, name: str, value: int) -> None:
        if not 1 <= value <= self.max_rows:
            raise QueryError(f"{name} must be between 1 and {self.max_rows} (got {value}): "
                             "ask for fewer rows, or aggregate")

    def _text(self, frame: pd.DataFrame, *, narrower: str, head: str | None = None,
              total: int | None = None, index: bool = True, max_chars: int | None = None) -> str:
        """`frame` capped, under a `head` line; all of it at most `max_chars` (default: the
        toolbox's) characters."""
        budget = (max_chars or self.max_chars) - (len(head) + 1 if head else 0)
        table = capped_text(frame, max_rows=self.max_rows, max_chars=budget, total=total,
                            index=index, narrower=narrower)
        return f"{head}\n{table}" if head else table


def _counted(series: pd.Series) -> dict[str, Any]:
    """count, distinct values, the most common value and how often it occurs."""
    counts = series.value_counts()
    top = counts.index[0] if len(counts) else None
    return {"count": int(series.count()), "unique": len(counts), "top": top,
            "freq": int(counts.iloc[0]) if len(counts) else 0}
