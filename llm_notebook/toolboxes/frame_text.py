"""A DataFrame as text a model reads, within a budget of rows and characters. What is left out
is said in a note, with what to ask for instead, so a model knows the answer is partial."""

from __future__ import annotations

import pandas as pd

__all__ = ["capped_text"]

#: Columns shown before the middle ones are left out.
MOST_COLUMNS = 30
#: Characters of one value shown before it is cut.
LONGEST_VALUE = 80


def capped_text(frame: pd.DataFrame, *, max_rows: int, max_chars: int, narrower: str,
                total: int | None = None, index: bool = True) -> str:
    """`frame`'s first rows as an aligned table, with its notes at most `max_chars` characters
    and `max_rows` rows; `total` is how many rows there were before a limit (default: all of
    `frame`), and `narrower` tells the model how to ask for fewer."""
    total = len(frame) if total is None else total
    candidates = min(len(frame), max_rows)
    long_values = _has_long_values(frame.head(candidates))
    room = len(_notes(frame, candidates, total, narrower, long_values, max_chars, worst=True))
    rows = _fitting_rows(frame, candidates, max_chars - room - 1, index)
    notes = _notes(frame, rows, total, narrower, long_values and rows > 0, max_chars)
    return "\n".join(part for part in (_rendered(frame, rows, index) if rows else "", notes)
                     if part)


def _notes(frame: pd.DataFrame, rows: int, total: int, narrower: str, long_values: bool,
           max_chars: int, worst: bool = False) -> str:
    """What was left out, one note a line; `worst` gives every note that may be needed, to
    keep room for them."""
    notes = []
    if worst or rows < total:
        notes.append(f"{rows} of {total} rows shown; {narrower}")
    if frame.shape[1] > MOST_COLUMNS:
        notes.append(f"{MOST_COLUMNS} of {frame.shape[1]} columns shown (the middle ones are "
                     "left out): name the columns you need")
    if long_values:
        notes.append(f"values longer than {LONGEST_VALUE} characters are cut (...)")
    if worst or (not rows and len(frame)):
        notes.append(f"not one row fits in {max_chars} characters: ask for fewer columns")
    return "\n".join(f"({note})" for note in notes)


def _rendered(frame: pd.DataFrame, rows: int, index: bool) -> str:
    return frame.head(rows).to_string(index=index, max_colwidth=LONGEST_VALUE,
                                      max_cols=MOST_COLUMNS, show_dimensions=False)


def _fitting_rows(frame: pd.DataFrame, rows: int, budget: int, index: bool) -> int:
    """The most of the first `rows` rows whose table fits `budget` characters."""
    if not rows or len(_rendered(frame, rows, index)) <= budget:
        return rows
    fits, too_many = 0, rows  # a table grows with its rows: bisect
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        if len(_rendered(frame, middle, index)) <= budget:
            fits = middle
        else:
            too_many = middle
    return fits


def _has_long_values(frame: pd.DataFrame) -> bool:
    return any(len(str(value)) > LONGEST_VALUE for value in frame.to_numpy(dtype=object).ravel())
