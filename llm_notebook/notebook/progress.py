"""How `map` shows its progress: a bar updated in place in a notebook, tqdm in a terminal.

In a kernel the bar is not a widget but one display (text/plain and text/html) updated by
display id, so it needs no widget manager, and a saved notebook shows its last state (a finished
map's summary) in every reader, with or without a kernel.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any

#: Least seconds between two updates of the bar (the last one always goes out).
MIN_INTERVAL = 0.2
BAR_WIDTH = 20


def _seconds(elapsed: float) -> str:
    return f"{elapsed:.1f} s" if elapsed < 60 else f"{int(elapsed // 60)} min {elapsed % 60:.0f} s"


class NotebookProgress:
    """`label: done/total` with a bar, failures and time, in one display updated in place."""

    def __init__(self, total: int, label: str, *, unit: str = "prompts") -> None:
        from IPython.display import DisplayHandle

        self.total, self.label, self.unit = total, label, unit
        self.done = self.failed = 0
        self._started = self._shown_at = time.monotonic()
        self._handle = DisplayHandle()
        self._handle.display(self.bundle(), raw=True)

    def update(self, done: int, failed: int) -> None:
        """`done` items have finished, `failed` of them without an answer."""
        self.done, self.failed = done, failed
        now = time.monotonic()
        if done < self.total and now - self._shown_at < MIN_INTERVAL:
            return
        self._shown_at = now
        self._handle.update(self.bundle(), raw=True)

    def close(self, *, interrupted: bool = False, outcome: str = "") -> None:
        """The final state: the summary a saved notebook keeps, ending in `outcome` (see
        `outcome_line`)."""
        self._handle.update(self.bundle(final=True, interrupted=interrupted, outcome=outcome),
                            raw=True)

    def summary(self, *, final: bool = False, interrupted: bool = False, outcome: str = "") -> str:
        elapsed = _seconds(time.monotonic() - self._started)
        failed = f" · {self.failed} failed" if self.failed else ""
        tail = f" · {outcome}" if outcome else ""
        if interrupted:
            return (f"{self.label}: interrupted with {self.done} of {self.total} {self.unit} "
                    f"done{failed} · {elapsed}{tail}")
        if final:
            return (f"{self.label}: {self.done} of {self.total} {self.unit} done{failed} in "
                    f"{elapsed}{tail}")
        return f"{self.label}: {self.done}/{self.total} {self.unit}{failed} · {elapsed}"

    def bundle(self, *, final: bool = False, interrupted: bool = False,
               outcome: str = "") -> dict[str, Any]:
        text = self.summary(final=final, interrupted=interrupted, outcome=outcome)
        filled = round(BAR_WIDTH * self.done / self.total) if self.total else BAR_WIDTH
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        return {
            "text/plain": f"{bar} {text}",
            "text/html": (f'<div class="llm-map-progress"><progress value="{self.done}" '
                          f'max="{max(self.total, 1)}"></progress> '
                          f"<span>{html.escape(text)}</span></div>"),
        }


class TerminalProgress:
    """tqdm's text bar, behind the same `update` and `close`."""

    def __init__(self, total: int, label: str, *, unit: str = "prompts") -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=label, unit=unit.removesuffix("s"))

    def update(self, done: int, failed: int) -> None:
        if failed:
            self._bar.set_postfix(failed=failed, refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self, *, interrupted: bool = False, outcome: str = "") -> None:
        if outcome:
            self._bar.set_postfix_str(outcome, refresh=True)
        self._bar.close()


def outcome_line(replayed: int, sent: int, cost: Any = None) -> str:
    """"1,200 replayed, 800 sent · $0.41": how a map's rows were answered, and what it spent
    (a `prices.Cost`; "cost unknown" when no price is known, since a bare "—" ends a line
    unlabelled)."""
    line = f"{replayed:,} replayed, {sent:,} sent"
    if cost is None:
        return line
    return f"{line} · {cost if cost.known else 'cost unknown'}"


def progress_display(total: int, label: str, *,
                     unit: str = "prompts") -> NotebookProgress | TerminalProgress:
    """The bar for where the code runs: a kernel with a frontend, or a terminal; `unit` names
    what is counted (plural)."""
    ipython = sys.modules.get("IPython")  # not imported: no kernel, and no need to load it
    if ipython is not None:
        from .render import in_kernel

        if in_kernel(ipython.get_ipython()):
            return NotebookProgress(total, label, unit=unit)
    return TerminalProgress(total, label, unit=unit)
