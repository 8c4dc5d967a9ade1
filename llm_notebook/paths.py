"""Where the package keeps its user files (keys, aliases, default model, log)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import LLMNotebookError

USER_PATH_ENV = "LLM_NOTEBOOK_USER_PATH"
APP_NAME = "llm_notebook"


class UserFileError(LLMNotebookError, OSError):
    """The user directory or a file in it cannot be created or written; says which and what to do."""

    def __str__(self) -> str:  # OSError would format (errno, strerror) pairs
        return str(self.args[0]) if self.args else ""


def user_dir(*, create: bool = True) -> Path:
    """The user directory; `LLM_NOTEBOOK_USER_PATH` overrides it.

    Readers pass `create=False`: a missing folder then simply holds no files, so a machine whose
    home cannot be written still runs the offline models; writers create it on demand.
    """
    import platformdirs  # the OS conventions: ~/.config (XDG), Application Support, %APPDATA%

    override = os.environ.get(USER_PATH_ENV)
    if override:
        path = Path(override).expanduser()
    else:
        path = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False, roaming=True))
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserFileError(
                f"Cannot create the llm_notebook user directory {path}: {os_reason(exc)}. "
                f"Set {USER_PATH_ENV} to a folder you can write, or fix that path") from None
    return path


def os_reason(exc: OSError) -> str:
    """Why an OSError happened, in a few words, without repeating the path it names."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return "a file stands where a folder belongs"
    return (exc.strerror or type(exc).__name__).lower()
