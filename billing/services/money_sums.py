"""Exact sums of money columns on every database the gateway runs on."""

from __future__ import annotations

from decimal import Decimal

from django.db import connections
from django.db.models import BigIntegerField, Func, Sum

# SQLite keeps a decimal as an 8-byte float (15-17 significant digits): it cannot hold the 18 places
# PostgreSQL stores. Sum there in integer units of 1e-12 USD: exact for every amount a float holds to
# that unit, and a 64-bit sum overflows only past 9.2 million USD.
SQLITE_SUM_PLACES = 12


def money_sum(field: str, *, using: str = "default", **extra) -> Sum:
    """Return an aggregate summing the money column ``field`` exactly; read its value with money_value().

    PostgreSQL sums ``numeric`` exactly. SQLite stores decimals as 8-byte floats, and a float sum
    drifts (and Django's SQLite converter keeps 15 significant digits): there, sum integer units of
    10^-12 instead (see SQLITE_SUM_PLACES).
    """
    if connections[using].vendor == "sqlite":
        units = Func(
            field,
            template=f"CAST(ROUND(%(expressions)s * {10**SQLITE_SUM_PLACES}) AS INTEGER)",
            output_field=BigIntegerField(),
        )
        return Sum(units, **extra)
    return Sum(field, **extra)


def money_value(value: int | Decimal | None) -> Decimal:
    """Return the Decimal amount of a money_sum() result (0 for the sum of no rows)."""
    if value is None:
        return Decimal("0")
    if isinstance(value, int):
        return Decimal(value).scaleb(-SQLITE_SUM_PLACES)
    return value
