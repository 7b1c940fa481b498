"""Fit a usage record into its ledger row, so that no value the request path produced can keep it out.

A served request must never lose its row because one value does not fit a column: the writers store a
bounded form instead. Each bound is read from ``LedgerEntry``'s own fields:

- text: NUL characters removed (PostgreSQL refuses them in text and in jsonb), unpaired surrogates
  replaced (they cannot be encoded as UTF-8), then cut to the column's ``max_length`` characters;
- integers: clamped to the column's range (negative counts become 0);
- the cost: rounded to the column's decimal places; a cost beyond its digits (or not a number) is
  stored as the largest whole amount (or zero) and flagged in the row's ``price`` as ``unstorable_cost``, with
  the figure that did not fit, so it can be found and billed by hand;
- JSON (``price``, ``messages``, ``response``): strings and keys as text above, numbers that JSON
  or jsonb cannot hold (non-finite floats, integers past 64 bits) as strings, and anything nested
  deeper than ``MAX_JSON_DEPTH`` levels replaced by a marker string;
- the time: in UTC, within the years 1 to 9999 that both backends and Python's datetime hold.

What is still refused (a record with no time at all) is returned by the writers as rejected: logged
in full, or moved to the ledger stream's dead-letter stream; never dropped.
"""

from __future__ import annotations

import dataclasses
import decimal
import logging
import math
import operator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.db import models

from billing.models import LedgerEntry

logger = logging.getLogger(__name__)

MAX_JSON_DEPTH = 64  # orjson writes 254 levels at most; prompts are never this deep
TOO_DEEP = f"[nested deeper than {MAX_JSON_DEPTH} levels: not stored]"
UNSTORABLE_COST = "unstorable_cost"
INT64 = 2**63
# The ranges Django's backends declare for these columns (DatabaseOperations.integer_field_ranges).
INTEGER_RANGES: dict[type[models.Field], tuple[int, int]] = {
    models.PositiveSmallIntegerField: (0, 32_767),
    models.PositiveIntegerField: (0, 2_147_483_647),
    models.PositiveBigIntegerField: (0, 9_223_372_036_854_775_807),
    models.IntegerField: (-2_147_483_648, 2_147_483_647),
    models.BigIntegerField: (-9_223_372_036_854_775_808, 9_223_372_036_854_775_807),
}
_WIDE_CONTEXT = decimal.Context(prec=200)

Record = TypeVar("Record")


def text_bounded(value: Any, max_length: int | None = None) -> str:
    """Return ``value`` as text PostgreSQL and SQLite store as it is: no NUL, valid UTF-8, not too long."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        # An unpaired surrogate (from a "\ud800" escape) cannot be encoded: psycopg would raise.
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:max_length] if max_length is not None and len(text) > max_length else text


def integer_bounded(value: Any, low: int, high: int) -> int:
    """Return ``value`` as an integer within [low, high] (what does not read as a number: ``low``)."""
    if type(value) is not int:
        try:
            value = int(value)
        except (TypeError, ValueError, OverflowError):
            return low
    return min(max(value, low), high)


def json_bounded(value: Any, depth: int = 0) -> Any:
    """Return ``value`` as JSON that jsonb and both JSON encoders accept (see the module docstring).

    What already fits is returned as it is (the same object), so callers can tell with ``is``.
    """
    if value is None or type(value) is bool:
        return value
    if isinstance(value, str):
        return text_bounded(value)
    if isinstance(value, int):
        return value if -INT64 <= value < INT64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= MAX_JSON_DEPTH:
        return TOO_DEEP
    if isinstance(value, dict):
        fitted_dict = {text_bounded(key): json_bounded(item, depth + 1) for key, item in value.items()}
        if len(fitted_dict) == len(value) and all(
            fitted is value.get(key, fitted_dict) for key, fitted in fitted_dict.items()
        ):
            return value
        return fitted_dict
    if isinstance(value, list | tuple):
        fitted_list = [json_bounded(item, depth + 1) for item in value]
        if type(value) is list and all(map(operator.is_, fitted_list, value)):
            return value
        return fitted_list
    return text_bounded(value)  # a Decimal, a date: as its text


def moment_bounded(value: Any) -> Any:
    """Return a time the ledger can store in UTC: naive times are UTC, times past year 1 or 9999 in
    UTC are clamped. Anything but a datetime is left as it is (the database refuses it: a record
    without a time did not come from the request path)."""
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)
    return value


def cost_bounded(value: Any, field: models.DecimalField) -> tuple[Decimal, bool]:
    """Return the cost as the column stores it, and whether it had to be replaced to fit."""
    try:
        cost = value if isinstance(value, Decimal) else Decimal(str(value))
    except decimal.InvalidOperation:
        return Decimal(0), True
    if not cost.is_finite():
        return Decimal(0), True
    step = Decimal(1).scaleb(-field.decimal_places)
    largest = largest_cost(field)
    if abs(cost) > largest:
        return largest.copy_sign(cost), True
    rounded = cost.quantize(step, context=_WIDE_CONTEXT)
    return (largest.copy_sign(cost), True) if abs(rounded) > largest else (rounded, False)


def largest_cost(field: models.DecimalField) -> Decimal:
    """Return the largest cost stored for one that does not fit: the column's largest whole amount.

    Not the column's very largest value (all nines in every place): SQLite keeps a decimal as a
    double, and that one reads back as 10**12, which the column's own converter then refuses.
    """
    return Decimal(10) ** (field.max_digits - field.decimal_places) - 1


def _bounds() -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    for field in LedgerEntry._meta.concrete_fields:
        if field.primary_key:
            continue
        if isinstance(field, models.CharField):
            bounds[field.attname] = ("text", field.max_length)
        elif type(field) in INTEGER_RANGES:
            bounds[field.attname] = ("integer", INTEGER_RANGES[type(field)])
        elif isinstance(field, models.DecimalField):
            bounds[field.attname] = ("cost", field)
        elif isinstance(field, models.JSONField):
            bounds[field.attname] = ("json", None)
        elif isinstance(field, models.BooleanField):
            bounds[field.attname] = ("boolean", None)
        elif isinstance(field, models.DateTimeField):
            bounds[field.attname] = ("moment", None)
    return bounds


BOUNDS = _bounds()


def record_bounded(record: Record) -> Record:
    """Return ``record`` with every value fitted to its ledger column (``record`` itself if all fit)."""
    changes: dict[str, Any] = {}
    unstorable_cost = None
    for name, (kind, bound) in BOUNDS.items():
        value = getattr(record, name)
        if kind == "text":
            fitted = text_bounded(value, bound)
        elif kind == "integer":
            fitted = value if value is None and _nullable(name) else integer_bounded(value, *bound)
        elif kind == "boolean":
            fitted = bool(value)
        elif kind == "json":
            fitted = json_bounded(value)
        elif kind == "moment":
            fitted = moment_bounded(value)
        else:
            fitted, replaced = cost_bounded(value, bound)
            if not replaced:
                continue  # rounded to the column's places, as the database would round it
            unstorable_cost = text_bounded(value, 200)
        if fitted is not value:
            changes[name] = fitted
    if unstorable_cost is not None:
        logger.error(
            "Ledger record %s: cost %s does not fit the ledger; stored as %s and flagged in its price.",
            text_bounded(record.request_id, 64),
            unstorable_cost,
            changes["cost"],
        )
        price = changes.get("price", record.price)
        changes["price"] = {**(price if isinstance(price, dict) else {}), UNSTORABLE_COST: unstorable_cost}
    if not changes:
        return record
    logger.warning(
        "Ledger record %s: %s bounded to fit the ledger.",
        text_bounded(record.request_id, 64),
        ", ".join(sorted(changes)),
    )
    return dataclasses.replace(record, **changes)


def _nullable(name: str) -> bool:
    return LedgerEntry._meta.get_field(name).null
