import os

import pytest

# Kernels and scripts the tests start inherit this: in a kernel the answer cache would otherwise
# replay answers that a test means to ask again. The cache's own tests choose their mode.
os.environ.setdefault("LLM_NOTEBOOK_CACHE", "off")

pytest_plugins = ["tests.support.llama_server", "tests.support.jupyterlab",
                  "tests.support.fake_llm_server"]


@pytest.fixture(autouse=True)
def user_dir(tmp_path, monkeypatch):
    """Every test gets its own user directory (keys, aliases, default model, log)."""
    path = tmp_path / "user"
    monkeypatch.setenv("LLM_NOTEBOOK_USER_PATH", str(path))
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LLM_NOTEBOOK_LOAD_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    return path
