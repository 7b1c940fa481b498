"""Read spend per value of rollup columns (per team, key, user, model, provider), biggest first.

The rollups hold a row per day and combination of key, team, user, end user, model and deployment.
``spend_overview`` reads the range's rows once for every breakdown (and the days): grouped by all the
asked columns together, then added up per column here. A query per column would add every rollup row
of the range up once per column, and those passes were most of what the spend dashboard cost. The
groups number the range's distinct (team, key, user, model, provider) combinations, far fewer than
its rollup rows (one per day and deployment).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import localcontext
from typing import Any

from django.db import connections
from django.db.models import QuerySet

from billing.models import SpendRollup
from billing.selectors.labels import key_labels, same_labels, team_labels, user_labels
from billing.selectors.rollups import (
    EXACT_SUMS,
    SUM_NAMES,
    SUMMED_COLUMNS,
    Ranking,
    SpendFigures,
    SpendRow,
    every_day,
    rollup_list,
    rollups_grouped,
)

# The columns there are breakdowns of, and how their values read on a page: ids become names.
LABELERS: dict[str, Callable[[Iterable[str]], dict[str, str]]] = {
    "team_id": team_labels,
    "key_token": key_labels,
    "user_id": user_labels,
    "model_group": same_labels,
    "provider": same_labels,
}
_COST, _REQUESTS = SUMMED_COLUMNS.index("cost"), SUMMED_COLUMNS.index("requests")


@dataclass(frozen=True, slots=True)
class SpendOverview:
    """A range's spend per day and per value of some rollup columns."""

    days: list[SpendRow]  # every day of the range, oldest first (none unless asked for)
    breakdowns: dict[str, Ranking[SpendRow]]  # by column


def spend_overview(
    *,
    start: date,
    end: date,
    columns: Sequence[str] = (),
    days: bool = False,
    team_ids: Collection[str] | None = None,
    limit: int | None = None,
) -> SpendOverview:
    """Return spend per value of each of ``columns`` (keys of ``LABELERS``), and per day with ``days``.

    Each breakdown ranks its values by cost, then requests (biggest first), then value, and keeps its
    first ``limit`` rows (None: all of them); only those are labelled. PostgreSQL adds the days up in
    the same pass over the rollups as the breakdowns (GROUPING SETS); other databases in a query of
    their own.
    """
    columns = list(dict.fromkeys(columns))
    rows = rollup_list(start=start, end=end, team_ids=team_ids)
    if days and columns and connections[rows.db].vendor == "postgresql":
        day_sums, groups = _days_and_groups(rows, columns)
    else:
        day_sums = _sum_values(rollups_grouped(rows, "day"), ["day"]) if days else []
        groups = _sum_values(rollups_grouped(rows, *columns), columns) if columns else []
    by_day = {day: SpendFigures.from_sum_values(sums) for day, *sums in day_sums}
    return SpendOverview(
        days=every_day(start=start, end=end, figures=by_day) if days else [],
        breakdowns=_breakdowns(columns, groups, limit=limit),
    )


def spend_by_team(
    *, start: date, end: date, team_ids: Collection[str] | None = None, limit: int | None = None
) -> list[SpendRow]:
    """Return spend per team, biggest first (rows without a team under "(no team)")."""
    return _spend_by("team_id", start=start, end=end, team_ids=team_ids, limit=limit)


def spend_by_key(
    *, start: date, end: date, team_ids: Collection[str] | None = None, limit: int | None = None
) -> list[SpendRow]:
    """Return spend per virtual key (token), biggest first: ``limit=10`` gives the top spenders."""
    return _spend_by("key_token", start=start, end=end, team_ids=team_ids, limit=limit)


def spend_by_user(
    *, start: date, end: date, team_ids: Collection[str] | None = None, limit: int | None = None
) -> list[SpendRow]:
    """Return spend per key owner (the ledger's user id), biggest first."""
    return _spend_by("user_id", start=start, end=end, team_ids=team_ids, limit=limit)


def spend_by_model(
    *, start: date, end: date, team_ids: Collection[str] | None = None, limit: int | None = None
) -> list[SpendRow]:
    """Return spend per model group (the model name clients ask for), biggest first."""
    return _spend_by("model_group", start=start, end=end, team_ids=team_ids, limit=limit)


def spend_by_provider(
    *, start: date, end: date, team_ids: Collection[str] | None = None, limit: int | None = None
) -> list[SpendRow]:
    """Return spend per provider, biggest first."""
    return _spend_by("provider", start=start, end=end, team_ids=team_ids, limit=limit)


def _spend_by(
    column: str, *, start: date, end: date, team_ids: Collection[str] | None, limit: int | None
) -> list[SpendRow]:
    overview = spend_overview(start=start, end=end, columns=[column], team_ids=team_ids, limit=limit)
    return overview.breakdowns[column].rows


def _sum_values(groups: QuerySet, columns: list[str]) -> list[tuple]:
    """Return the grouped rows as tuples: the columns' values, then the sums in SUMMED_COLUMNS order."""
    return list(groups.values_list(*columns, *SUM_NAMES))


def _days_and_groups(rows: QuerySet[SpendRollup], columns: list[str]) -> tuple[list[tuple], list[tuple]]:
    """Return ``rows`` added up per day and per combination of ``columns``, from one pass over them.

    The ORM cannot write GROUPING SETS: this is the ORM's WHERE for ``rows`` under a written SELECT
    and GROUP BY. Both lists hold tuples as ``_sum_values`` returns them (a day's start with the day).
    """
    compiler = rows.query.get_compiler(using=rows.db)
    where, params = compiler.compile(rows.query.where)
    quote = compiler.connection.ops.quote_name
    day = quote(SpendRollup._meta.get_field("day").column)
    grouped = ", ".join(quote(SpendRollup._meta.get_field(column).column) for column in columns)
    summed = {name: quote(SpendRollup._meta.get_field(name).column) for name in SUMMED_COLUMNS}
    # PostgreSQL sums bigints as numeric: cast them back, to the ints the ORM gives; cost stays numeric.
    sums = ", ".join(
        f"SUM({column})" if name == "cost" else f"CAST(SUM({column}) AS bigint)"
        for name, column in summed.items()
    )
    sql = (
        f"SELECT GROUPING({day}), {day}, {grouped}, {sums} FROM {quote(SpendRollup._meta.db_table)} "
        f"WHERE {where} GROUP BY GROUPING SETS (({day}), ({grouped}))"
    )
    with compiler.connection.cursor() as cursor:
        cursor.execute(sql, params)
        results = cursor.fetchall()
    # GROUPING(day) is 0 on the rows grouped by day, 1 on those grouped by the columns.
    day_sums = [(row[1], *row[2 + len(columns) :]) for row in results if row[0] == 0]
    groups = [row[2:] for row in results if row[0] == 1]
    return day_sums, groups


def _breakdowns(
    columns: list[str], groups: list[tuple], *, limit: int | None
) -> dict[str, Ranking[SpendRow]]:
    """Add ``groups`` (the columns' values, then the sums) up per column; rank each column's values."""
    sums_by_column: dict[str, dict[Any, list]] = {column: {} for column in columns}
    with localcontext(EXACT_SUMS):
        for group in groups:
            sums = group[len(columns) :]
            for column, value in zip(columns, group, strict=False):
                known = sums_by_column[column].get(value)
                sums_by_column[column][value] = (
                    list(sums) if known is None else list(map(operator.add, known, sums))
                )
    return {column: _ranking(column, sums_by_column[column], limit=limit) for column in columns}


def _ranking(column: str, sums_by_value: dict[str, list], *, limit: int | None) -> Ranking[SpendRow]:
    # Ranked on the raw sums; figures and labels only for the rows kept.
    ranked = sorted(sums_by_value.items(), key=lambda item: (-item[1][_COST], -item[1][_REQUESTS], item[0]))
    shown = ranked if limit is None else ranked[:limit]
    labels = LABELERS[column](value for value, _ in shown)
    rows = [SpendRow(value, labels[value], SpendFigures.from_sum_values(sums)) for value, sums in shown]
    return Ranking(rows, len(ranked))
