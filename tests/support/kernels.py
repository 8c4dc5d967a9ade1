"""Real IPython kernels of both ipykernel majors, for tests that must pass on each.

"ipykernel7" is the kernel of the test environment itself. "ipykernel6" runs from a second
virtualenv with `ipykernel<7` and this package installed editable; it is built once and kept
under ~/.cache/jupyter-llm-notebook/venvs/ (rebuilt when pyproject.toml or the checkout changes).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENVS = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jupyter-llm-notebook" / "venvs"
KERNELS = {"ipykernel7": None, "ipykernel6": "ipykernel>=6.29,<7"}


def _stamp(requirement: str) -> str:
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    return hashlib.sha256(pyproject + requirement.encode() + str(ROOT).encode()
                          + sys.version.encode()).hexdigest()


def kernel_python(variant: str) -> str:
    """The Python that runs kernels of `variant`, building its virtualenv when needed."""
    requirement = KERNELS[variant]
    if requirement is None:
        return sys.executable
    venv = VENVS / variant
    stamp = _stamp(requirement)
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f"{variant}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building it right now
        ready = venv / "ready"
        if not (ready.exists() and ready.read_text() == stamp):
            _build(venv, requirement)
            ready.write_text(stamp)
    return str(venv / "bin" / "python")


def _build(venv: Path, requirement: str) -> None:
    """Build in place (a venv's scripts name its path); the stamp, written last, marks it done."""
    (venv / "ready").unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", requirement, "-e", str(ROOT)], check=True)


def kernel_spec_dir(variant: str, parent: Path) -> Path:
    """A kernelspec directory named `variant` under `parent`/kernels, for KernelSpecManager."""
    spec = parent / "kernels" / variant
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        '{"argv": ["%s", "-m", "ipykernel_launcher", "-f", "{connection_file}"], '
        '"display_name": "%s", "language": "python"}' % (kernel_python(variant), variant))
    return spec


def kernel_manager(variant: str, parent: Path):
    """A KernelManager for `variant` whose spec lives under `parent` (not yet started)."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    kernel_spec_dir(variant, parent)
    specs = KernelSpecManager(kernel_dirs=[str(parent / "kernels")])
    return KernelManager(kernel_name=variant, kernel_spec_manager=specs)
