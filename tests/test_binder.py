"""The examples run in an environment built from binder/ alone, as mybinder.org builds it.

A fresh virtualenv gets what binder/requirements.txt names, then binder/postBuild runs from the
repository root with that virtualenv's python first on PATH; nothing else is installed. Then
`scripts/run_examples.py --check` executes every example with kernels on that virtualenv's
python (no key, no network), so a requirement missing from binder/ fails here. Only pip's
download cache is shared with other runs: it holds downloaded files, never an installed package.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_examples import NOTEBOOKS, OFFLINE_SITE, ROOT

BINDER = ROOT / "binder"


def _run(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.mark.timeout(900)
def test_examples_run_in_an_environment_built_from_binder_files(tmp_path):
    assert sorted(path.name for path in BINDER.iterdir()) == ["postBuild", "requirements.txt"]
    assert os.access(BINDER / "postBuild", os.X_OK), "binder/postBuild must be executable"
    venv = tmp_path / "binder-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    env = {name: value for name, value in os.environ.items()
           if name not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               PIP_DISABLE_PIP_VERSION_CHECK="1")

    _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "-r",
          str(BINDER / "requirements.txt")], env)
    _run([str(BINDER / "postBuild")], env)

    installed = _run([str(bin_dir / "python"), "-c",
                      "import llm_notebook, sys; print(llm_notebook.__file__)"], env, cwd=tmp_path)
    assert installed.stdout.strip().startswith(str(venv)), "postBuild did not install the package"
    offline = dict(env, PYTHONPATH=str(OFFLINE_SITE), PIP_NO_INDEX="1")
    checked = _run([str(bin_dir / "python"), str(ROOT / "scripts" / "run_examples.py"), "--check"],
                   offline)
    assert checked.stdout.splitlines() == [f"examples/{path.name}: ok" for path in NOTEBOOKS]
