"""The prices a request is charged at.

``price_for`` answers on the request path from an in-process snapshot of every ``Price`` row (a few
thousand, loaded at once and grouped for dictionary look-ups), so steady state makes no database
query. It is kept like ``llm_gateway.lookups``' snapshots, under a generation of its own: a write to a
price or a deployment clears this process's snapshot at once and writes a new random value to
``PRICE_GENERATION_CACHE_KEY`` in the shared Django cache; other instances compare it every
``CONFIG_REFRESH_SECONDS`` and reload when it changed, or when their snapshot is older than
``SNAPSHOT_MAX_AGE`` (the backstop for a raw SQL write). A key or team change does not reload prices.

Look-up order for a model served by a deployment, at a point in time:

1. a ``Price`` row for that deployment;
2. an admin's row (any source but ``bundled``) for the (provider, model), else for the model: provider
   left blank (any provider) first, then another provider's;
3. the deployment's own prices (LiteLLM's ``model_info`` or ``litellm_params``:
   ``input_cost_per_token``, ``output_cost_per_token``...) laid over the price of its ``base_model``
   (or of its model); a ``base_model`` alone is priced in its place;
4. a bundled row (seeded from the price table by ``prices_seed``), as in step 2;
5. the bundled price table itself (``providers.price_table``: the models no row can price);
6. zero, with ``{"source": "unpriced"}`` in the ledger and a warning logged once per model: an
   unknown model must not make requests fail.

Bundled rows come after the deployment's own prices because they are the price table, seeded: a
deployment's configured price must beat the list price, and an admin's row must beat both. In steps 1,
2 and 4 only rows whose ``[effective_from, effective_to)`` contains the time count; among them the
latest ``effective_from`` wins. Model names match the way the price table's do: ``provider/model``,
then ``model``, then ``model`` without a known provider prefix.

What the usage then costs at the quote's prices is ``billing.costs``'.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import connections, transaction
from django.db.models.signals import post_delete, post_save

from billing.costs import (
    CACHE_READ,
    CACHE_WRITE,
    INPUT,
    OUTPUT,
    PER_IMAGE,
    REASONING,
    UNPRICED,
    ZERO,
    PriceQuote,
    quote_make,
)
from billing.models import Price
from llm_gateway.conf import gateway_setting
from llm_gateway.lookups import SNAPSHOT_MAX_AGE
from llm_gateway.models import Deployment
from providers.price_table import PRICE_FIELDS, model_info, provider_names

logger = logging.getLogger(__name__)

PRICE_GENERATION_CACHE_KEY = "billing:price-generation"

BUNDLED = "bundled"  # Price.source of the rows seeded from the price table; anything else is an admin's
# The Price model's price columns, in the order the admin shows them.
PRICE_COLUMNS = (INPUT, OUTPUT, CACHE_READ, CACHE_WRITE, REASONING, PER_IMAGE)
PIXEL_PRICES = frozenset({"input_cost_per_pixel", "output_cost_per_pixel"})
_IMAGE_SIZE = re.compile(r"(?:^|/)(\d+)-x-(\d+)/")
_SINCE_ALWAYS = datetime.min.replace(tzinfo=UTC)
_UNTIL_ALWAYS = datetime.max.replace(tzinfo=UTC)
MAX_ANSWERS = 100_000  # remembered look-ups; keyed by deployments' models, a bound only for safety


@dataclass(frozen=True, slots=True)
class _PricedRow:
    """One Price row as the look-up needs it, its quote built once."""

    id: int
    provider: str
    effective_from: datetime | None
    effective_to: datetime | None
    quote: PriceQuote

    def covers(self, at: datetime) -> bool:
        return (self.effective_from is None or self.effective_from <= at) and (
            self.effective_to is None or at < self.effective_to
        )


def _rank(row: _PricedRow) -> tuple[datetime, int]:
    """Order rows covering the same time: the latest start first, then the newest row."""
    return row.effective_from or _SINCE_ALWAYS, row.id


def _any_provider_rank(row: _PricedRow) -> tuple[bool, datetime, int]:
    """Order one model's rows: a row meant for any provider (blank) before another provider's."""
    return row.provider == "", *_rank(row)


@dataclass(frozen=True, slots=True)
class _RowGroups:
    """Price rows grouped by (provider, model) and by model, each group best first."""

    by_provider_model: dict[tuple[str, str], tuple[_PricedRow, ...]]
    by_model: dict[str, tuple[_PricedRow, ...]]

    @classmethod
    def of(cls, rows: dict[str, list[_PricedRow]]) -> _RowGroups:
        by_provider_model: dict[tuple[str, str], list[_PricedRow]] = {}
        for model, group in rows.items():
            for row in group:
                if row.provider:
                    by_provider_model.setdefault((row.provider, model), []).append(row)
        return cls(
            by_provider_model={
                name: tuple(sorted(group, key=_rank, reverse=True))
                for name, group in by_provider_model.items()
            },
            by_model={
                name: tuple(sorted(group, key=_any_provider_rank, reverse=True))
                for name, group in rows.items()
            },
        )


@dataclass(frozen=True, slots=True)
class _DeploymentPrices:
    prices: dict[str, Decimal]
    base_model: str


@dataclass(frozen=True)
class PriceIndex:
    """Every Price row, grouped for the look-up order, and the deployments that carry prices."""

    by_deployment: dict[str, tuple[_PricedRow, ...]]
    admin: _RowGroups
    bundled: _RowGroups
    deployments: dict[str, _DeploymentPrices]
    # Every row's effective_from and effective_to, sorted: between two of them no row starts or ends,
    # so a look-up's answer holds for that whole window.
    boundaries: tuple[datetime, ...] = ()
    # Bundled-table quotes, filled as models are asked for (the table does not change while running).
    table_quotes: dict[tuple[str, str], PriceQuote | None] = field(default_factory=dict)
    # Answers already given: (model, provider, deployment) -> (quote, window start, window end).
    answers: dict[tuple[str, str, str], tuple[PriceQuote, datetime, datetime]] = field(default_factory=dict)

    def window(self, at: datetime) -> tuple[datetime, datetime]:
        """Return the window between the boundaries around ``at``, in which every row covers it or not."""
        position = bisect.bisect_right(self.boundaries, at)
        start = self.boundaries[position - 1] if position else _SINCE_ALWAYS
        end = self.boundaries[position] if position < len(self.boundaries) else _UNTIL_ALWAYS
        return start, end


def _tidy(value: Decimal) -> Decimal:
    # The database hands back 18 decimal places; drop the trailing zeros, but keep 10 as 10, not 1E+1.
    value = value.normalize()
    return value.quantize(Decimal(1)) if value.as_tuple().exponent > 0 else value


def _custom_price(value: Any) -> Decimal | None:
    """Return a price typed into a deployment's JSON (number or string), or None if it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        # repr() of a float is the shortest exact spelling of what was typed; Decimal(float) is not.
        price = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    return price if price.is_finite() and price >= 0 else None


def _deployment_prices(model_id: str, info: Any, params: Any) -> _DeploymentPrices | None:
    info, params = (info if isinstance(info, dict) else {}), (params if isinstance(params, dict) else {})
    prices: dict[str, Decimal] = {}
    # LiteLLM's config may put prices in either; model_info, the documented place, wins.
    for source in (params, info):
        for name in PRICE_FIELDS & source.keys():
            price = _custom_price(source[name])
            if price is None:
                logger.warning("Deployment %s: %s=%r is not a price; ignored.", model_id, name, source[name])
            else:
                prices[name] = price
    base_model = info.get("base_model") or params.get("base_model") or ""
    if not prices and not base_model:
        return None
    return _DeploymentPrices(prices=prices, base_model=str(base_model))


def price_index_load() -> PriceIndex:
    """Read every Price row and every deployment's own prices from the database (two queries)."""
    by_deployment: dict[str, list[_PricedRow]] = {}
    admin: dict[str, list[_PricedRow]] = {}
    bundled: dict[str, list[_PricedRow]] = {}
    boundaries: set[datetime] = set()
    columns = ("id", "model", "provider", "deployment_id", "source", "effective_from", "effective_to")
    for values in Price.objects.order_by().values_list(*columns, *PRICE_COLUMNS):
        price_id, model, provider, deployment_id, source, effective_from, effective_to = values[:7]
        prices = {
            name: _tidy(value)
            for name, value in zip(PRICE_COLUMNS, values[7:], strict=True)
            if value is not None
        }
        origin = {"source": source, "price_id": str(price_id), "model": model}
        if deployment_id:
            origin["deployment_id"] = deployment_id
        row = _PricedRow(
            id=price_id,
            provider=provider,
            effective_from=effective_from,
            effective_to=effective_to,
            quote=quote_make(prices, **origin),
        )
        boundaries.update(moment for moment in (effective_from, effective_to) if moment is not None)
        if deployment_id:
            by_deployment.setdefault(deployment_id, []).append(row)
        else:
            (bundled if source == BUNDLED else admin).setdefault(model, []).append(row)
    deployments = {}
    rows = Deployment.objects.order_by().values_list("model_id", "model_info", "extra_params")
    for model_id, info, params in rows:
        prices = _deployment_prices(model_id, info, params)
        if prices is not None:
            deployments[model_id] = prices
    return PriceIndex(
        by_deployment={
            name: tuple(sorted(group, key=_rank, reverse=True)) for name, group in by_deployment.items()
        },
        admin=_RowGroups.of(admin),
        bundled=_RowGroups.of(bundled),
        deployments=deployments,
        boundaries=tuple(sorted(boundaries)),
    )


def _price_index_load_in_thread() -> PriceIndex:
    try:
        return price_index_load()
    finally:
        connections.close_all()  # this helper thread's own connections


def _price_index_load_anywhere() -> PriceIndex:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return price_index_load()
    # Called on an event loop's thread (the request path prices synchronously), where the ORM refuses
    # to run: read in a helper thread. The loop waits for it once per price change, a few tens of
    # milliseconds for a few thousand rows; ``aprice_for`` avoids even that.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="price-index") as pool:
        return pool.submit(_price_index_load_in_thread).result()


class PriceBook:
    """This process's price index and the configuration generation it was read at."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._index: PriceIndex | None = None
        self._generation: Any = None
        self._checked_at = float("-inf")
        self._taken_at = float("-inf")
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget the index: the next look-up reads the prices again."""
        self._index = None

    def is_fresh(self) -> bool:
        """Return True if the index may be used without asking the shared cache."""
        return self._index is not None and self.clock() - self._checked_at < gateway_setting(
            "CONFIG_REFRESH_SECONDS"
        )

    def index(self) -> PriceIndex:
        """Return the index, read again if it is missing, or stale by the shared generation or its age."""
        index = self._index
        if index is not None and self.is_fresh():
            return index
        with self._lock:
            now = self.clock()
            # Read the generation before the rows: a change landing in between makes the next check
            # reload, never leaves newer rows unnoticed.
            generation = cache.get(PRICE_GENERATION_CACHE_KEY)
            self._checked_at = now
            index = self._index
            # The age limit is a backstop for a change whose signal never came (raw SQL, an evicted key).
            if index is None or generation != self._generation or now - self._taken_at > SNAPSHOT_MAX_AGE:
                index = _price_index_load_anywhere()
                self._index, self._generation, self._taken_at = index, generation, now
            return index

    async def aindex(self) -> PriceIndex:
        """Return the index like ``index``, reading the database (when it must) off the event loop."""
        index = self._index
        if index is not None and self.is_fresh():
            return index
        return await sync_to_async(self.index)()


book = PriceBook()


def _candidate_names(model: str, provider: str) -> list[str]:
    """Return the names a model may be priced under, as ``providers.price_table`` looks them up."""
    names = [f"{provider}/{model}", model] if provider else [model]
    prefix, _, rest = model.partition("/")
    # Strip only a known provider prefix: "meta-llama/Llama-3-8b" must not turn into "Llama-3-8b".
    if rest and (prefix == provider or prefix in provider_names()):
        names.append(rest)
    return list(dict.fromkeys(names))


def _first_covering(rows: Iterable[_PricedRow], at: datetime) -> _PricedRow | None:
    return next((row for row in rows if row.covers(at)), None)


def _best(groups: Iterable[tuple[_PricedRow, ...]], at: datetime, key: Callable) -> _PricedRow | None:
    """Return the best row covering ``at`` across the candidate names' groups (earlier names win ties)."""
    found = []
    for position, rows in enumerate(groups):
        row = _first_covering(rows, at)
        if row is not None:
            found.append((key(row), -position, row))
    return max(found, key=lambda item: item[:2])[2] if found else None


def _row_for(groups: _RowGroups, model: str, provider: str, at: datetime) -> _PricedRow | None:
    """Return the row for (provider, model), else for the model with any provider, covering ``at``."""
    names = _candidate_names(model, provider)
    if provider:
        row = _best((groups.by_provider_model.get((provider, name), ()) for name in names), at, _rank)
        if row is not None:
            return row
    return _best((groups.by_model.get(name, ()) for name in names), at, _any_provider_rank)


def table_image_price(key: str, entry: Mapping[str, Any]) -> Decimal | None:
    """Return what one image of a price-table entry costs, as ``providers.pricing.image_cost`` has it.

    The per-image price, else ``input_cost_per_image``, else the per-pixel prices at the size in the
    entry's key (``hd/1024-x-1024/dall-e-3``); None when the entry has none of these.
    """
    per_image = entry.get(PER_IMAGE, entry.get("input_cost_per_image"))
    if per_image is not None or not PIXEL_PRICES & entry.keys():
        return per_image
    size = _IMAGE_SIZE.search(key)
    if size is None:
        return None
    pixel_price = sum((entry.get(name, ZERO) for name in sorted(PIXEL_PRICES)), ZERO)
    return int(size[1]) * int(size[2]) * pixel_price


def _table_quote(index: PriceIndex, model: str, provider: str) -> PriceQuote | None:
    cache_key = (model, provider)
    if cache_key not in index.table_quotes:
        entry = model_info(model, provider or None)
        prices = {name: entry[name] for name in sorted(PRICE_FIELDS & entry.keys())} if entry else {}
        if entry and entry.get("mode") == "image_generation" and PER_IMAGE not in prices:
            per_image = table_image_price(entry["key"], entry)
            if per_image is not None:
                prices[PER_IMAGE] = per_image
        index.table_quotes[cache_key] = (
            quote_make(prices, source="price_table", model=entry["key"]) if prices else None
        )
    return index.table_quotes[cache_key]


def _list_quote(index: PriceIndex, model: str, provider: str, at: datetime) -> PriceQuote | None:
    """Return the quote of an admin row, else a bundled row, else the price table (steps 2, 4 and 5)."""
    row = _row_for(index.admin, model, provider, at) or _row_for(index.bundled, model, provider, at)
    return row.quote if row is not None else _table_quote(index, model, provider)


def _deployment_quote(
    index: PriceIndex, deployment_id: str, model: str, provider: str, at: datetime
) -> PriceQuote | None:
    own = index.deployments.get(deployment_id)
    if own is None:
        return None
    base = _list_quote(index, own.base_model, provider, at) if own.base_model else None
    if not own.prices:
        if base is None:
            return None
        return PriceQuote(
            prices=base.prices,
            snapshot={**base.snapshot, "base_model": own.base_model, "deployment_id": deployment_id},
        )
    if base is None:
        base = _list_quote(index, model, provider, at)
    origin = {"source": "model_info", "deployment_id": deployment_id}
    if own.base_model:
        origin["base_model"] = own.base_model
    return quote_make({**(base.prices if base else {}), **own.prices}, **origin)


_warned_unpriced: set[tuple[str, str]] = set()


def _unpriced(model: str, provider: str) -> PriceQuote:
    if (provider, model) not in _warned_unpriced:
        _warned_unpriced.add((provider, model))
        logger.warning(
            "No price for model %r (provider %r): its requests are recorded at zero cost. Add a price in "
            "the admin (Billing > Prices) or input_cost_per_token/output_cost_per_token in the "
            "deployment's model_info.",
            model,
            provider,
        )
    return UNPRICED


def quote_from_index(
    index: PriceIndex, model: str, provider: str, deployment_id: str, at: datetime
) -> PriceQuote:
    """Return the quote for a model on a deployment at ``at``, from ``index`` (see the module's order)."""
    key = (model, provider, deployment_id)
    answer = index.answers.get(key)
    if answer is not None and answer[1] <= at < answer[2]:
        return answer[0]
    quote = _quote_resolve(index, model, provider, deployment_id, at)
    if len(index.answers) >= MAX_ANSWERS:
        index.answers.clear()
    index.answers[key] = (quote, *index.window(at))
    return quote


def _quote_resolve(
    index: PriceIndex, model: str, provider: str, deployment_id: str, at: datetime
) -> PriceQuote:
    row = _first_covering(index.by_deployment.get(deployment_id, ()), at) if deployment_id else None
    row = row or _row_for(index.admin, model, provider, at)
    if row is not None:
        return row.quote
    return (
        _deployment_quote(index, deployment_id, model, provider, at)
        or _list_quote(index, model, provider, at)
        or _unpriced(model, provider)
    )


def price_for(model: str, provider: str, deployment_id: str, at: datetime) -> PriceQuote:
    """Return the prices to charge for ``model`` at ``provider``, served by ``deployment_id``, at ``at``.

    ``at`` is an aware datetime (the request's start). Never raises for an unknown model: that prices
    at zero, marked ``unpriced``. Reads the database only when this process has no current index.
    """
    return quote_from_index(book.index(), model, provider, deployment_id, at)


async def aprice_for(model: str, provider: str, deployment_id: str, at: datetime) -> PriceQuote:
    """Return ``price_for``'s quote, reading the database (when it must) without blocking the event loop."""
    return quote_from_index(await book.aindex(), model, provider, deployment_id, at)


def prices_changed() -> None:
    """Forget this process's prices and tell the other instances to read theirs again."""
    book.clear()
    # A fresh random value rather than an increment, as llm_gateway.lookups.config_changed does.
    cache.set(PRICE_GENERATION_CACHE_KEY, uuid.uuid4().hex, timeout=None)


def _written(**_: object) -> None:
    # After the commit, so that no instance re-reads the old row in between.
    transaction.on_commit(prices_changed)


def connect() -> None:
    """Connect the invalidation hooks: Price and Deployment writes (idempotent, by dispatch_uid)."""
    for model in (Price, Deployment):
        post_save.connect(_written, sender=model, dispatch_uid=f"prices-changed-save-{model.__name__}")
        post_delete.connect(_written, sender=model, dispatch_uid=f"prices-changed-delete-{model.__name__}")
