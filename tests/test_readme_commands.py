"""The README's two commands work as written, in a fresh clone with no virtualenv yet.

Each command runs in its own `git clone` of this repository (so only committed files count) with
no VENV set, so it creates the clone's own .venv as a newcomer's first run would. pip's download
cache is shared with other runs; nothing installed is.

`bash scripts/demo.sh` runs fully. `bash scripts/test.sh` is run with pytest arguments, which the
README says it passes on: its full run would include this test and recurse into itself, so it gets
a small selection that still needs everything the command installs (the package with its test
extra, and the llama-cpp-python server).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DEMO_COMMAND = "bash scripts/demo.sh"
TEST_COMMAND = "bash scripts/test.sh"
TEST_SELECTION = ["tests/test_offline_models.py", "tests/test_llama_server_smoke.py",
                  "-q", "-p", "no:cacheprovider"]


def _fresh_clone(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    assert not (clone / ".venv").exists()
    return clone


def _newcomer_environment() -> dict[str, str]:
    """This environment without the virtualenv and pytest settings of the run that started us."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("VENV", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
           and not name.startswith("PYTEST_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(command: str, clone: Path, timeout: int) -> str:
    result = subprocess.run(command, shell=True, cwd=clone, env=_newcomer_environment(),
                            capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"`{command}` failed ({result.returncode}):\n{output[-5000:]}"
    return result.stdout


def test_the_readme_names_both_commands():
    section = README.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    commands = set(re.findall(r"`(bash scripts/[\w.]+\.sh)`", section))
    assert commands == {DEMO_COMMAND, TEST_COMMAND}
    assert "passes its arguments to pytest" in README


@pytest.mark.timeout(900)
def test_demo_command_shows_the_magic_working(tmp_path):
    clone = _fresh_clone(tmp_path)

    shown = _run(DEMO_COMMAND, clone, timeout=840)

    assert (clone / ".venv" / "bin" / "python").exists()
    assert "  In  │ %%llm\n  In  │ What is the capital of Portugal?\n  Out │ **Prompt**" in shown
    assert re.search(r"Out │ model\s+input\s+output", shown), "no usage table in the demo"
    assert "Out │ Model 'gpt-4o-mini' needs an API key" in shown
    assert "Every cell ran" in shown and "jupyter lab examples/quickstart.ipynb" in shown


@pytest.mark.timeout(1500)
def test_test_command_installs_and_runs_the_tests(tmp_path):
    clone = _fresh_clone(tmp_path)

    shown = _run(" ".join([TEST_COMMAND, *TEST_SELECTION]), clone, timeout=1440)

    assert (clone / ".venv" / "bin" / "python").exists()
    summary = shown.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in [\d.]+s( \([\d:]+\))?", summary), shown[-3000:]
