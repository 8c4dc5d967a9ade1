"""In a real kernel, on ipykernel 7 and 6: top-level await, the runner, map, and asyncio untouched.

Each variant gets one notebook run through nbclient that uses everything async this package
offers, and whose last cell checks that nothing patched asyncio (as nest_asyncio would), and one
kernel that is interrupted while a cell streams an async model through the runner.
"""

import json

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support.kernels import kernel_manager

VARIANTS = ["ipykernel7", "ipykernel6"]

SNAPSHOT = """
import asyncio, sys
import asyncio.base_events, asyncio.runners, asyncio.tasks

def asyncio_functions():
    found = {f"asyncio.{n}": getattr(asyncio, n) for n in asyncio.__all__}
    found.update({f"asyncio.tasks.{n}": v for n, v in vars(asyncio.tasks).items() if callable(v)})
    found.update({f"BaseEventLoop.{n}": v for n, v in vars(asyncio.BaseEventLoop).items()
                  if callable(v)})
    return found

before = asyncio_functions()
print(json.dumps({"kernel": __import__("ipykernel").__version__}))
"""

CELLS = [
    "import json\n" + SNAPSHOT,
    # top-level await on the kernel's own loop
    """
import llm_notebook
model = llm_notebook.get_async_model("echo")
response = await model.prompt("top level")
print(json.dumps({"status": response.status, "text": response.text_or_raise()}))
""",
    """
chunks = []
async for chunk in model.prompt("one two three", delay=0.01):
    chunks.append(chunk)
print(json.dumps({"chunks": chunks}))
""",
    # sync code in a cell hands async models to the runner's loop
    """
from llm_notebook import runner
streamed = list(runner.iterate(model.prompt("from sync code")))
ran = runner.run(model.prompt("run").text())
print(json.dumps({"streamed": streamed, "ran": ran,
                  "kernel_loop_is_not_runner_loop": asyncio.get_running_loop() is not runner.get_loop()
                  if asyncio.events._get_running_loop() else True}))
""",
    # a background handle, awaited at top level from the kernel's loop
    """
handle = runner.start(model.prompt("in the background", delay=0.01))
finished = await handle
print(json.dumps({"background": finished.status, "done": handle.done()}))
""",
    """
answers = llm_notebook.map("Q{}", ["a", "b", "c"], model="echo", concurrency=2)
print(json.dumps({"answers": list(answers)}))
""",
    # nothing patched: no nest_asyncio, the same functions as before, all from the stdlib
    """
import os, _asyncio
stdlib = os.path.dirname(asyncio.__file__)
after = asyncio_functions()
loop = asyncio.events._get_running_loop()
problems = [name for name in ("nest_asyncio", "nest_asyncio2") if name in sys.modules]
problems += [f"{n} replaced" for n, v in before.items() if after.get(n) is not v]
problems += [f"{n} not from the stdlib" for n, v in after.items()
             if getattr(v, "__code__", None) and not v.__code__.co_filename.startswith(stdlib)]
for name in ("Task", "Future", "get_running_loop", "_get_running_loop", "get_event_loop",
             "_enter_task", "_leave_task", "_register_task", "current_task"):
    for module in (asyncio, asyncio.tasks, asyncio.events, asyncio.futures):
        if hasattr(module, name) and hasattr(_asyncio, name) and getattr(module, name) is not getattr(_asyncio, name):
            problems.append(f"{module.__name__}.{name} is not the C original")
if asyncio.run is not asyncio.runners.run:
    problems.append("asyncio.run replaced")
if loop is not None:
    cls = type(loop)
    if getattr(cls, "_nest_patched", False):
        problems.append(f"{cls.__name__} patched by nest_asyncio")
    for klass in cls.__mro__:
        for n, v in vars(klass).items():
            code = getattr(v, "__code__", None)
            if code and klass.__module__.startswith("asyncio") and not code.co_filename.startswith(stdlib):
                problems.append(f"{klass.__name__}.{n} replaced")
print(json.dumps({"problems": problems, "loop": type(loop).__module__ + "." + type(loop).__name__
                  if loop else None}))
""",
]


def _json_lines(cell) -> dict:
    found = {}
    for output in cell.outputs:
        if output.output_type == "stream" and output.name == "stdout":
            for line in output.text.splitlines():
                if line.startswith("{"):
                    found.update(json.loads(line))
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_async_everything_in_a_real_kernel_without_patching_asyncio(variant, tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(notebook, km=kernel_manager(variant, tmp_path), timeout=60).execute()
    results = [_json_lines(cell) for cell in notebook.cells]

    assert results[0]["kernel"].startswith("7." if variant == "ipykernel7" else "6.")
    assert results[1]["status"] == "done" and "> top level" in results[1]["text"]
    assert len(results[2]["chunks"]) > 3 and "> one two three" in "".join(results[2]["chunks"])
    assert "> from sync code" in "".join(results[3]["streamed"]) and len(results[3]["streamed"]) > 3
    assert "> run" in results[3]["ran"] and results[3]["kernel_loop_is_not_runner_loop"]
    assert results[4] == {"background": "done", "done": True}
    assert [("> Q" + x) in answer for x, answer in zip("abc", results[5]["answers"])] == [True] * 3
    progress = [o["data"]["text/plain"] for o in notebook.cells[5].outputs
                if "llm-map-progress" in o.get("data", {}).get("text/html", "")]
    assert progress and "echo: 3 of 3 prompts done" in progress[-1], \
        "map's progress should show in the notebook and end as its summary"
    assert results[6]["problems"] == []
    assert results[6]["loop"].startswith("asyncio.")


@pytest.mark.parametrize("variant", VARIANTS)
def test_kernel_interrupt_stops_a_runner_stream_and_keeps_the_partial_answer(variant, tmp_path):
    manager = kernel_manager(variant, tmp_path)
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        code = ("import llm_notebook\nfrom llm_notebook import runner\n"
                "response = llm_notebook.get_async_model('echo').prompt('w ' * 300, delay=0.02)\n"
                "for index, chunk in enumerate(runner.iterate(response)):\n"
                "    if index == 5:\n        print('streaming', flush=True)\n")
        # an interrupted cell must not abort the next request (ipykernel does that to requests
        # that arrive just after an error unless told otherwise)
        msg_id = client.execute(code, stop_on_error=False)
        _wait_for_output(client, msg_id, "streaming")
        manager.interrupt_kernel()
        reply = _reply_to(client, msg_id)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"

        printed = []
        client.execute_interactive(
            "import json; print(json.dumps({'status': response.status, "
            "'words': len(response.text_or_raise().split()), 'running': len(runner.running())}))",
            output_hook=lambda msg: printed.append(msg["content"].get("text", "")), timeout=30)
        state = json.loads("".join(printed))
        assert state["status"] == "interrupted"
        assert 5 < state["words"] < 300
        assert state["running"] == 0
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _wait_for_output(client, msg_id: str, text: str) -> None:
    """Block until the cell `msg_id` has printed `text` (the stream is under way)."""
    while True:
        message = client.get_iopub_msg(timeout=60)
        if (message["parent_header"].get("msg_id") == msg_id and message["msg_type"] == "stream"
                and text in message["content"]["text"]):
            return


def _reply_to(client, msg_id: str) -> dict:
    while True:
        reply = client.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
