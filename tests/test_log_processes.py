"""The log across real processes: several writing at once, one killed with SIGKILL, forked ones."""

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import llm_notebook

ROOT = Path(__file__).resolve().parents[1]

THREE_WRITERS = """
import sys
import llm_notebook
tag = sys.argv[1]
model = llm_notebook.get_model("echo")
sys.stdin.readline()  # "go": all three start together, on a database none has created yet
for i in range(200):
    model.prompt(f"{tag} {i} " + "x" * 200_000).text()
"""

FINISHES_UNTIL_KILLED = """
import sys, time
import llm_notebook
model = llm_notebook.get_model("echo")
with open(sys.argv[1], "a", buffering=1) as finished:
    for i in range(100_000):
        response = model.prompt(f"until killed {i} " + "y" * 2_000)
        response.text()
        finished.write(f"finished {response.id} {time.monotonic()}\\n")
        time.sleep(0.002)
"""

CREATES_THE_SCHEMA = """
import sys
from llm_notebook import store
sys.stdin.readline()
connection = store.connect()
print(connection.execute("PRAGMA user_version").fetchone()[0])
connection.close()
"""


def python(code: str, *args: str, user_dir: Path, **popen) -> subprocess.Popen:
    env = {**os.environ, "LLM_NOTEBOOK_USER_PATH": str(user_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT,
                            env=env, **popen)


def start_together(code: str, count: int, user_dir: Path) -> list[subprocess.Popen]:
    children = [python(code, f"p{n}", user_dir=user_dir, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for n in range(count)]
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    return children


def integrity(database: Path) -> str:
    connection = sqlite3.connect(database)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def test_three_processes_writing_200_large_answers_each_lose_nothing(user_dir):
    children = start_together(THREE_WRITERS, 3, user_dir)
    for child in children:
        out, err = child.communicate(timeout=240)
        assert child.returncode == 0, err
        assert "could not write" not in err, err
    connection = sqlite3.connect(user_dir / "logs.db")  # 240 MB of text: read only what is checked
    rows = connection.execute("SELECT substr(prompt, 1, 12), length(prompt), length(text), status "
                              "FROM responses").fetchall()
    connection.close()
    assert len(rows) == 600
    assert sorted((prompt.split()[0], int(prompt.split()[1])) for prompt, *_ in rows) == \
        sorted((f"p{n}", i) for n in range(3) for i in range(200))
    assert all(prompt_size > 200_000 and text_size > 200_000 and status == "done"
               for _, prompt_size, text_size, status in rows)
    assert integrity(user_dir / "logs.db") == "ok"


def test_after_kill_9_every_response_finished_a_second_before_is_in_the_log(user_dir, tmp_path):
    finished_file = tmp_path / "finished.txt"
    child = python(FINISHES_UNTIL_KILLED, str(finished_file), user_dir=user_dir,
                   stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        first = None
        while time.monotonic() < deadline:  # bounded: until it has run 2 s past its first answer
            lines = finished_file.read_text().splitlines() if finished_file.exists() else []
            if lines:
                first = first or float(lines[0].split()[2])
                if time.monotonic() - first > 2.0:
                    break
            assert child.poll() is None, child.stderr.read()
            time.sleep(0.05)
        else:
            raise AssertionError("the child did not finish responses for 2 s within a minute")
    finally:
        child.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        child.wait(timeout=30)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    finished = [line.split() for line in finished_file.read_text().splitlines()]
    due = {fields[1] for fields in finished
           if len(fields) == 3 and float(fields[2]) < killed_at - 1.0}
    assert len(due) > 50
    logged = {row["id"] for row in llm_notebook.logs(None)}
    assert due <= logged, f"{len(due - logged)} of {len(due)} finished responses are missing"
    assert integrity(user_dir / "logs.db") == "ok"


def test_processes_creating_the_database_at_once_all_get_the_schema(user_dir):
    children = start_together(CREATES_THE_SCHEMA, 4, user_dir)
    versions = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        versions.append(int(out))
    assert versions == [len(llm_notebook.store.MIGRATIONS)] * 4
    echo = llm_notebook.get_model("echo").prompt("after the race")
    echo.text()
    assert [row["prompt"] for row in llm_notebook.logs(None)] == ["after the race"]


def answer_and_return(prompt: str) -> None:
    llm_notebook.get_model("echo").prompt(prompt).text()


def test_a_forked_child_logs_through_its_own_writer_up_to_its_last_answer():
    parent = llm_notebook.get_model("echo").prompt("in the parent, before the fork")
    parent.text()  # the parent's writer thread is running when the child is forked
    child = multiprocessing.get_context("fork").Process(target=answer_and_return,
                                                        args=("in the child, just before exit",))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    prompts = [row["prompt"] for row in llm_notebook.logs(None)]
    assert sorted(prompts) == ["in the child, just before exit", "in the parent, before the fork"]
