"""What answers cost in dollars: genai-prices' data for hosted models, your prices for the rest.

    llm_notebook.prices.cost(response)          # Cost: str() is "$0.0042", or "—" when unknown
    llm_notebook.set_price("llama3.2", input=0, output=0)   # dollars per million tokens
    llm_notebook.prices.session_costs.by_model() # this session's spend by model

Prices come from, in order: a price you set (`set_price`, kept in `prices.json` in the user
directory, for local and unknown models); then genai-prices, the price data pydantic maintains,
bundled with the package (it is never updated over the network here). A model is found there by
the account it bills (its key name: `openai`, `anthropic`, ...), else by its endpoint's URL,
else by its model id alone. A model found nowhere has an unknown cost, shown as "—": never a
guess. genai-prices is imported on the first price lookup, not before.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import math
import os
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .userfiles import JsonFile

__all__ = ["BATCH_DISCOUNT", "Bill", "Cost", "Rates", "SessionCosts", "batch_cost", "cost",
           "estimate", "format_dollars", "remove_price", "session_costs", "set_price"]

PRICES_FILE = "prices.json"
MILLION = Decimal(1_000_000)

user_prices_file = JsonFile(PRICES_FILE)
_version = 0  # bumped by set_price, so memoised prices are looked up again


@dataclass(frozen=True)
class Cost:
    """Dollars (a Decimal), or None when the price is unknown; `source` says where the price came
    from, or why it is unknown. `complete` is False for a sum that left out unknown costs."""

    dollars: Decimal | None = None
    source: str = ""
    estimated: bool = False
    complete: bool = True

    @property
    def known(self) -> bool:
        return self.dollars is not None

    def __str__(self) -> str:
        text = format_dollars(self.dollars)
        return text if self.complete or self.dollars is None else f"{text} + unknown"

    def __add__(self, other: Cost) -> Cost:
        if self.dollars is None and other.dollars is None:
            return Cost(None, self.source or other.source, self.estimated or other.estimated)
        known = [c.dollars for c in (self, other) if c.dollars is not None]
        return Cost(sum(known, Decimal(0)), "", self.estimated or other.estimated,
                    complete=(self.complete and other.complete and len(known) == 2))


def format_dollars(dollars: Decimal | float | None) -> str:
    """"$1,234.57", "$0.045", "$0.0042" (two significant digits under a dollar); "—" for None."""
    if dollars is None:
        return "—"
    value = float(dollars)
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    decimals = max(2, 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"${whole}.{fraction}"


@dataclass(frozen=True)
class Rates:
    """Dollars per million tokens; cached input defaults to the input price."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None

    def charge(self, counts: dict[str, int]) -> Decimal:
        cached = counts.get("cache_read_tokens", 0)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return ((counts.get("input_tokens", 0) - cached) * self.input + cached * cached_rate
                + counts.get("output_tokens", 0) * self.output) / MILLION


@dataclass(frozen=True)
class Bill:
    """What a response is charged for, taken cheaply as it finishes and priced when asked."""

    model: str
    usage: Any  # responses.Usage
    resolved_model: str | None = None
    account: str | None = None  # the key name: who bills the answer
    base_url: str | None = None
    when: _dt.datetime | None = None
    #: Answered through a provider's batch engine, so billed at its batch price (a model says so
    #: with a true `batch_billed` attribute).
    batch: bool = False

    @classmethod
    def of(cls, response: Any) -> Bill:
        model = response.model
        return cls(model=model.model_id, usage=response.recorded_usage(),
                   resolved_model=response.resolved_model, account=model.needs_key,
                   base_url=_base_url(model), when=response.started_utc,
                   batch=getattr(model, "batch_billed", False) is True)

    @classmethod
    def planned(cls, model: Any, usage: Any) -> Bill:
        """The bill a request to `model` with this usage would make now (for estimates)."""
        return cls(model=model.model_id, usage=usage, account=model.needs_key,
                   base_url=_base_url(model))

    def cost(self, *, estimated: bool = False) -> Cost:
        standard = self._standard_cost(estimated)
        return self._batch_cost(standard, estimated) if self.batch else standard

    def _standard_cost(self, estimated: bool) -> Cost:
        usage = self.usage
        if usage.input is None and usage.output is None:
            return Cost(None, "the model reported no token counts", estimated)
        counts = token_counts(usage)
        rates = _user_rates(self.model) or (_user_rates(self.resolved_model)
                                            if self.resolved_model else None)
        if rates is not None:
            return Cost(rates.charge(counts), "set_price", estimated)
        found = _catalogue_entry(self.model, self.resolved_model, self.account, self.base_url)
        if found is None:
            return Cost(None, f"no price known for {self.model!r}: set one with "
                              f"llm_notebook.set_price({self.model!r}, input=..., output=...)",
                        estimated)
        return _catalogue_cost(found, counts, self.when, estimated)

    def _batch_cost(self, standard: Cost, estimated: bool) -> Cost:
        """genai-prices' batch price where it has one, else `standard` less the documented
        discount; `source` says which."""
        if not standard.known:
            return standard
        if standard.source != "set_price":
            found = _catalogue_entry(self.model, self.resolved_model, self.account, self.base_url)
            batch = (_catalogue_batch_cost(found, token_counts(self.usage), self.when, estimated)
                     if found else None)
            if batch is not None:
                return batch
        share = f"{(1 - BATCH_DISCOUNT) * 100:.0f}%"
        return Cost(standard.dollars * BATCH_DISCOUNT,
                    f"{standard.source}, less the documented {share} batch discount", estimated)


def _base_url(model: Any) -> str | None:
    try:
        url = getattr(model, "base_url", None)
    except Exception:  # a property that cannot tell: the model is priced without it
        return None
    return url if isinstance(url, str) else None


def cost(response: Any) -> Cost:
    """What `response` cost (its usage so far, priced at its start time); a replayed answer
    cost nothing (its `replayed["saved_cost"]` says what it saved)."""
    if getattr(response, "replayed", None) is not None:
        return Cost(Decimal(0), "replayed from the answer cache")
    return Bill.of(response).cost()


def estimate(model: Any, input_tokens: int | None, output_tokens: int | None = 0) -> Cost:
    """What a request to `model` with these token counts would cost now (an estimate)."""
    from .responses import Usage

    return Bill.planned(model, Usage(input=input_tokens, output=output_tokens)).cost(estimated=True)


#: The share of the standard price the providers' batch engines charge, as OpenAI and Anthropic
#: document it, for models whose price data has no batch price of its own.
BATCH_DISCOUNT = Decimal("0.5")


def batch_cost(model: Any, usage: Any, *, when: _dt.datetime | None = None,
               estimated: bool = False) -> Cost:
    """What `usage` costs through `model`'s provider batch engine (OpenAI's Batch API,
    Anthropic's Message Batches): genai-prices' batch price where it has one, else the standard
    price with the documented discount applied, and `source` says which."""
    bill = dataclasses.replace(Bill.planned(model, usage), when=when, batch=True)
    return bill.cost(estimated=estimated)


def _catalogue_batch_cost(found: tuple[str, tuple[tuple[str, str], ...]], counts: dict[str, int],
                          when: _dt.datetime | None, estimated: bool) -> Cost | None:
    """genai-prices' own batch price, or None when it has none for the model at `when`."""
    from genai_prices import Usage, calc_price

    reference, where = found
    moment = when or _dt.datetime.now(_dt.timezone.utc)
    try:
        price = calc_price(Usage(**counts), reference, genai_request_timestamp=moment,
                           price_context={"processing": "batch"}, **dict(where))
    except (LookupError, ValueError):
        return None
    variants = [variant for variant in price.model.price_variants or ()
                if variant.when.get("processing") == "batch"
                and (variant.constraint is None or variant.constraint.active(moment))]
    if not variants:
        return None
    return Cost(price.total_price, f"genai-prices batch price: {price.provider.id} "
                                   f"{price.model.id}", estimated)


def token_counts(usage: Any) -> dict[str, int]:
    """Our usage (input, output and the plugins' details) in genai-prices' terms.

    OpenAI counts cached tokens inside `prompt_tokens` (`prompt_tokens_details.cached_tokens`);
    Anthropic counts cache reads and writes beside `input_tokens`, so they are added in.
    """
    details = usage.details or {}
    prompt_details = _mapping(details.get("prompt_tokens_details"))
    completion_details = _mapping(details.get("completion_tokens_details"))
    cache_read = _count(details, "cache_read_input_tokens")
    cache_write = _count(details, "cache_creation_input_tokens")
    counts = {"input_tokens": (usage.input or 0) + cache_read + cache_write,
              "output_tokens": usage.output or 0,
              "cache_read_tokens": cache_read or _count(prompt_details, "cached_tokens")
              or _count(details, "cached_tokens"),
              "cache_write_tokens": cache_write,
              "input_audio_tokens": _count(prompt_details, "audio_tokens"),
              "output_audio_tokens": _count(completion_details, "audio_tokens")}
    return {name: value for name, value in counts.items() if value}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(details: dict[str, Any], name: str) -> int:
    value = details.get(name)
    return value if type(value) is int and value > 0 else 0


# -- your prices ------------------------------------------------------------------------------

def amount(value: Any, must_be: str, error: type[Exception] = ValueError) -> Decimal:
    """`value` as a Decimal of 0 or more, else `error("<must_be>, a number of 0 or more ...")`."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        number = Decimal("NaN")
    if isinstance(value, bool) or not number.is_finite() or number < 0:
        raise error(f"{must_be}, a number of 0 or more (got {value!r})")
    return number


def _money(name: str, value: Any) -> Decimal:
    return amount(value, f"set_price: {name} must be dollars per million tokens")


def _model_id(model: Any) -> str:
    """A model object's id, or an alias resolved to the id it names (an unknown name as it is)."""
    if not isinstance(model, str):
        return model.model_id
    from .errors import UnknownModelError
    from .plugins import registry

    try:
        return registry.resolve(model)
    except UnknownModelError:
        return model


def set_price(model: Any, *, input: float, output: float, cached_input: float | None = None) -> None:
    """Price `model` (an id, alias or model) in dollars per million tokens, for every session.

    For local models (`input=0, output=0`) and models genai-prices does not know; a price set here
    wins over genai-prices'. Kept in `prices.json` in the user directory.
    """
    global _version
    entry = {"input": str(_money("input", input)), "output": str(_money("output", output))}
    if cached_input is not None:
        entry["cached_input"] = str(_money("cached_input", cached_input))
    model_id = _model_id(model)
    user_prices_file.update(lambda prices: prices.__setitem__(model_id, entry))
    _version += 1


def remove_price(model: Any) -> bool:
    """Forget the price set for `model`; whether there was one."""
    global _version
    model_id = _model_id(model)
    removed = user_prices_file.update(lambda prices: prices.pop(model_id, None) is not None)
    _version += 1
    return removed


_read_prices: tuple[Any, dict[str, Rates]] = (None, {})


def _user_rates(model_id: str) -> Rates | None:
    """The price set for `model_id`; the file is read again only when it changed."""
    global _read_prices
    path = user_prices_file.path
    try:
        info = os.stat(path)
        stamp = (str(path), info.st_mtime_ns, info.st_size, _version)
    except OSError:
        stamp = (str(path), None, None, _version)
    if _read_prices[0] != stamp:
        _read_prices = (stamp, _parse_prices(user_prices_file.read() if stamp[1] else {}))
    return _read_prices[1].get(model_id)


def _parse_prices(data: dict[str, Any]) -> dict[str, Rates]:
    """The entries that hold valid prices (a hand-edited bad entry is left out)."""
    parsed = {}
    for model_id, entry in data.items():
        try:
            cached = entry.get("cached_input")
            parsed[model_id] = Rates(_money("input", entry["input"]), _money("output", entry["output"]),
                                     None if cached is None else _money("cached_input", cached))
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
    return parsed


# -- genai-prices ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1024)
def _catalogue_entry(model: str, resolved: str | None, account: str | None,
                     base_url: str | None) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """(model reference, provider arguments) genai-prices knows this model by, or None.

    The account that bills the answer decides the provider (a proxy in front of OpenAI still
    bills OpenAI's prices); without one, the endpoint's URL; without that, the model id alone.
    """
    try:
        from genai_prices import data_snapshot
    except ImportError:  # Python 3.10, which genai-prices no longer supports: your prices only
        return None
    snapshot = data_snapshot.get_snapshot()
    if account and data_snapshot.find_provider_by_id(snapshot.providers, account) is not None:
        where: tuple[tuple[str, str], ...] = (("provider_id", account),)
    elif base_url:
        where = (("provider_api_url", base_url),)
    else:
        where = ()
    arguments = dict(where)
    for reference in dict.fromkeys(r for r in (resolved, model) if r):
        try:
            snapshot.find_provider_model(reference, None, arguments.get("provider_id"),
                                         arguments.get("provider_api_url"))
        except LookupError:
            continue
        return reference, where
    return None


def _catalogue_cost(found: tuple[str, tuple[tuple[str, str], ...]], counts: dict[str, int],
                    when: _dt.datetime | None, estimated: bool) -> Cost:
    from genai_prices import Usage, calc_price

    reference, where = found
    try:
        price = calc_price(Usage(**counts), reference, genai_request_timestamp=when, **dict(where))
    except (LookupError, ValueError) as exc:
        return Cost(None, f"genai-prices could not price {reference!r} ({exc})", estimated)
    return Cost(price.total_price, f"genai-prices: {price.provider.id} {price.model.id}", estimated)


# -- the session -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelCost:
    """One model's spend this session, and what replayed answers saved."""

    model: str
    cost: Cost
    saved: Cost
    responses: int
    replayed: int


class SessionCosts:
    """The bills of every response finished this session, priced when asked (each once, and all
    again after `set_price`), so finishing an answer never waits on the price data."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def record(self, response: Any) -> None:
        """Add one finished response (replayed ones count as saved, not spent)."""
        bill = Bill.of(response)
        with self._lock:
            self._bills.append((bill, response.replayed is not None))
            if bill.usage.output is not None:
                total, count = self._outputs.get(bill.model, (0, 0))
                self._outputs[bill.model] = (total + bill.usage.output, count + 1)

    def reset(self) -> None:
        with self._lock:
            self._bills: list[tuple[Bill, bool]] = []
            self._outputs: dict[str, tuple[int, int]] = {}
            self._start_pricing()

    def _start_pricing(self) -> None:
        self._priced = 0
        self._priced_at = _version
        self._by_model: dict[str, list] = {}  # model: [spent, saved, responses, replayed]

    def _price_new_bills(self) -> None:
        with self._lock:
            if self._priced_at != _version:
                self._start_pricing()
            for bill, replayed in self._bills[self._priced:]:
                row = self._by_model.setdefault(bill.model, [Cost(Decimal(0)), Cost(Decimal(0)), 0, 0])
                row[1 if replayed else 0] += bill.cost()
                row[2] += 1
                row[3] += replayed
            self._priced = len(self._bills)

    def by_model(self) -> list[ModelCost]:
        """One entry per model, in the order they first answered."""
        self._price_new_bills()
        with self._lock:
            rows = [(model, *row) for model, row in self._by_model.items()]
        return [ModelCost(model, _settled(spent), _settled(saved), counted, replayed)
                for model, spent, saved, counted, replayed in rows]

    def total(self) -> Cost:
        """The session's spend (replayed answers cost nothing)."""
        total = Cost(Decimal(0))
        for entry in self.by_model():
            total = total + entry.cost
        return total

    def spent(self) -> Decimal:
        """The known part of the session's spend, in dollars (what a budget counts)."""
        return self.total().dollars or Decimal(0)

    def mean_output_tokens(self, model: str) -> int:
        """The mean output tokens of `model`'s answers this session (0 before any)."""
        total, count = self._outputs.get(model, (0, 0))
        return round(total / count) if count else 0


def _settled(cost: Cost) -> Cost:
    """A model's sum: unknown when nothing known went into it."""
    if not cost.complete and not cost.dollars:
        return Cost(None, cost.source)
    return cost


#: This session's costs; every finished response is recorded (see observers.py).
session_costs = SessionCosts()
