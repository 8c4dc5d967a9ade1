"""The answer cache, cost and budgets in a real kernel, against the loopback OpenAI server.

What a user checks: a notebook run again (even after a kernel restart) answers from the cache
and the server hears nothing; a replayed answer says so under it and in `%llm usage`; "only"
mode names the cell that missed; `--refresh` asks again; `--dry-run` and a budget send nothing;
the cost column shows dollars for a priced model and "—" for one with no price.
"""

from __future__ import annotations

import contextlib
import re

import pytest

from tests.magics_kernel import KernelNotebook, offline_env, table_rows, unescaped
from tests.support.fake_llm_server import openai_events, openai_usage, sse, stream_reply

SETUP = """
%load_ext llm_notebook
import llm_notebook
"""
ANSWER = "Hello from the fake server."


def new_kernel(workdir, server) -> KernelNotebook:
    """A kernel as a user starts one: the user directory under `workdir` (kept between kernels),
    the OpenAI models pointed at `server`, the cache mode left to its default."""
    notebook = KernelNotebook(workdir, env=offline_env(
        workdir, OPENAI_BASE_URL=server.openai_url, OPENAI_API_KEY="sk-replay-test",
        LLM_NOTEBOOK_CACHE=""))
    notebook.run(SETUP)
    return notebook


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, fake_llm_server):
    with contextlib.closing(new_kernel(tmp_path_factory.mktemp("replay"), fake_llm_server)) as nb:
        yield nb


@pytest.fixture
def server(fake_llm_server, kernel):
    fake_llm_server.reset()
    kernel.run('%config LLMMagics.cache = "auto"\n%config LLMMagics.budget = None')
    return fake_llm_server


def answer_of(run) -> dict:
    [output] = [o for o in run.displays()
                if "response_id" in o.get("metadata", {}).get("llm_notebook", {})]
    return output


def usage_of(run) -> str:
    return run.data("text/markdown")[-1]


def chat_requests(server) -> list:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def test_a_notebook_run_again_after_a_kernel_restart_replays_and_sends_nothing(
        tmp_path, fake_llm_server):
    fake_llm_server.reset()
    cell = "%%llm -m gpt-4o-mini\nWhat does the fake server say?"
    with contextlib.closing(new_kernel(tmp_path, fake_llm_server)) as first:
        asked = first.run(cell)
    assert len(chat_requests(fake_llm_server)) == 1
    asked_meta = answer_of(asked)["metadata"]["llm_notebook"]
    assert asked_meta["replayed"] is None and asked_meta["resolved_model"] == "gpt-4o-mini"
    assert re.fullmatch(r"[0-9a-f]{16,}", asked_meta["cache_key"]), asked_meta["cache_key"]
    assert asked_meta["cost"] > 0  # gpt-4o-mini has a price: the answer says what it cost

    with contextlib.closing(new_kernel(tmp_path, fake_llm_server)) as second:
        replayed = second.run(cell)
        session = table_rows(second.run("%llm usage").data("text/markdown")[0])
    assert len(chat_requests(fake_llm_server)) == 1, "the second run asked the server"
    answer = answer_of(replayed)
    assert answer["data"]["text/markdown"] == answer_of(asked)["data"]["text/markdown"]
    meta = answer["metadata"]["llm_notebook"]
    assert meta["cache_key"] == asked_meta["cache_key"]
    assert meta["replayed"]["recorded"] and meta["replayed"]["saved_tokens"] == 16
    assert meta["cost"] == 0
    # shown whole at once: the answer's display is never updated piece by piece
    assert not [m for m in replayed.display_messages() if m["msg_type"] == "update_display_data"]
    usage = usage_of(replayed)
    assert table_rows(usage)["gpt-4o-mini"][3] == "replayed"
    line = unescaped(usage.splitlines()[-1])
    assert re.fullmatch(r"_replayed from \d{4}-\d\d-\d\d \d\d:\d\d · saved 16 tokens, \$[0-9.]+_",
                        line), line
    # the session table counts it apart: one response, replayed, nothing spent, what it saved
    row = session["gpt-4o-mini"]
    assert row[0] == "1" and row[1:3] == ["0", "0"]
    assert row[-3] == "$0" and row[-2] == "1" and row[-1].startswith("16 tokens, $")


def test_cache_off_asks_every_time_and_the_trait_sets_the_setting(kernel, server):
    kernel.run('%config LLMMagics.cache = "off"')
    assert kernel.run("print(llm_notebook.settings.cache)").stream() == "off\n"
    for _ in range(2):
        kernel.run("%llm -m gpt-4o-mini asked twice with the cache off")
    assert len(chat_requests(server)) == 2
    refused = kernel.run('%config LLMMagics.cache = "sometimes"')  # %config says it on stderr
    assert "the cache mode 'sometimes' does not exist" in refused.stream("stderr")
    assert kernel.run("print(llm_notebook.settings.cache)").stream() == "off\n"


def test_only_mode_answers_what_is_stored_and_a_miss_names_the_cell(kernel, server):
    kernel.run("%llm -m gpt-4o-mini stored before going offline")
    kernel.run('%config LLMMagics.cache = "only"')
    kernel.run("%llm -m gpt-4o-mini stored before going offline")
    missed = kernel.run("%llm -m gpt-4o-mini never asked before", expect_error=True)
    assert len(chat_requests(server)) == 1
    [line] = missed.error["traceback"]
    count = missed.reply["content"]["execution_count"]
    assert line == (f'CacheMiss: cell [{count}] has no stored answer and the cache mode is "only", '
                    'which never asks a model: run %config LLMMagics.cache = "replay" to ask it, '
                    "or run the cell again with --refresh")


def test_refresh_asks_again_and_the_cell_replays_the_new_answer(kernel, server):
    cell = "%%llm -m gpt-4o-mini{flag}\nrefresh me"
    kernel.run(cell.format(flag=""))
    server.queue(stream_reply(sse(openai_events(["A ", "newer ", "answer."],
                                                usage=openai_usage()))))
    refreshed = kernel.run(cell.format(flag=" --refresh"))
    again = kernel.run(cell.format(flag=""))
    assert len(chat_requests(server)) == 2
    assert answer_of(refreshed)["data"]["text/markdown"] == "A newer answer."
    assert answer_of(refreshed)["metadata"]["llm_notebook"]["replayed"] is None
    assert answer_of(again)["data"]["text/markdown"] == "A newer answer."
    assert answer_of(again)["metadata"]["llm_notebook"]["replayed"] is not None


def test_dry_run_shows_the_request_and_its_cost_and_sends_nothing(kernel, server):
    run = kernel.run("%%llm -m gpt-4o-mini -s 'Be brief.' --dry-run\nWhat would you say?")
    assert server.requests == []
    [shown] = map(unescaped, run.data("text/markdown"))
    assert shown.startswith("**Preview** (nothing sent): gpt-4o-mini: ")
    assert "(estimated)" in shown and "about $" in shown
    assert "**system**" in shown and "Be brief." in shown and "What would you say?" in shown
    # the cell's value is the preview: its messages are the system prompt and the cell's text
    assert kernel.run("print(len(Out[%d].messages))" % run.reply["content"]["execution_count"]
                      ).stream() == "2\n"


def test_a_budget_refuses_before_sending_in_one_line(kernel, server):
    kernel.run("%config LLMMagics.budget = 0.0000001")
    assert kernel.run("print(llm_notebook.settings.budget)").stream() == "1e-07\n"
    refused = kernel.run("%llm -m gpt-4o-mini a question the budget cannot pay for",
                         expect_error=True)
    assert server.requests == []
    [line] = refused.error["traceback"]
    assert line.startswith("BudgetExceeded: Not sent: this request to 'gpt-4o-mini'"), line
    negative = kernel.run("%config LLMMagics.budget = -1")
    assert "the budget is dollars, 0 or more" in negative.stream("stderr")


def test_cost_columns_show_dollars_for_a_priced_model_and_a_dash_otherwise(kernel, server):
    kernel.run("%llm usage --reset")
    priced = table_rows(usage_of(kernel.run("%llm -m gpt-4o-mini what does it cost")))
    unpriced = table_rows(usage_of(kernel.run("%llm -m echo and this")))
    assert re.fullmatch(r"\$0\.0\d+", priced["gpt-4o-mini"][-1]), priced
    assert unpriced["echo"][-1] == "—"
    session = kernel.run("%llm usage").data("text/markdown")[0]
    assert session.splitlines()[0].endswith("| cost | replayed | saved |")
    rows = table_rows(session)
    assert rows["gpt-4o-mini"][-3] == priced["gpt-4o-mini"][-1] and rows["echo"][-3] == "—"
    assert rows["total"][-3] == priced["gpt-4o-mini"][-1] + " + unknown"


def test_side_by_side_answers_carry_their_keys_and_costs_and_replay_together(kernel, server):
    cell = "%%llm -m gpt-4o-mini -m echo\nthe same question to both"
    first, again = kernel.run(cell), kernel.run(cell)
    assert len(chat_requests(server)) == 1
    columns, table = first.displays()
    answers = columns["metadata"]["llm_notebook"]["answers"]
    assert [a["model"] for a in answers] == ["gpt-4o-mini", "echo"]
    assert all(a["cache_key"] for a in answers) and answers[0]["cost"] > 0
    assert answers[1]["cost"] is None  # no price is known for echo: never a guessed $0
    rows = table_rows(table["data"]["text/markdown"])
    assert rows["gpt-4o-mini"][-1].startswith("$") and rows["echo"][-1] == "—"
    replayed = again.displays()[0]["metadata"]["llm_notebook"]["answers"]
    assert [a["cache_key"] for a in replayed] == [a["cache_key"] for a in answers]
    assert all(a["replayed"] is not None for a in replayed)
    records = again.displays()[1]["metadata"]["llm_notebook"]["comparison"]
    assert [r["replayed"] for r in records] == [True, True]


def test_a_chain_records_each_rounds_key_and_replays_round_by_round(kernel, server):
    kernel.run('def lookup(q: str) -> str:\n    """Look q up."""\n    return "found " + q')
    script = '{"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}}]}'
    cell = f"%%llm -m echo -T lookup\nfind it {script}"
    first, again = kernel.run(cell), kernel.run(cell)

    def chain_meta(run):
        [output] = [o for o in run.displays() if "rounds" in o["metadata"].get("llm_notebook", {})]
        return output["metadata"]["llm_notebook"]

    rounds = chain_meta(first)["rounds"]
    assert len(rounds) == 2 and all(r["cache_key"] for r in rounds)
    assert [r["replayed"] for r in rounds] == [None, None]
    replayed = chain_meta(again)["rounds"]
    assert [r["cache_key"] for r in replayed] == [r["cache_key"] for r in rounds]
    assert all(r["replayed"] is not None for r in replayed)
    assert "replayed from" in unescaped(usage_of(again))
