"""`%load_ext llm_notebook`: the `%%llm` / `%llm` magics, thin over the Python API.

- `arguments`: reading a magic line (options, prompt, subcommands);
- `subcommands`: `%llm models`, `keys`, `usage`, ...;
- `asking`: one answer, side by side, or in the background, and how each ended;
- `question_marks`, `terminal_values`: what the extension changes in IPython itself.

Loading registers the magics, keeps `?` at the end of a `%llm` line for the prompt, and starts
remembering displayed images for `@plot`; it imports no plugin, no httpx and no pillow.
"""

from __future__ import annotations

from . import question_marks
from .llm_magics import LLMMagics
from .terminal_values import QuietStreamedValues

__all__ = ["LLMMagics", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython) -> None:
    if getattr(ipython, "_llm_notebook_magics", None) is not None:
        return
    magics = LLMMagics(shell=ipython)
    ipython.register_magics(magics)
    magics.plots.install(ipython)
    question_marks.install(ipython)
    magics.quiet_values = QuietStreamedValues()
    magics.quiet_values.install(ipython)
    ipython._llm_notebook_magics = magics


def unload_ipython_extension(ipython) -> None:
    magics = getattr(ipython, "_llm_notebook_magics", None)
    if magics is None:
        return
    magics.plots.uninstall()
    magics.quiet_values.uninstall()
    question_marks.uninstall(ipython)
    ipython.magics_manager.magics["line"].pop("llm", None)
    ipython.magics_manager.magics["cell"].pop("llm", None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
    del ipython._llm_notebook_magics
