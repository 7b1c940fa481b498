"""The dashboard's tables: each built by one selector, shown on the page and exported as CSV.

A column gives a cell's exact value (what CSV carries: Decimal amounts in full, ratios as
fractions) and how the page shows it (USD, percentages, milliseconds).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpResponse

from billing import selectors
from billing.selectors import BudgetBurn, SpendRow
from llm_gateway.admin.display import usd

# How many rows a table shows on the page; its CSV holds them all.
SHOWN_ROWS = 15
TOP_SPENDERS = 10
# A cell starting with one of these is a formula to a spreadsheet: CSV cells from aliases, model
# names and end-user ids (set by users and clients) get a leading quote (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def percent(ratio: Decimal | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.2f}%"


def milliseconds(value: Decimal | int | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def count(value: int) -> str:
    return f"{value:,}"


def moment(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class Column:
    header: str  # the CSV's header
    value: Callable[[Any], Any]  # the exact value, for CSV
    shown: Callable[[Any], str] = str  # how the page shows the value
    page_header: str | None = None  # the page's header (default: the CSV's); "" leaves it off the page

    @property
    def on_page(self) -> bool:
        return self.page_header != ""


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: list

    def page_table(self, limit: int | None = SHOWN_ROWS) -> dict[str, list]:
        """Return the table for unfold's table component: headers and shown cells of the first rows."""
        rows = self.rows if limit is None else self.rows[:limit]
        columns = [column for column in self.columns if column.on_page]
        return {
            "headers": [column.page_header or column.header for column in columns],
            "rows": [[column.shown(column.value(row)) for column in columns] for row in rows],
        }

    def csv_response(self, filename: str) -> HttpResponse:
        """Return every row as a CSV download."""
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        writer = csv.writer(response)
        writer.writerow(column.header for column in self.columns)
        for row in self.rows:
            writer.writerow(_csv_cell(column.value(row)) for column in self.columns)
        return response


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return f"'{value}"
    return value


def _spend_columns(name_header: str, id_header: str) -> tuple[Column, ...]:
    # The page shows five columns (its cards are half the page wide); the CSV has them all.
    return (
        Column(name_header, lambda row: row.label),
        Column(id_header, lambda row: row.id, page_header=""),
        Column("Spend (USD)", lambda row: row.figures.cost, usd, page_header="Spend"),
        Column("Requests", lambda row: row.figures.requests, count),
        Column("Errors", lambda row: row.figures.errors, count, page_header=""),
        Column("Error rate", lambda row: row.figures.error_rate, percent, page_header="Errors"),
        Column("Tokens", lambda row: row.figures.total_tokens, count),
        Column("Prompt tokens", lambda row: row.figures.prompt_tokens, count, page_header=""),
        Column("Completion tokens", lambda row: row.figures.completion_tokens, count, page_header=""),
        Column("Avg latency", lambda row: row.figures.average_latency_ms, milliseconds, page_header=""),
    )


_DAY_COLUMNS = (
    Column("Day", lambda row: row.id),
    Column("Spend (USD)", lambda row: row.figures.cost, usd),
    Column("Requests", lambda row: row.figures.requests, count),
    Column("Errors", lambda row: row.figures.errors, count),
    Column("Prompt tokens", lambda row: row.figures.prompt_tokens, count),
    Column("Completion tokens", lambda row: row.figures.completion_tokens, count),
    Column("Cache hits", lambda row: row.figures.cache_hits, count),
    Column("Avg latency", lambda row: row.figures.average_latency_ms, milliseconds),
)


def _budget_columns(name_header: str, now: datetime) -> tuple[Column, ...]:
    return (
        Column(name_header, lambda burn: burn.label),
        # A team's own row names it already: its team column stays in the CSV only.
        Column("Team", lambda burn: burn.team_label, page_header="" if name_header == "Team" else None),
        Column("Max budget (USD)", lambda burn: burn.max_budget, usd, page_header="Budget"),
        Column("Spent (USD)", lambda burn: burn.spent, usd, page_header="Spent"),
        # Held: reserved for requests in flight; 0 until the limiter exposes its holds (budget_held).
        Column("Held (USD)", lambda burn: burn.held, usd, page_header="Held"),
        Column("Remaining (USD)", lambda burn: burn.remaining, usd, page_header="Remaining"),
        Column(
            "Projected at period end (USD)", lambda burn: burn.projected(now), usd, page_header="Projected"
        ),
        Column("Period ends", lambda burn: burn.period_end, moment),
    )


@dataclass(frozen=True, slots=True)
class TableFilters:
    start: date
    end: date
    team_ids: frozenset[str] | None
    now: datetime


def _spend_table(name: str, title: str, rows: list[SpendRow], name_header: str, id_header: str) -> Table:
    return Table(name, title, _spend_columns(name_header, id_header), rows)


def _budget_table(name: str, title: str, rows: list[BudgetBurn], name_header: str, now: datetime) -> Table:
    return Table(name, title, _budget_columns(name_header, now), rows)


def _range(filters: TableFilters) -> dict[str, Any]:
    return {"start": filters.start, "end": filters.end, "team_ids": filters.team_ids}


# Table name (the CSV export's ?table=) -> how to build it.
BUILDERS: dict[str, Callable[[TableFilters], Table]] = {
    "by_day": lambda f: Table("by_day", "Spend by day", _DAY_COLUMNS, selectors.spend_by_day(**_range(f))),
    "by_team": lambda f: _spend_table(
        "by_team", "Spend by team", selectors.spend_by_team(**_range(f)), "Team", "Team id"
    ),
    "by_key": lambda f: _spend_table(
        "by_key", "Top spenders (keys)", selectors.spend_by_key(**_range(f)), "Key", "Key token"
    ),
    "top_keys": lambda f: _spend_table(
        "top_keys",
        "Top spenders (keys)",
        selectors.spend_by_key(**_range(f), limit=TOP_SPENDERS),
        "Key",
        "Key token",
    ),
    "by_user": lambda f: _spend_table(
        "by_user", "Spend by user", selectors.spend_by_user(**_range(f)), "User", "User id"
    ),
    "by_model": lambda f: _spend_table(
        "by_model", "Spend by model", selectors.spend_by_model(**_range(f)), "Model", "Model group"
    ),
    "by_provider": lambda f: _spend_table(
        "by_provider",
        "Spend by provider",
        selectors.spend_by_provider(**_range(f)),
        "Provider",
        "Provider id",
    ),
    "budget_keys": lambda f: _budget_table(
        "budget_keys",
        "Budget burn per key",
        selectors.budget_burn_keys(team_ids=f.team_ids, now=f.now),
        "Key",
        f.now,
    ),
    "budget_teams": lambda f: _budget_table(
        "budget_teams",
        "Budget burn per team",
        selectors.budget_burn_teams(team_ids=f.team_ids, now=f.now),
        "Team",
        f.now,
    ),
}


def tables_build(filters: TableFilters, names: Iterator[str] | None = None) -> dict[str, Table]:
    """Return the named tables (all of them by default) for these filters."""
    return {name: BUILDERS[name](filters) for name in (names or BUILDERS)}
