"""In terminal IPython, an answer that has just streamed gets no empty `Out[n]:` after it.

IPython prints the `Out[n]:` prompt before it asks the value how to show itself, so a value
that shows nothing (it streamed already) still leaves the prompt behind. In a terminal the
display hook is wrapped: such a value is still stored (`_`, `Out[n]`, the cell's result) but
not printed. Kernels send no output for a value that shows nothing, so they are left alone.
"""

from __future__ import annotations

from typing import Any


class QuietStreamedValues:
    def __init__(self) -> None:
        self._shell: Any = None
        self._original: Any = None

    def install(self, shell: Any) -> None:
        if self._shell is not None or getattr(shell, "kernel", None) is not None:
            return
        trap, displayhook = shell.display_trap, shell.displayhook
        original = trap.hook

        def hook(result: Any = None) -> None:
            shown_in = getattr(result, "shown_in", None)
            if callable(shown_in) and shown_in(shell.execution_count):
                displayhook.update_user_ns(result)
                displayhook.fill_exec_result(result)
                return
            original(result)

        self._shell, self._original = shell, original
        trap.hook = hook

    def uninstall(self) -> None:
        if self._shell is not None:
            self._shell.display_trap.hook = self._original
            self._shell = self._original = None
