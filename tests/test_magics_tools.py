"""%%llm -T in a real kernel: tool calls shown as blocks while the chain runs, the usage of the
chain, --chain-limit, an interrupt mid-chain, and --approve: Allow, Deny and Allow all clicked in
the approval widget by a second frontend (as JupyterLab is one), and the line a headless run gets.
"""

from __future__ import annotations

import json
import queue
import time

import pytest

from tests.magics_kernel import KernelNotebook, offline_kernel

SETUP = '''
%load_ext llm_notebook
import json, threading
import llm_notebook

ran = []
release = threading.Event()

def lookup(q: str) -> str:
    """Look q up."""
    ran.append(q)
    return f"found <b>{q}</b>"

def stuck(q: str) -> str:
    """Waits until released."""
    release.wait(60)
    return "released"

class Shelf(llm_notebook.Toolbox):
    def count(self) -> int:
        """How many books."""
        return 3

shelf = Shelf()
not_a_tool = 42
'''


def script(*queries: str, name: str = "lookup") -> str:
    return json.dumps({"tool_calls": [{"name": name, "arguments": {"q": q}} for q in queries]})


kernel = offline_kernel(SETUP)


def answer_of(run) -> dict:
    [output] = [o for o in run.displays() if "tool_calls" in o["metadata"].get("llm_notebook", {})]
    return output


def table_row(run) -> list[str]:
    [table] = [d for d in run.data("text/markdown") if d.startswith("| model |")]
    return [cell.strip() for cell in table.splitlines()[2].split("|")[1:-1]]


def one_line_error(run) -> str:
    [line] = run.error["traceback"]
    assert "Traceback" not in line
    return line


def test_calls_show_as_blocks_while_the_chain_runs_then_the_answer_and_summed_usage(kernel):
    kernel.run("ran.clear()")
    run = kernel.run(f"%%llm -m echo -T lookup\nFind it {script('x<y')}")
    assert run.error is None and run.stream("stderr") == ""
    updates = [m["content"]["data"].get("text/markdown", "") for m in run.display_messages()]
    running = [u for u in updates if "<details>" in u and "running…" in u]
    assert running and "streaming" in running[0]  # the block, shown before the tool returned
    output = answer_of(run)
    final = output["data"]["text/markdown"]
    assert final.count("<details>") == 1 and "done in" in final and "streaming" not in final
    block = final[final.index("<details>"):final.index("</details>")]
    assert "found &lt;b&gt;x&lt;y&lt;/b&gt;" in block and "<b>x" not in block  # data, not markup
    assert final.index("<details>") < final.index("**Tool results** (1)")  # the answer follows
    meta = output["metadata"]["llm_notebook"]
    [call] = meta["tool_calls"]
    assert (call["name"], call["arguments"], call["state"]) == ("lookup", {"q": "x<y"}, "done")
    assert call["output"] == "found <b>x<y</b>" and len(meta["response_ids"]) == 2
    summed = kernel.run("rounds = _.chain.responses_so_far()\nprint(sum(r.usage().input for r in "
                        "rounds), sum(r.usage().output for r in rounds), ran)").stream()
    inputs, outputs = summed.split()[:2]
    assert [meta["usage"]["input"], meta["usage"]["output"]] == [int(inputs), int(outputs)]
    assert table_row(run)[:3] == ["echo", inputs, outputs] and "['x<y']" in summed


def test_toolboxes_and_tools_lists_and_names_that_are_not_tools(kernel):
    only_call = json.dumps({"tool_calls": [{"name": "Shelf_count"}]})
    run = kernel.run(f"%%llm -m echo --tools shelf,lookup\n{only_call}")
    [call] = answer_of(run)["metadata"]["llm_notebook"]["tool_calls"]
    assert call["name"] == "Shelf_count" and call["output"] == "3"
    assert one_line_error(kernel.run("%%llm -m echo -T nowhere\nhi", expect_error=True)) == (
        "UsageError: -T nowhere: there is no variable 'nowhere' in the notebook; define the "
        "function (or toolbox) first")
    assert one_line_error(kernel.run("%%llm -m echo -T not_a_tool\nhi", expect_error=True)) == (
        "UsageError: -T not_a_tool: not_a_tool is a int, not a function, a Toolbox instance or "
        "a Tool")
    assert "markov does not call tools" in one_line_error(
        kernel.run("%%llm -m markov -T lookup\nhi", expect_error=True))
    assert "--approve is for prompts with tools" in one_line_error(
        kernel.run("%%llm -m echo --approve\nhi", expect_error=True))


def test_chain_limit_stops_the_rounds_and_says_so(kernel):
    rounds = json.dumps({"rounds": [[{"name": "lookup", "arguments": {"q": str(n)}}]
                                    for n in range(4)]})
    run = kernel.run(f"%%llm -m echo -T lookup --chain-limit 2\n{rounds}")
    final = answer_of(run)["data"]["text/markdown"]
    assert final.count("<details>") == 3 and "stopped after 2 rounds of tool calls" in final
    assert "(chain_limit=2)" in answer_of(run)["data"]["text/plain"]
    states = [c["state"] for c in answer_of(run)["metadata"]["llm_notebook"]["tool_calls"]]
    assert states == ["done", "done", "not run"]
    assert "--chain-limit takes" in one_line_error(
        kernel.run("%%llm -m echo -T lookup --chain-limit 0\nhi", expect_error=True))


def test_an_interrupt_mid_chain_keeps_the_blocks_and_the_text(kernel):
    kernel.run("%config LLMMagics.display_interval = 1000\nrelease.clear()")
    # the empty display, the first text, the block asked for, the block running: then interrupt
    run = kernel.run(f"%%llm -m echo -T stuck --out kept\n{script('q', name='stuck')}",
                     interrupt_after_displays=4)
    kernel.run("release.set()\n%config LLMMagics.display_interval = 0.1")
    assert run.error is None
    assert run.stream().strip() == "Interrupted: the partial answer above is kept"
    output = answer_of(run)
    assert output["metadata"]["llm_notebook"]["status"] == "interrupted"
    assert output["metadata"]["llm_notebook"]["tool_calls"][0]["state"] == "interrupted"
    assert "**Prompt**" in output["data"]["text/markdown"] and "<details>" in output["data"][
        "text/markdown"]
    assert "**Prompt**" in kernel.run("print(kept)").stream()
    assert kernel.run("print(1 + 1)").stream() == "2\n"  # the kernel is ready


def test_approve_without_a_way_to_ask_denies_each_call_with_one_line(kernel):
    kernel.run("ran.clear()")
    run = kernel.run(f"%%llm -m echo -T lookup --approve\n{script('a', 'b')}")
    assert run.stream().count("--approve: this frontend cannot ask") == 1
    calls = answer_of(run)["metadata"]["llm_notebook"]["tool_calls"]
    assert [c["state"] for c in calls] == ["denied", "denied"]
    assert calls[0]["output"] == "Cancelled: no one could be asked to approve this call"
    assert kernel.run("print(ran)").stream() == "[]\n"


# -- the approval widget, clicked by a second frontend ---------------------------------------------

class Frontend:
    """A second client of the kernel that, as JupyterLab does, runs cells with input allowed
    and clicks widgets by sending comm messages."""

    def __init__(self, kernel: KernelNotebook) -> None:
        from jupyter_client import BlockingKernelClient

        self.client = BlockingKernelClient()
        self.client.load_connection_info(kernel.client.km.get_connection_info())
        self.client.start_channels()
        self.client.wait_for_ready(timeout=30)
        self.widgets: dict[str, dict] = {}
        self.copies: dict[str, str] = {}

    def close(self) -> None:
        self.client.stop_channels()

    def _read(self, until, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                continue
            content = message["content"]
            if message["msg_type"] in ("comm_open", "comm_msg"):
                state = content.get("data", {}).get("state", {})
                if "requests" in state:
                    self.widgets.setdefault(content["comm_id"], {}).update(state)
            if message["msg_type"] in ("display_data", "update_display_data"):
                kind = content.get("metadata", {}).get("llm_notebook", {}).get("text_of")
                if kind:  # a widget's text copy, as a reader without widgets sees it
                    self.copies[content["transient"]["display_id"]] = content["data"]["text/plain"]
            if until(message):
                return message
        raise AssertionError("the kernel did not get there in time")

    def run(self, code: str) -> str:
        """Execute `code` (input allowed); its stdout."""
        msg_id = self.client.execute(code, allow_stdin=True)
        printed = []

        def idle(message):
            if message["parent_header"].get("msg_id") != msg_id:
                return False
            if message["msg_type"] == "stream":
                printed.append(message["content"]["text"])
            if message["msg_type"] == "error":
                raise AssertionError("\n".join(message["content"]["traceback"]))
            return message["msg_type"] == "status" and message["content"][
                "execution_state"] == "idle"

        self._read(idle)
        return "".join(printed)

    def open_question(self, number: int) -> str:
        """Wait until the approval widget shows question `number` open; the widget's comm id."""
        def open_ones():
            return [comm for comm, state in self.widgets.items() if len(state["requests"]) > number
                    and state["requests"][number]["decision"] is None]

        if not open_ones():
            self._read(lambda _message: bool(open_ones()))
        [comm] = open_ones()
        return comm

    def click(self, comm_id: str, number: int, decision: str) -> None:
        message = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": {
            "method": "custom", "content": {"event": "decide", "id": str(number),
                                            "decision": decision}}})
        self.client.shell_channel.send(message)
        self._read(lambda m: m["parent_header"].get("msg_id") == message["header"]["msg_id"]
                   and m["msg_type"] == "status" and m["content"]["execution_state"] == "idle")


@pytest.fixture(scope="module")
def frontend(kernel):
    client = Frontend(kernel)
    yield client
    client.close()


def _summary(frontend: Frontend) -> dict:
    printed = frontend.run("answer = run.result(timeout=30)\nprint(json.dumps({'states': [c['state'] "
                           "for c in answer.metadata()['llm_notebook']['tool_calls']], 'ran': ran, "
                           "'text': answer.text, 'status': answer.status}))")
    return json.loads(printed.strip().splitlines()[-1])


def approve(frontend: Frontend, queries: tuple[str, ...], decision: str) -> tuple[dict, str, str]:
    """Run a chain asking for `queries`, click `decision` on its first question; the chain's
    summary once it ended, the widget's comm id and what the cell printed."""
    frontend.run("ran.clear()")
    printed = frontend.run(f"%%llm -m echo -T lookup --approve\n{script(*queries)}")
    frontend.run("run = _")
    comm = frontend.open_question(0)
    question = frontend.widgets[comm]["requests"][0]["question"]
    assert question == f"Allow lookup(q={queries[0]!r})?"
    frontend.click(comm, 0, decision)
    return _summary(frontend), comm, printed


def test_allow_in_the_widget_runs_the_call(kernel, frontend):
    summary, comm, printed = approve(frontend, ("a",), "allow")
    assert printed == ""  # the cell returned at once: its value is the chain's handle
    assert summary["states"] == ["done"] and summary["ran"] == ["a"]
    assert "found <b>a</b>" in summary["text"] and summary["status"] == "done"
    assert frontend.widgets[comm]["requests"][0]["decision"] == "allow"


def test_deny_in_the_widget_reaches_the_model_as_a_cancelled_call(kernel, frontend):
    summary, comm, _ = approve(frontend, ("secret",), "deny")
    assert summary["states"] == ["denied"] and summary["ran"] == []
    assert "Cancelled: the user denied this call" in summary["text"]
    assert frontend.widgets[comm]["requests"][0]["decision"] == "deny"


def test_allow_all_lets_the_rest_of_the_chain_run_unasked(kernel, frontend):
    summary, comm, _ = approve(frontend, ("a", "b", "c"), "allow all")
    assert summary["states"] == ["done", "done", "done"] and summary["ran"] == ["a", "b", "c"]
    assert len(frontend.widgets[comm]["requests"]) == 1  # asked once
    assert "Tool approvals\nAllow lookup(q='a')? allowed, and the rest too" in frontend.copies.values()


def test_the_dataframe_toolbox_and_an_async_model_through_minus_t(kernel):
    kernel.run("import pandas as pd\nsales = llm_notebook.tools.dataframe(pd.DataFrame("
               "{'region': ['north', 'south'], 'units': [3, 5]}), name='sales')")
    ask = json.dumps({"tool_calls": [{"name": "sales_schema"},
                                     {"name": "sales_head", "arguments": {"n": 1}}]})
    run = kernel.run(f"%%llm -m echo --async -T sales\n{ask}")
    calls = answer_of(run)["metadata"]["llm_notebook"]["tool_calls"]
    assert [(c["name"], c["state"]) for c in calls] == [("sales_schema", "done"),
                                                        ("sales_head", "done")]
    assert "region" in calls[0]["output"] and "units" in calls[0]["output"]
    assert "north" in calls[1]["output"] and "south" not in calls[1]["output"]


def test_in_the_background_the_cell_returns_a_handle_that_gives_the_answer(kernel):
    kernel.run("ran.clear()")
    kernel.run(f"%%llm -m echo -T lookup --background --out later\n{script('bg')}")
    started = kernel.nb.cells[-1]
    waited = kernel.run("answer = _.result(timeout=30)\nprint(type(_).__name__, answer.status, "
                        "ran, 'found <b>bg</b>' in later)")
    assert waited.stream() == "ChainRun done ['bg'] True\n"
    # the final displays, sent again by display id, land in the cell that started the chain
    shown = [o["data"].get("text/markdown", "") for o in started.outputs if "data" in o]
    assert any("<details>" in d for d in shown) and any(d.startswith("| model |") for d in shown)



def test_llm_wait_waits_for_a_chain_in_the_background_and_an_interrupt_stops_it(kernel):
    kernel.run("ran.clear(); release.clear()")
    kernel.run(f"%%llm -m echo -T lookup --background --no-usage\n{script('waited')}")
    waited = kernel.run("%llm wait")
    assert waited.stream().endswith("for 1 background answer: echo done\n"), waited.stream()
    assert kernel.run("print(ran)").stream() == "['waited']\n"

    started = kernel.run(f"%%llm -m echo -T stuck --background --no-usage\n"
                         f"{script('never', name='stuck')}")
    stopped = kernel.run("%llm wait", interrupt_after_seconds=1.0)
    assert stopped.stream().startswith("Stopped waiting: the background answers were cancelled")
    handle = f"Out[{started.reply['content']['execution_count']}]"
    state = kernel.run(f"release.set()\nprint({handle}.done(), {handle}.answer.status)")
    assert state.stream() == "True interrupted\n"
    assert kernel.run("%llm wait").stream() == "No background answers to wait for\n"


TERMINAL = r'''
import json, sys
from IPython.terminal.interactiveshell import TerminalInteractiveShell

ran = []

def lookup(q: str) -> str:
    """Look q up."""
    ran.append(q)
    return "found " + q

shell = TerminalInteractiveShell.instance()
shell.user_ns.update(lookup=lookup, ran=ran)
calls = {"tool_calls": [{"name": "lookup", "arguments": {"q": q}} for q in "abcd"]}
for cell in ["%load_ext llm_notebook",
             "%llm -m echo -T lookup --approve --no-usage " + json.dumps(calls),
             "print('RAN', ran)"]:
    shell.run_cell(cell, store_history=True)
'''


def test_in_a_terminal_each_call_is_asked_at_a_plain_prompt(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "LLM_NOTEBOOK_USER_PATH": str(tmp_path), "LLM_NOTEBOOK_LOAD_PLUGINS": ""}
    done = subprocess.run([sys.executable, "-c", TERMINAL], input="y\nn\na\n", text=True,
                          capture_output=True, env=env, timeout=120)
    assert done.stdout.count("? [y/N/a] ") == 3  # the fourth call ran unasked (Allow all)
    assert "Allow lookup(q='a')? [y/N/a] " in done.stdout
    assert "RAN ['a', 'c', 'd']" in done.stdout
    assert "[tool] lookup(q='b'): denied" in done.stdout
