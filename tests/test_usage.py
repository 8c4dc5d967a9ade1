"""Session usage accounting: sums by model, totals, reset, and observers for a live view."""

from llm_notebook.usage import SESSION_HEADERS, SessionUsage, answer_row


def summary(model, input, output, duration_ms, details=None):
    return {"model": model, "usage": {"input": input, "output": output, "details": details},
            "duration_ms": duration_ms}


def test_sums_by_model_with_totals_and_observers():
    usage, seen = SessionUsage(), []
    unsubscribe = usage.subscribe(lambda account: seen.append(account.totals().responses))
    usage.record(summary("a", 10, 20, 1000, {"cached_tokens": 4}))
    usage.record(summary("a", 1, None, 500, {"cached_tokens": 1, "note": "x"}))
    usage.record(summary("b", None, 8, 2000))
    assert seen == [1, 2, 3]
    rows = usage.rows()
    assert len(rows[0]) == len(SESSION_HEADERS)
    assert rows[0] == ("a", "2", "11", "20", "cached_tokens 5", "1.50 s", "13.3")
    assert rows[1] == ("b", "1", "0", "8", "", "2.00 s", "4.0")
    assert rows[2] == ("total", "3", "11", "28", "cached_tokens 5", "3.50 s", "8.0")
    unsubscribe()
    usage.reset()
    assert usage.rows() == [] and seen == [1, 2, 3]


def test_answer_row_leaves_unknown_counts_blank():
    assert answer_row(summary("m", None, None, 0)) == ("m", "", "", "", "0.00 s", "")
    assert answer_row(summary("m", 1200, 300, 1500, {"reasoning": 7})) == (
        "m", "1,200", "300", "reasoning 7", "1.50 s", "200.0")
