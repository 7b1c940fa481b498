"""Seed the bundled price table into Price rows, where admins see it and override it.

A seeded row has ``source="bundled"`` and is named by its price-table key (``gpt-4o-mini``,
``azure/gpt-4o``). Seeding again updates the bundled rows whose prices changed and creates the new
ones; it never touches an admin's row (any other source) and never deletes a bundled row whose model
left the table, which would price that model's requests at zero.

A row can hold six prices. Image models billed by image tokens (gpt-image) and images priced per
pixel without a size in their key are left to the price table, which ``billing.pricing`` falls back
to: a row holding only part of their prices would shadow the table's full entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from billing.costs import PER_IMAGE
from billing.models import Price
from billing.pricing import BUNDLED, PIXEL_PRICES, PRICE_COLUMNS, prices_changed, table_image_price
from providers import price_table

SEEDED_MODES = frozenset({"chat", "completion", "embedding", "image_generation"})
TOKEN_COLUMNS = tuple(name for name in PRICE_COLUMNS if name != PER_IMAGE)
# SQLite keeps 15 significant digits (Django reads decimals back at that precision); the table's
# longer values are float artefacts (0.000015000020000000002). Stored at 15 digits, a price reads
# back equal on SQLite and PostgreSQL alike, so a second seeding finds nothing to change.
_SIGNIFICANT = Context(prec=15)
_PLACES = Decimal(1).scaleb(-Price._meta.get_field(PER_IMAGE).decimal_places)
_BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class PriceSeedResult:
    created: int
    updated: int
    unchanged: int


def _stored(value: Decimal) -> Decimal:
    return _SIGNIFICANT.create_decimal(value).quantize(_PLACES)


def bundled_price(key: str, entry: dict[str, Any]) -> dict[str, Decimal] | None:
    """Return the row prices of one price-table entry, or None if a row cannot price that model."""
    mode = entry.get("mode")
    if mode not in SEEDED_MODES:
        return None
    prices = {name: entry[name] for name in TOKEN_COLUMNS if name in entry}
    if mode == "image_generation":
        if "output_cost_per_image_token" in entry:
            return None  # billed by image tokens: a row has no column for them
        per_image = table_image_price(key, entry)
        if per_image is None and PIXEL_PRICES & entry.keys():
            return None  # priced per pixel, with no size in its key to price an image at
    else:
        per_image = entry.get(PER_IMAGE)  # images a chat model generates (an input image is not this)
    if per_image is not None:
        prices[PER_IMAGE] = per_image
    return {name: _stored(value) for name, value in prices.items()} or None


def bundled_prices() -> dict[str, dict[str, Any]]:
    """Return the fields of the bundled row of every price-table model a row can price, by table key."""
    rows = {}
    # providers.price_table has no public way to walk the table yet: read its loaded table.
    for key, entry in price_table._table().items():
        prices = bundled_price(key, entry)
        if prices is not None:
            rows[key] = {
                "provider": entry.get("provider", ""),
                "mode": entry["mode"],
                **{name: prices.get(name) for name in PRICE_COLUMNS},
            }
    return rows


def prices_seed_rows(*, price_model: type[models.Model]) -> PriceSeedResult:
    """Create and update the bundled rows of ``price_model`` (the data migration passes its historical one).

    Three queries and a few batches: read the bundled rows, create the missing, update the changed.
    """
    wanted = bundled_prices()
    existing: dict[str, Any] = {}
    for row in price_model.objects.filter(source=BUNDLED, deployment_id="").order_by("id"):
        existing.setdefault(row.model, row)
    now = timezone.now()
    created, changed = [], []
    changed_fields = {"updated_at"}
    for model, fields in wanted.items():
        row = existing.get(model)
        if row is None:
            created.append(price_model(model=model, source=BUNDLED, **fields))
            continue
        differences = {name: value for name, value in fields.items() if getattr(row, name) != value}
        if differences:
            for name, value in differences.items():
                setattr(row, name, value)
            row.updated_at = now
            changed.append(row)
            changed_fields.update(differences)
    price_model.objects.bulk_create(created, batch_size=_BATCH_SIZE)
    # Only the columns that changed somewhere: bulk_update compiles a CASE per column and row.
    price_model.objects.bulk_update(changed, sorted(changed_fields), batch_size=_BATCH_SIZE)
    return PriceSeedResult(
        created=len(created), updated=len(changed), unchanged=len(wanted) - len(created) - len(changed)
    )


def prices_seed() -> PriceSeedResult:
    """Create or update a bundled Price row for every priced model of the bundled table.

    Idempotent; admins' rows are never touched. Every instance reads the prices again afterwards.
    """
    with transaction.atomic():
        result = prices_seed_rows(price_model=Price)
        # bulk_create and bulk_update send no post_save: invalidate here.
        transaction.on_commit(prices_changed)
    return result
