"""Spend per team, key, user, model and provider, and per day, from one read of the rollups.

Expected figures are added up here in Python from the rollup rows, so they are exact by construction.
On PostgreSQL (DATABASE_URL) ``spend_overview`` with days reads through GROUPING SETS, elsewhere
through two ORM queries: the same tests hold on both.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import selectors
from billing.models import SpendRollup
from billing.selectors import SpendFigures
from tests.billing.spend_factories import days_ago, rollup_make
from tests.llm_gateway.factories import key_make, team_make, user_make

pytestmark = pytest.mark.django_db

COLUMNS = ["team_id", "key_token", "user_id", "model_group", "provider"]


def expected_figures(column: str, **filters) -> dict[str, SpendFigures]:
    """Return the figures per value of ``column``, added up in Python from the rollup rows."""
    figures: dict[str, SpendFigures] = defaultdict(SpendFigures)
    for row in SpendRollup.objects.filter(**filters):
        figures[getattr(row, column)] += SpendFigures(
            cost=row.cost,
            requests=row.requests,
            errors=row.errors,
            cache_hits=row.cache_hits,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cached_tokens=row.cached_tokens,
            latency_ms_sum=row.latency_ms_sum,
        )
    return dict(figures)


@pytest.fixture
def spread():
    """Rollups over three days where a key moved teams and a model is served by two providers."""
    team_a, team_b = team_make(team_alias="Alpha"), team_make(team_alias="Bravo")
    owner = user_make(username="owner")
    moved, _ = key_make(team=team_a, key_alias="moved", user=owner)
    steady, _ = key_make(team=team_b, key_alias="steady")
    rows = [
        (3, moved, team_a, "gpt-4o", "openai", "0.1000000001", 10),
        (2, moved, team_b, "gpt-4o", "azure", "2.5", 4),  # the key moved to Bravo
        (2, steady, team_b, "gpt-4o", "openai", "1.25", 7),
        (1, steady, team_b, "claude", "anthropic", "0.0000000003", 1),
        (1, None, None, "claude", "anthropic", "0.75", 3),  # no key, no team
    ]
    for offset, key, team, model, provider, cost, requests in rows:
        rollup_make(
            day=days_ago(offset),
            key_token=str(key.token) if key else "",
            team_id=str(team.team_id) if team else "",
            user_id=str(owner.pk) if key is moved else "",
            model_group=model,
            deployment_id=f"{model}-{provider}",
            provider=provider,
            cost=Decimal(cost),
            requests=requests,
            errors=requests // 4,
            prompt_tokens=100 * requests,
            completion_tokens=10 * requests,
            latency_ms_sum=250 * requests,
        )
    return {"alpha": team_a, "bravo": team_b, "moved": moved, "steady": steady}


@pytest.mark.parametrize("days", [True, False])
def test_every_breakdown_adds_up_the_rollups_exactly(spread, days):
    overview = selectors.spend_overview(start=days_ago(6), end=days_ago(0), columns=COLUMNS, days=days)

    for column in COLUMNS:
        ranking = overview.breakdowns[column]
        assert {row.id: row.figures for row in ranking.rows} == expected_figures(column), column
        assert ranking.row_count == len(ranking.rows)
    moved_team_ids = {row.id for row in overview.breakdowns["team_id"].rows}
    assert moved_team_ids == {str(spread["alpha"].team_id), str(spread["bravo"].team_id), ""}


def test_the_days_cover_the_range_and_add_up_to_the_breakdowns(spread):
    overview = selectors.spend_overview(start=days_ago(6), end=days_ago(0), columns=COLUMNS, days=True)

    assert [row.id for row in overview.days] == [days_ago(offset).isoformat() for offset in range(6, -1, -1)]
    assert {row.id: row.figures for row in overview.days if row.figures.requests} == {
        day.isoformat(): figures for day, figures in expected_figures("day").items()
    }
    total = sum((row.figures for row in overview.days), SpendFigures())
    for column in COLUMNS:
        assert sum((row.figures for row in overview.breakdowns[column].rows), SpendFigures()) == total
    assert total.cost == Decimal("4.6000000004")
    assert overview.days == selectors.spend_by_day(start=days_ago(6), end=days_ago(0))


def test_a_breakdown_ranks_by_cost_then_requests_and_keeps_its_first_rows(spread):
    overview = selectors.spend_overview(start=days_ago(6), end=days_ago(0), columns=COLUMNS, limit=2)

    keys = overview.breakdowns["key_token"]
    assert [row.label for row in keys.rows] == ["moved", "steady"]  # 2.6000000001 before 1.2500000003
    assert keys.row_count == 3  # and the requests without a key
    assert [row.label for row in overview.breakdowns["model_group"].rows] == ["gpt-4o", "claude"]
    providers = overview.breakdowns["provider"]
    assert [row.id for row in providers.rows] == ["azure", "openai"]
    assert providers.row_count == 3
    assert [row.label for row in overview.breakdowns["user_id"].rows] == ["owner", "(no user)"]


def test_a_team_scope_keeps_other_teams_out_of_every_breakdown(spread):
    bravo = str(spread["bravo"].team_id)

    overview = selectors.spend_overview(
        start=days_ago(6), end=days_ago(0), columns=COLUMNS, days=True, team_ids={bravo}
    )

    assert [row.id for row in overview.breakdowns["team_id"].rows] == [bravo]
    assert {row.id: row.figures for row in overview.breakdowns["key_token"].rows} == expected_figures(
        "key_token", team_id=bravo
    )
    assert sum((row.figures.cost for row in overview.days), Decimal(0)) == Decimal("3.7500000003")


def test_only_the_kept_rows_are_labelled(spread):
    for index in range(30):
        rollup_make(day=days_ago(1), key_token=f"gone-key-{index:02d}", cost=Decimal("0.01"), requests=1)

    def label_queries(limit: int | None) -> int:
        with CaptureQueriesContext(connection) as queries:
            overview = selectors.spend_overview(
                start=days_ago(6), end=days_ago(0), columns=["key_token"], limit=limit
            )
        assert overview.breakdowns["key_token"].row_count == 33
        return len(queries)

    # One query for the figures, one for the names of the keys kept, however many there are.
    assert label_queries(limit=2) == label_queries(limit=None) == 2
