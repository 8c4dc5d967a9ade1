"""%llm in a plain terminal IPython (no kernel): the answer streams as plain text."""

from __future__ import annotations

import os
import subprocess
import sys
import time

DRIVER = r'''
from IPython.terminal.interactiveshell import TerminalInteractiveShell
shell = TerminalInteractiveShell.instance()
for cell in ["%load_ext llm_notebook",
             "%llm -m echo -o delay 0.15 --no-usage one two three four five six seven eight nine ten",
             "print('value:', type(_).__name__)",
             "%llm -m nope hi"]:
    shell.run_cell(cell, store_history=True)
print("END", flush=True)
'''


def test_terminal_streams_plain_text_as_it_arrives(tmp_path):
    env = {**os.environ, "LLM_NOTEBOOK_USER_PATH": str(tmp_path), "LLM_NOTEBOOK_LOAD_PLUGINS": ""}
    process = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env, bufsize=1)
    seen: dict[str, float] = {}
    lines = []
    for line in process.stdout:
        lines.append(line)
        for marker in ("**Prompt**", "> one two", "END"):
            if marker in line and marker not in seen:
                seen[marker] = time.monotonic()
    process.wait(timeout=60)
    output = "".join(lines)
    assert seen["> one two"] - seen["**Prompt**"] > 0.5, "the answer arrived all at once"
    assert "**Prompt**\n\n> one two three four five six seven eight nine ten\n" in output
    assert output.count("one two three") == 1
    assert "text/markdown" not in output
    assert "value: Answer" in output
    assert "UnknownModelError: Unknown model 'nope'" in output and "Traceback" not in output
