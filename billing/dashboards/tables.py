"""The dashboard's tables: shown on the page (their first rows) and exported as CSV (every row).

A column gives a cell's exact value (what CSV carries: Decimal amounts in full, ratios as
fractions) and how the page shows it (USD, percentages, milliseconds).

The page builds its tables with ``limit=SHOWN_ROWS``: each still knows how many rows it holds in all,
but only the shown rows are labelled and have their budget holds read from the limiter. The days and
the breakdowns (spend per team, key, user, model, provider) come from one read of the rollups.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpResponse

from billing import selectors
from billing.selectors import BudgetBurn, Ranking
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
    rows: list  # the rows it was built with: the first ones on the page, all of them for CSV
    row_count: int  # how many rows the table holds in all

    def page_table(self) -> dict[str, list]:
        """Return the table for ``billing/spend_table.html``: headers, and rows of (header, shown cell)."""
        columns = [column for column in self.columns if column.on_page]
        headers = [column.page_header or column.header for column in columns]
        return {
            "headers": headers,
            "rows": [
                [
                    (header, column.shown(column.value(row)))
                    for header, column in zip(headers, columns, strict=True)
                ]
                for row in self.rows
            ],
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
        # Held: what requests in flight have reserved, read from the limiter (budget_holds).
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


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A table of spend per value of one rollup column, biggest first."""

    title: str
    column: str
    name_header: str
    id_header: str
    limit: int | None = None  # rows the table holds at most, CSV included


BREAKDOWNS = {
    "by_team": Breakdown("Spend by team", "team_id", "Team", "Team id"),
    "by_key": Breakdown("Top spenders (keys)", "key_token", "Key", "Key token"),
    "top_keys": Breakdown("Top spenders (keys)", "key_token", "Key", "Key token", limit=TOP_SPENDERS),
    "by_user": Breakdown("Spend by user", "user_id", "User", "User id"),
    "by_model": Breakdown("Spend by model", "model_group", "Model", "Model group"),
    "by_provider": Breakdown("Spend by provider", "provider", "Provider", "Provider id"),
}
# Every table, by the name the CSV export's ?table= gives.
TABLE_NAMES = ("by_day", *BREAKDOWNS, "budget_keys", "budget_teams")


def tables_build(
    filters: TableFilters, names: Iterable[str] | None = None, *, limit: int | None = None
) -> dict[str, Table]:
    """Return the named tables (all of them by default) for these filters.

    Ranked tables keep their first ``limit`` rows (None: all of them); "by_day" has every day. The
    days and the breakdowns come from one read of the rollups (``selectors.spend_overview``).
    """
    names = list(names or TABLE_NAMES)
    tables = _spend_tables(filters, names, limit)
    if "budget_keys" in names:
        keys = selectors.budget_burn_keys(team_ids=filters.team_ids, now=filters.now, limit=limit)
        tables["budget_keys"] = _budget_table("budget_keys", "Budget burn per key", keys, "Key", filters.now)
    if "budget_teams" in names:
        teams = selectors.budget_burn_teams(team_ids=filters.team_ids, now=filters.now, limit=limit)
        tables["budget_teams"] = _budget_table(
            "budget_teams", "Budget burn per team", teams, "Team", filters.now
        )
    return {name: tables[name] for name in names}


def _spend_tables(filters: TableFilters, names: list[str], limit: int | None) -> dict[str, Table]:
    breakdowns = {name: BREAKDOWNS[name] for name in names if name in BREAKDOWNS}
    if not breakdowns and "by_day" not in names:
        return {}
    caps = {name: _smallest(limit, breakdown.limit) for name, breakdown in breakdowns.items()}
    overview = selectors.spend_overview(
        start=filters.start,
        end=filters.end,
        columns=[breakdown.column for breakdown in breakdowns.values()],
        days="by_day" in names,
        team_ids=filters.team_ids,
        limit=None if None in caps.values() else max(caps.values(), default=None),
    )
    tables = {}
    if "by_day" in names:
        tables["by_day"] = Table("by_day", "Spend by day", _DAY_COLUMNS, overview.days, len(overview.days))
    for name, breakdown in breakdowns.items():
        ranking = overview.breakdowns[breakdown.column]
        columns = _spend_columns(breakdown.name_header, breakdown.id_header)
        row_count = _smallest(ranking.row_count, breakdown.limit)
        tables[name] = Table(name, breakdown.title, columns, ranking.rows[: caps[name]], row_count)
    return tables


def _budget_table(
    name: str, title: str, ranking: Ranking[BudgetBurn], name_header: str, now: datetime
) -> Table:
    return Table(name, title, _budget_columns(name_header, now), ranking.rows, ranking.row_count)


def _smallest(*limits: int | None) -> int | None:
    """Return the smallest of the limits that are set, or None when none is."""
    return min((limit for limit in limits if limit is not None), default=None)
