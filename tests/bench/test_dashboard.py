"""The dashboard part's pure parts: the generating SQL and the database's shape."""

import pytest

from bench import dashboard


def test_the_insert_fills_every_column_from_an_expression_or_a_default():
    columns = ["request_id", "created_at", "key_token", "operation", "price", "cost"]
    defaults = {"operation": "%(default_operation)s", "price": "%(default_price)s"}

    sql = dashboard.ledger_insert_sql(columns, defaults)

    head, select = sql.split("\nSELECT ", 1)
    assert (
        head == "INSERT INTO billing_ledgerentry (request_id, created_at, key_token, operation, price, cost)"
    )
    assert "'bench-' || s.i" in select  # unique request ids
    assert "%(default_operation)s, %(default_price)s" in select
    assert "generate_series(%(first)s, %(last)s)" in select
    assert f"s.i %% {dashboard.KEYS} + 1" in select  # one of the seeded keys, by row


def test_a_column_without_expression_or_default_is_a_bug_not_a_silent_null():
    with pytest.raises(KeyError, match="a_new_column"):
        dashboard.ledger_insert_sql(["a_new_column"], {})


def test_every_expression_names_a_ledger_column_once():
    assert len(dashboard.LEDGER_EXPRESSIONS) == len(set(dashboard.LEDGER_EXPRESSIONS))
    assert {"request_id", "created_at", "key_token", "team_id", "cost", "latency_ms"} <= set(
        dashboard.LEDGER_EXPRESSIONS
    )


def test_the_shape_changes_with_the_rows_and_the_day():
    shape = dashboard.database_shape(10_000_000, "2025-01-31")

    assert "rows=10000000" in shape
    assert "generated=2025-01-31" in shape
    assert shape != dashboard.database_shape(100_000, "2025-01-31")
    assert shape != dashboard.database_shape(10_000_000, "2025-02-01")
