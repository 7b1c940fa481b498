"""Exact sums of money columns on every database the gateway runs on."""

from __future__ import annotations

from decimal import Decimal

from django.db import connections
from django.db.models import BigIntegerField, Func, Sum

from billing.models import MONEY

MONEY_PLACES = MONEY["decimal_places"]


def money_sum(field: str, *, using: str = "default", **extra) -> Sum:
    """Return an aggregate summing the money column ``field`` exactly; read its value with money_value().

    PostgreSQL sums ``numeric`` exactly. SQLite stores decimals as 8-byte floats, and a float sum
    drifts (and Django's SQLite converter keeps 15 significant digits): there, sum integer units of
    10^-10 instead. Every stored amount has at most 15 significant digits, so ROUND recovers its
    exact units, and the integer sum is exact up to 9.2e8 USD.
    """
    if connections[using].vendor == "sqlite":
        units = Func(
            field,
            template=f"CAST(ROUND(%(expressions)s * {10**MONEY_PLACES}) AS INTEGER)",
            output_field=BigIntegerField(),
        )
        return Sum(units, **extra)
    return Sum(field, **extra)


def money_value(value: int | Decimal | None) -> Decimal:
    """Return the Decimal amount of a money_sum() result (0 for the sum of no rows)."""
    if value is None:
        return Decimal("0")
    if isinstance(value, int):
        return Decimal(value).scaleb(-MONEY_PLACES)
    return value
