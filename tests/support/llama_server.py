"""Pytest plugin: a real OpenAI-compatible server (llama-cpp-python) on a tiny model.

Enabled from tests/conftest.py with ``pytest_plugins``. The ``llama_server``
fixture is session-scoped: one server process serves every test that asks for
it, and it is started only if some selected test does.

llama-cpp-python is compiled from source and is installed by
``scripts/install_llama_server.sh``; when it is missing the fixture fails
rather than skips, so CI can never pass without exercising the real server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from tests.support.server_process import free_port, log_tail

MODEL_ALIAS = "tiny-llama"
INSTALL_HINT = "run scripts/install_llama_server.sh with this interpreter"
STARTUP_TIMEOUT_S = float(os.environ.get("LLAMA_SERVER_STARTUP_TIMEOUT", "120"))

_REQUIRED_MODULES = (
    "llama_cpp",
    "llama_cpp.server",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
    "gguf",
)


@dataclass
class LlamaServer:
    """A running ``python -m llama_cpp.server`` subprocess."""

    base_url: str
    model_id: str
    model_path: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    @property
    def root_url(self) -> str:
        """Server URL without the ``/v1`` suffix."""
        return self.base_url[: -len("/v1")]

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the server's combined stdout/stderr."""
        return log_tail(self.log_path, lines)


def _require_llama_cpp() -> List[str]:
    """Import the server stack or fail the test with a one-line hint.

    Returns the server's settings field names so that same-named environment
    variables (pydantic-settings reads e.g. API_KEY or CHAT_FORMAT) can be
    kept away from the subprocess.
    """
    problems = []
    for name in _REQUIRED_MODULES:
        if any(name.startswith(bad + ".") for bad in problems):
            continue
        try:
            __import__(name)
        except ModuleNotFoundError:
            problems.append(name)
        except Exception as exc:  # e.g. OSError when the native library fails to load
            detail = " ".join(str(exc).split())[:200]
            problems.append(f"{name} ({type(exc).__name__}: {detail})")
    if problems:
        pytest.fail(
            f"llama-cpp-python[server] is not usable with {sys.executable} "
            f"(cannot import: {', '.join(problems)}); {INSTALL_HINT}",
            pytrace=False,
        )
    from llama_cpp.server.settings import ConfigFileSettings, ModelSettings, ServerSettings

    names = set(ModelSettings.model_fields) | set(ServerSettings.model_fields)
    names |= set(ConfigFileSettings.model_fields)
    names.add("config_file")
    return sorted(names)


def _models_ready(base_url: str) -> Optional[dict]:
    try:
        with urllib.request.urlopen(base_url + "/models", timeout=2) as response:
            if response.status == 200:
                return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def start_llama_server(
    workdir: Path, *, seed: int = 0, embedding: bool = False
) -> LlamaServer:
    """Generate the tiny model into ``workdir`` and start a server on it.

    With ``embedding`` the model mean-pools its token vectors and the server
    answers ``/v1/embeddings`` (llama-cpp-python's ``--embedding``). Waits
    until ``GET /v1/models`` answers; fails the calling test with the server's
    log tail if it exits or does not answer within the timeout.
    """
    from tests.support.tiny_gguf import make_tiny_llama_gguf

    setting_names = _require_llama_cpp()
    model_path = make_tiny_llama_gguf(workdir / "tiny-llama.gguf", seed=seed,
                                      pooling="mean" if embedding else None)
    extra_args = ["--embedding", "true"] if embedding else []
    lowered = {name.lower() for name in setting_names}
    env = {k: v for k, v in os.environ.items() if k.lower() not in lowered}
    env["PYTHONUNBUFFERED"] = "1"
    for attempt in range(3):
        server = _launch(workdir, model_path, env, attempt, seed, extra_args)
        if server is not None:
            return server
    raise AssertionError("unreachable")


def _launch(
    workdir: Path,
    model_path: Path,
    env: Dict[str, str],
    attempt: int,
    seed: int,
    extra_args: List[str],
) -> Optional[LlamaServer]:
    """Start one server process; None means its port was taken, so retry."""
    from tests.support.tiny_gguf import TinyLlamaSpec

    log_path = workdir / f"llama_server.{attempt}.log"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model", str(model_path),
        "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(TinyLlamaSpec.n_ctx),
        "--n_threads", "1",
        "--n_threads_batch", "1",
        "--seed", str(seed),
        *extra_args,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(workdir),
        )
    server = LlamaServer(
        base_url=base_url,
        model_id=MODEL_ALIAS,
        model_path=model_path,
        log_path=log_path,
        process=process,
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        code = process.poll()
        if code is not None:
            if attempt < 2 and "address already in use" in server.log_tail().lower():
                return None
            pytest.fail(
                f"llama_cpp.server exited with code {code} before answering "
                f"GET {base_url}/models.\ncommand: {' '.join(cmd)}\n"
                f"--- server log tail ---\n{server.log_tail()}",
                pytrace=False,
            )
        if _models_ready(base_url) is not None:
            return server
        if time.monotonic() > deadline:
            _stop(process)
            pytest.fail(
                f"llama_cpp.server did not answer GET {base_url}/models within "
                f"{STARTUP_TIMEOUT_S:.0f}s.\ncommand: {' '.join(cmd)}\n"
                f"--- server log tail ---\n{server.log_tail()}",
                pytrace=False,
            )
        time.sleep(0.1)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A llama-cpp-python OpenAI-compatible server serving ``tiny-llama``."""
    server = start_llama_server(tmp_path_factory.mktemp("llama_server"))
    try:
        yield server
    finally:
        _stop(server.process)
