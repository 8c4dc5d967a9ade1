"""%llm in a plain terminal IPython (no kernel): the answer streams as plain text, as it arrives,
and no empty `Out[n]:` follows it."""

from __future__ import annotations

import os
import subprocess
import sys

DRIVER = r'''
import os, sys, time
from IPython.terminal.interactiveshell import TerminalInteractiveShell
import llm_notebook

GATE = sys.argv[1]


class Gated(llm_notebook.Model):
    """Says its first words, then waits (at most 30 s) until the test has seen them."""
    model_id = "gated"

    def execute(self, prompt, stream, response, conversation):
        yield "first words "
        for _ in range(300):
            if os.path.exists(GATE):
                yield "after the gate"
                return
            time.sleep(0.1)
        yield "the gate never opened"


llm_notebook.register(Gated())
shell = TerminalInteractiveShell.instance()
for cell in ["%load_ext llm_notebook",
             "%llm -m gated --no-usage go",
             "print('value:', type(_).__name__, repr(str(_)))",
             "%llm -m echo --no-usage What is the capital of France?",
             "6 * 7",
             "%llm -m nope hi"]:
    shell.run_cell(cell, store_history=True)
print("END", flush=True)
'''


def test_terminal_streams_plain_text_as_it_arrives_with_no_empty_out(tmp_path):
    gate = tmp_path / "gate"
    env = {**os.environ, "LLM_NOTEBOOK_USER_PATH": str(tmp_path), "LLM_NOTEBOOK_LOAD_PLUGINS": ""}
    process = subprocess.Popen([sys.executable, "-c", DRIVER, str(gate)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env)
    output = b""
    try:
        while b"first words" not in output:  # the first words arrive before the model goes on
            piece = os.read(process.stdout.fileno(), 4096)
            assert piece, f"the shell ended before streaming: {output.decode()}"
            output += piece
        gate.touch()
        output += process.stdout.read()
        process.wait(timeout=60)
    finally:
        process.kill()
    text = output.decode()
    assert "first words after the gate\n" in text and "never opened" not in text
    assert "value: Answer 'first words after the gate'" in text
    assert "> What is the capital of France?\n" in text and "not found" not in text
    assert "Out[5]: 42" in text
    assert "Out[2]" not in text and "Out[4]" not in text, "an empty Out[n] after a streamed answer"
    assert "text/markdown" not in text
    assert "UnknownModelError: Unknown model 'nope'" in text and "Traceback" not in text



GATED_CELL = '''
import os, time
import llm_notebook


class Gated(llm_notebook.Model):
    model_id = "gated"

    def execute(self, prompt, stream, response, conversation):
        yield "first words "
        for _ in range(300):
            if os.path.exists(os.environ["DEMO_GATE"]):
                yield "after the gate"
                return
            time.sleep(0.1)
        yield "the gate never opened"


llm_notebook.register(Gated())
'''


def test_the_demo_prints_answers_while_they_stream(tmp_path):
    import nbformat

    notebook = tmp_path / "gated.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext llm_notebook"), nbformat.v4.new_code_cell(GATED_CELL),
        nbformat.v4.new_code_cell("%llm -m gated go")]), notebook)
    gate = tmp_path / "gate"
    demo = os.path.join(os.path.dirname(__file__), "..", "examples", "demo.py")
    process = subprocess.Popen([sys.executable, demo, str(notebook)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env={**os.environ, "DEMO_GATE": str(gate)})
    output = b""
    try:
        while b"Out \xe2\x94\x82 first " not in output:  # "Out │ first ": the answer has begun
            piece = os.read(process.stdout.fileno(), 4096)
            assert piece, f"the demo ended before the answer streamed: {output.decode()}"
            output += piece
        gate.touch()
        output += process.stdout.read()
        assert process.wait(timeout=120) == 0, output.decode()
    finally:
        process.kill()
    text = output.decode()
    assert "  In  │ %llm -m gated go\n  Out │ first words after the gate\n  Out │ model" in text
    assert text.count("first words after the gate") == 1  # printed once, as it streamed
    assert "Every cell ran." in text
