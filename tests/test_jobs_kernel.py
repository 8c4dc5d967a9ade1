"""Batch jobs in real kernels (nbclient): submitted in one, reattached after a restart and in
another notebook, collected there; and the README's example, run as written, against the
loopback batch server."""

import asyncio
import re
from pathlib import Path

import pytest
from nbclient.util import run_sync

from tests.magics_kernel import KernelNotebook
from tests.support.batch_servers import OPENAI_KEY, BatchServer, FastClock

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Large jobs: provider batch APIs"


@pytest.fixture
def server():
    running = BatchServer(clock=FastClock(per_poll=600)).start()
    yield running
    running.stop()


def kernel(tmp_path, server, cache="replay"):
    return KernelNotebook(tmp_path, env={"OPENAI_BASE_URL": server.openai_url,
                                         "OPENAI_API_KEY": OPENAI_KEY,
                                         "LLM_NOTEBOOK_CACHE": cache})


def restart(notebook: KernelNotebook) -> None:
    """Restart the kernel process: a fresh interpreter, nothing of the old one kept."""
    restarting = notebook.client.km.restart_kernel(now=True)
    if asyncio.iscoroutine(restarting):
        async def wait():
            await restarting

        run_sync(wait)()
    run_sync(notebook.client.kc.wait_for_ready)(timeout=60)
    # the restarted kernel's output channel reconnects a moment after it answers: until a cell's
    # print comes back, outputs can be lost (bounded: each try waits for nbclient's timeout)
    for _ in range(30):
        if "ready" in notebook.run("print('ready')").stream():
            return
    raise AssertionError("the restarted kernel's output never came back")


def shown(run) -> str:
    return "\n".join(run.data("text/plain") + [run.stream()])


def test_a_job_is_reattached_after_a_kernel_restart_and_collected_there(tmp_path, server):
    notebook = kernel(tmp_path, server)
    try:
        submitted = notebook.run(
            "import pandas as pd, llm_notebook\n"
            "df = pd.DataFrame({'city': ['Oslo', 'Lima', 'Pune', 'Kyiv']}, index=[10, 20, 30, 40])\n"
            "job = llm_notebook.map('Describe {city}', df, model='gpt-4o-mini', batch=True)\n"
            "print(job.id, job.status)")
        job_id, status = submitted.stream().split()
        assert status == "validating" and [b.polls for b in server.batches.values()] == [0]

        restart(notebook)
        assert "NameError" in notebook.run("job", expect_error=True).error_text()
        listed = notebook.run("import llm_notebook\n"
                              "print([j.id for j in llm_notebook.batches()])")
        assert job_id in listed.stream()
        waited = notebook.run(f"job = llm_notebook.batch({job_id!r})\n"
                              "job.wait(poll=0)\n"
                              "answers = job.result()\n"
                              "print(answers.to_dict())")
        assert "4 of 4 requests done" in "\n".join(waited.data("text/plain"))
        assert ("{10: 'answer to: Describe Oslo', 20: 'answer to: Describe Lima', "
                "30: 'answer to: Describe Pune', 40: 'answer to: Describe Kyiv'}") in waited.stream()

        replayed = notebook.run(  # the rows went into the answer cache: nothing is sent again
            "import pandas as pd\n"
            "df = pd.DataFrame({'city': ['Oslo', 'Lima', 'Pune', 'Kyiv']}, index=[10, 20, 30, 40])\n"
            "again = llm_notebook.map('Describe {city}', df, model='gpt-4o-mini', progress=False)\n"
            "print(again.replayed, again.sent, list(again) == list(answers))")
        assert replayed.stream().split() == ["4", "0", "True"]
    finally:
        notebook.close()


def readme_section() -> str:
    """The README's section, from its heading to the next one."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SECTION in readme, f"the README has no section {SECTION!r}"
    start = readme.index(SECTION)
    following = readme.find("\n## ", start + len(SECTION))
    return readme[start:following if following != -1 else None].strip()


def test_the_readme_example_runs_against_the_loopback_batch_server(tmp_path, server):
    blocks = re.findall(r"```python\n(.*?)```", readme_section(), re.DOTALL)
    assert len(blocks) == 2
    first = kernel(tmp_path, server)
    try:
        submitted = first.run(blocks[0])
        assert "gpt-4o-mini through OpenAI Batch API · validating · 0 of 3" in shown(submitted)
    finally:
        first.close()
    another = kernel(tmp_path, server)  # another notebook, another kernel
    try:
        for line in blocks[1].strip().splitlines():
            run = another.run(line.split("#")[0])
            if "job.wait()" in line:
                assert "3 of 3 requests done" in shown(run)
        check = another.run("print(summaries.to_dict(), job.errors, job.status)")
        assert check.stream().strip() == (
            "{'r1': 'answer to: Summarise in five words: Great battery, dull screen.', "
            "'r2': 'answer to: Summarise in five words: Arrived broken.', "
            "'r3': 'answer to: Summarise in five words: Does what it says on the box.'} {} "
            "completed")
    finally:
        another.close()
