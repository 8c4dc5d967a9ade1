"""Toolboxes the package provides, made by functions that import their heavy parts (pandas,
pydantic) only when called:

    chain = model.chain("Which region declined most, and why?",
                        tools=[llm_notebook.tools.dataframe(sales, name="sales")])
"""

from __future__ import annotations

from typing import Any

__all__ = ["dataframe"]


def dataframe(data: Any, name: str = "df", *, max_rows: int = 50, max_chars: int = 4000):
    """A read-only toolbox over a pandas DataFrame (or Series, as one column), so a model
    answers questions about it by inspecting it: tools `<name>_schema`, `_head`, `_sample`,
    `_describe`, `_value_counts` and `_query` (filters, group_by, aggregations, sort and limit
    written as JSON and checked against the columns, never run as code). Every result is at
    most `max_rows` rows and `max_chars` characters, with a note on what was left out."""
    from .frame_toolbox import DataFrameToolbox

    return DataFrameToolbox(data, name, max_rows=max_rows, max_chars=max_chars)
