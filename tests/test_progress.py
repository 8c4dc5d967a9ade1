"""The progress display of `map`: its final line says how the rows were answered and the cost.

Shown here without a kernel (IPython's display functions print where no frontend listens), as
the terminal bar and the notebook bar would end.
"""

from __future__ import annotations

from decimal import Decimal

from llm_notebook.notebook.progress import NotebookProgress, TerminalProgress, outcome_line
from llm_notebook.prices import Cost


def test_the_outcome_line_counts_replayed_and_sent_rows_and_their_cost():
    assert outcome_line(1200, 800, Cost(Decimal("0.41"))) == "1,200 replayed, 800 sent · $0.41"
    assert outcome_line(3, 0, Cost(None, "no price")) == "3 replayed, 0 sent · cost unknown"
    assert outcome_line(0, 5) == "0 replayed, 5 sent"


def test_the_final_summary_ends_with_the_outcome():
    bar = NotebookProgress(2, "echo")
    bar.update(2, 0)
    final = bar.summary(final=True, outcome=outcome_line(1, 1, Cost(None, "no price")))
    assert final.startswith("echo: 2 of 2 prompts done in ")
    assert final.endswith(" · 1 replayed, 1 sent · cost unknown")
    stopped = bar.summary(interrupted=True, outcome="0 replayed, 1 sent")
    assert stopped.endswith(" · 0 replayed, 1 sent")


def test_the_terminal_bar_ends_with_the_outcome(capsys):
    bar = TerminalProgress(1, "echo")
    bar.update(1, 0)
    bar.close(outcome="1 replayed, 0 sent · —")
    assert "1 replayed, 0 sent · —" in capsys.readouterr().err
