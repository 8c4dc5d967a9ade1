"""Budgets in dollars: a request that would pass one is refused before anything is sent.

    llm_notebook.settings.budget = 2.00           # dollars this session may spend
    with llm_notebook.budget.limit(0.10):         # and this block at most 10 cents
        ...
    llm_notebook.map(..., max_cost=0.50)          # a map stops once its budget is reached

A request's cost is estimated as it starts: its input tokens estimated from its length, its
output tokens from the `max_tokens` option when given, else from the mean answer of that model in
this session. The request is refused (`BudgetExceeded`, nothing sent) when what was spent, what
requests in flight may cost and its own estimate pass the limit. A model whose price is unknown
cannot be counted: it is let through with one warning saying how to price it (`set_price`).
Replayed answers cost nothing, and answers a provider batch already billed are not refused.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import warnings
import weakref
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from .errors import LLMNotebookError
from .prices import Cost, amount, cost, estimate, format_dollars, session_costs

__all__ = ["Budget", "BudgetError", "BudgetExceeded", "BudgetWarning", "active_limits", "limit",
           "planned_output_tokens", "request_estimate", "GUESSED_OUTPUT_TOKENS"]

#: Options that cap an answer's length, by the names the plugins use.
OUTPUT_CAPS = ("max_tokens", "max_output_tokens", "max_completion_tokens")


class BudgetExceeded(LLMNotebookError):
    """A request would pass a budget, so it was not sent."""


class BudgetWarning(UserWarning):
    """A budget cannot count a request (its model's price is unknown)."""


class BudgetError(LLMNotebookError, ValueError):
    """A budget that is not an amount of dollars."""


def dollars(value: Any, what: str) -> Decimal:
    """`value` as a Decimal number of dollars, or BudgetError naming `what`."""
    return amount(value, f"{what} must be dollars", BudgetError)


class Budget:
    """`limit` dollars for the requests admitted to it; `what` names it in messages."""

    def __init__(self, limit: float, what: str, *, remedy: str = "") -> None:
        self.limit = dollars(limit, what)
        self.what = what
        self.remedy = remedy
        self.reached = False
        self._spent = Decimal(0)
        self._reserved: dict[str, Decimal] = {}
        self._lock = threading.Lock()

    def spent(self) -> Decimal:
        """Dollars spent by the finished requests it admitted."""
        return self._spent

    def admit(self, response: Any, planned: Decimal) -> None:
        """Reserve `planned` dollars for `response`, or raise BudgetExceeded."""
        with self._lock:
            committed = self.spent() + sum(self._reserved.values(), Decimal(0))
            if committed + planned > self.limit:
                self.reached = True
                raise BudgetExceeded(
                    f"Not sent: this request to {response.model.model_id!r} (about "
                    f"{format_dollars(planned)}) would pass {self.what} of "
                    f"{format_dollars(self.limit)} ({format_dollars(committed)} spent or in "
                    f"flight).{' ' + self.remedy if self.remedy else ''}")
            self._reserved[response.id] = planned
        response.on_done(self._settle)

    def _settle(self, response: Any) -> None:
        with self._lock:
            self._reserved.pop(response.id, None)
            self._charge(cost(response))

    def _charge(self, spent: Cost) -> None:
        self._spent += spent.dollars or Decimal(0)

    def __repr__(self) -> str:
        return (f"<Budget {self.what}: {format_dollars(self.spent())} of "
                f"{format_dollars(self.limit)} spent>")


class _SessionBudget(Budget):
    """`settings.budget`: what the session spent is the session's costs."""

    def spent(self) -> Decimal:
        return session_costs.spent()

    def _charge(self, spent: Cost) -> None:
        pass  # already in session_costs, which the observers feed before this runs


_session = _SessionBudget(0, "the session's budget (llm_notebook.settings.budget)",
                          remedy="Raise llm_notebook.settings.budget, or set it to None for no "
                                 "limit.")
_limits: contextvars.ContextVar[tuple[Budget, ...]] = contextvars.ContextVar(
    "llm_notebook_budgets", default=())
_bound: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_warned: set[str] = set()


@contextlib.contextmanager
def limit(max_cost: float) -> Iterator[Budget]:
    """Requests started in this block (this thread or task) may spend `max_cost` dollars in all."""
    budget = Budget(max_cost, "this block's max_cost",
                    remedy="Give budget.limit() a larger max_cost.")
    token = _limits.set((*_limits.get(), budget))
    try:
        yield budget
    finally:
        _limits.reset(token)


def active_limits() -> tuple[Budget, ...]:
    """The `limit()` blocks in force here (this thread or task), outermost first: for work that
    is not one request, such as a provider batch job, to be checked against them too."""
    return _limits.get()


def bind(response: Any, budget: Budget) -> None:
    """Count `response` against `budget` wherever it starts (`map` binds its rows)."""
    _bound[response] = budget


def _budgets(response: Any) -> list[Budget]:
    from .settings import settings

    found = list(_limits.get())
    bound = _bound.pop(response, None)
    if bound is not None:
        found.append(bound)
    if settings.budget is not None:
        _session.limit = dollars(settings.budget, "llm_notebook.settings.budget")
        found.append(_session)
    return found


#: The output tokens a projection of many answers (a map's dry run, a batch job) assumes for a
#: row with no cap whose model has not answered yet this session: a guess, said to be one, so
#: that an uncapped job is not projected to cost nothing for its output.
GUESSED_OUTPUT_TOKENS = 256


def planned_output_tokens(response: Any) -> int:
    """The output tokens `response` is expected to bill: its cap option, else the mean answer of
    its model this session (0 before any)."""
    options = response.prompt.options.model_dump(exclude_unset=True)
    cap = next((options[name] for name in OUTPUT_CAPS if isinstance(options.get(name), int)), None)
    return cap if cap is not None else session_costs.mean_output_tokens(response.model.model_id)


def request_estimate(response: Any) -> Cost:
    """What `response`'s request is expected to cost (see the module's note)."""
    from .tokens import estimate_input_tokens

    return estimate(response.model, estimate_input_tokens(response.prompt),
                    planned_output_tokens(response))


def check(response: Any) -> None:
    """The start hook: refuse `response` if it would pass a budget that applies to it. An answer
    a provider batch already billed (its model's `batch_billed`) is never refused: refusing it
    would save nothing."""
    if getattr(response.model, "batch_billed", False) is True:
        return None
    budgets = _budgets(response)
    if not budgets:
        return None
    planned = request_estimate(response)
    if not planned.known:
        model = response.model.model_id
        if model not in _warned:
            _warned.add(model)
            warnings.warn(f"llm_notebook: the budget cannot count requests to {model!r}: "
                          f"{planned.source}", BudgetWarning, stacklevel=2)
        return None
    for budget in budgets:
        budget.admit(response, planned.dollars)
    return None
