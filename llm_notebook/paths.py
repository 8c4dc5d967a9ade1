"""Where the package keeps its user files (keys, aliases, default model, log)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

USER_PATH_ENV = "LLM_NOTEBOOK_USER_PATH"


def user_dir() -> Path:
    """The user directory, created on demand; `LLM_NOTEBOOK_USER_PATH` overrides it."""
    override = os.environ.get(USER_PATH_ENV)
    if override:
        path = Path(override).expanduser()
    elif sys.platform == "win32":
        path = Path(os.environ.get("APPDATA", Path.home())) / "llm_notebook"
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Application Support" / "llm_notebook"
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
        path = Path(base) / "llm_notebook"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_private(path: Path, text: str) -> None:
    """Atomically replace `path` with `text`, readable by the owner only (0600)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
