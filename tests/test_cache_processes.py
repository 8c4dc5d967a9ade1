"""The answer cache across real processes: one writes, another replays; exported files replay
with the network refused; a map killed with kill -9 resumes sending only what is missing; the
"auto" mode replays inside a real Jupyter kernel."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.fake_llm_server import FakeLLMServer
from tests.support.slow_server import SlowServer

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, env: dict[str, str], timeout: float = 60) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


def closed_port_url() -> str:
    """A loopback URL nobody listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def server():
    started = FakeLLMServer().start()
    yield started
    started.stop()


def environment(user_dir: Path, base_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "LLM_NOTEBOOK_USER_PATH": str(user_dir), "OPENAI_BASE_URL": base_url,
            "OPENAI_API_KEY": "sk-test-cache-0000", "LLM_NOTEBOOK_CACHE": "replay",
            "PYTHONPATH": str(ROOT), **extra}


ASK = """
    import json, llm_notebook
    from llm_notebook import cache
    response = llm_notebook.get_model("gpt-4o-mini").prompt("What is up?", system="Be brief")
    print(json.dumps({"text": response.text(), "key": cache.key_of(response),
                      "replayed": response.replayed}))
"""


def test_one_process_writes_and_another_replays(server, user_dir):
    env = environment(user_dir, server.openai_url)
    first = json.loads(run_python(ASK, env))
    assert first["text"] == "Hello from the fake server." and first["replayed"] is None
    second = json.loads(run_python(ASK, env))
    assert second["text"] == first["text"]
    assert second["replayed"]["key"] == first["key"]
    assert second["replayed"]["source"] == "cache"
    assert len(server.requests) == 1


def test_an_exported_file_replays_with_the_network_refused(server, user_dir, tmp_path):
    first = json.loads(run_python(ASK, environment(user_dir, server.openai_url)))
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text(json.dumps({"cells": [
        {"cell_type": "code", "source": "%%llm ...", "metadata": {},
         "outputs": [{"output_type": "display_data", "data": {"text/plain": "..."},
                      "metadata": {"llm_notebook": {"model": "gpt-4o-mini",
                                                    "cache_key": first["key"]}}}]},
        {"cell_type": "markdown", "source": "notes", "metadata": {}}]}))
    exported = tmp_path / "answers.sqlite"
    count = run_python(f"""
        from llm_notebook import cache
        print(cache.export({str(exported)!r}, notebook={str(notebook)!r}))
    """, environment(user_dir, server.openai_url))
    assert count.strip() == "1"
    assert not Path(f"{exported}-wal").exists()  # one file to hand over

    colleague = environment(tmp_path / "colleague", closed_port_url(),
                            LLM_NOTEBOOK_CACHE_FILES=str(exported))
    colleague.pop("OPENAI_API_KEY")  # no key either: the answer needs none
    replayed = run_python("""
        import json, llm_notebook
        from llm_notebook import cache
        response = llm_notebook.get_model("gpt-4o-mini").prompt("What is up?", system="Be brief",
                                                                key="not-a-real-key")
        print(json.dumps({"text": response.text(), "source": response.replayed["source"]}))
    """, colleague)
    assert json.loads(replayed) == {"text": first["text"], "source": str(exported)}
    assert len(server.requests) == 1


def test_export_refuses_to_touch_a_file_that_is_not_a_cache_file(user_dir, tmp_path):
    from llm_notebook import cache
    from llm_notebook.errors import LLMNotebookError

    precious = tmp_path / "notes.txt"
    precious.write_text("my notes")
    with pytest.raises(LLMNotebookError, match="not a cache file"):
        cache.export(precious, keys=["abc"])
    assert precious.read_text() == "my notes"
    with pytest.raises(LLMNotebookError, match="No cache file"):
        cache.use(tmp_path / "missing.sqlite")


MAP = """
    import llm_notebook
    from llm_notebook import batch
    from tests.support.slow_server import loopback_models
    sync_model, async_model = loopback_models({url!r}, "loopback")
    llm_notebook.register(sync_model, async_model)
    answers = llm_notebook.map("row {{}}", list(range({rows})), model="loopback", concurrency=4,
                               progress=False)
    print(answers.replayed, answers.sent)
"""


def stored_answers(database: Path) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as connection:
        try:
            return connection.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        except sqlite3.OperationalError:  # the schema is being created
            return 0


def test_a_map_killed_midway_resends_only_the_rows_it_had_not_stored(user_dir, tmp_path):
    rows = 200
    slow = SlowServer(delay=0.05).start()
    database = user_dir / "logs.db"
    try:
        env = environment(user_dir, slow.url)
        killed = subprocess.Popen([sys.executable, "-c", textwrap.dedent(
            MAP.format(url=slow.url, rows=rows))], env=env, cwd=ROOT)
        try:
            assert slow.wait_for(lambda s: s.requests >= rows // 4)
            for _ in range(300):  # the writer stores a batch within a second of the first answers
                if stored_answers(database) or killed.poll() is not None:
                    break
                slow.wait_for(lambda s: False, timeout=0.1)
        finally:
            os.kill(killed.pid, signal.SIGKILL)
            killed.wait(30)
        stored = stored_answers(database)
        assert 0 < stored < rows
        before = slow.requests
        replayed, sent = run_python(MAP.format(url=slow.url, rows=rows), env).split()
        assert (int(replayed), int(sent)) == (stored, rows - stored)
        assert slow.requests - before == rows - stored
    finally:
        slow.stop()


def test_auto_replays_inside_a_jupyter_kernel(user_dir, tmp_path):
    from tests.magics_kernel import KernelNotebook

    notebook = KernelNotebook(tmp_path, env={"LLM_NOTEBOOK_USER_PATH": str(user_dir),
                                             "LLM_NOTEBOOK_CACHE": ""})
    try:
        run = notebook.run("import llm_notebook\n"
                           "from llm_notebook import cache\n"
                           "print(llm_notebook.settings.cache, cache.current_mode())\n"
                           "first = llm_notebook.get_model('markov').prompt('a b c a b', seed=1)\n"
                           "second = llm_notebook.get_model('markov').prompt('a b c a b', seed=1)\n"
                           "print(first.text() == second.text(), first.replayed is None,\n"
                           "      second.replayed is not None)")
        assert run.stream().split() == ["auto", "replay", "True", "True", "True"]
    finally:
        notebook.close()
