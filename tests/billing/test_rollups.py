"""Spend rollups rebuilt from the ledger, and the current-period spend of keys, teams, users and end users."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import LedgerEntry, SpendRollup
from billing.services.ledger import ledger_prune
from billing.services.periods import utc_day_start
from billing.services.rollups import DIMENSIONS
from billing.tasks import spend_rollup_task
from llm_gateway.models import EndUser, Team, UserBudget, VirtualKey
from tests.billing.factories import ledger_entries_make, ledger_entry_make, usage_record_make
from tests.llm_gateway.factories import end_user_make, key_make, team_make, user_make

pytestmark = pytest.mark.django_db

METRICS = (
    "requests",
    "errors",
    "cache_hits",
    "streamed_requests",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost",
    "latency_ms_sum",
    "time_to_first_token_ms_sum",
)


@pytest.fixture(autouse=True)
def retention(settings):
    settings.GATEWAY = {**settings.GATEWAY, "LEDGER_RETENTION_DAYS": 90}


def retention_set(settings, days: int) -> None:
    settings.GATEWAY = {**settings.GATEWAY, "LEDGER_RETENTION_DAYS": days}


def today() -> date:
    return timezone.now().astimezone(UTC).date()


def rollups(day: date) -> list[dict]:
    rows = SpendRollup.objects.filter(day=day).values(*DIMENSIONS, *METRICS)
    return sorted(rows, key=lambda row: [row[name] for name in DIMENSIONS])


def ledger_sums(day: date) -> list[dict]:
    """Return the day's rollups computed in Python from the ledger rows, as Decimal."""
    start = utc_day_start(day)
    groups: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    for entry in LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=start + timedelta(days=1)):
        group = groups[tuple(getattr(entry, name) for name in DIMENSIONS)]
        group["requests"] += 1
        group["errors"] += entry.status == LedgerEntry.Status.ERROR
        group["cache_hits"] += entry.cache_hit
        group["streamed_requests"] += entry.stream
        for name in ("prompt_tokens", "completion_tokens", "cached_tokens"):
            group[name] += getattr(entry, name)
        group["cost"] += entry.cost
        group["latency_ms_sum"] += entry.latency_ms
        group["time_to_first_token_ms_sum"] += entry.time_to_first_token_ms or 0
    rows = [
        dict(zip(DIMENSIONS, dimensions, strict=True), **metrics) for dimensions, metrics in groups.items()
    ]
    return sorted(rows, key=lambda row: [row[name] for name in DIMENSIONS])


def test_rollups_are_the_ledger_summed_exactly_per_dimension():
    day = today() - timedelta(days=3)
    start = utc_day_start(day)
    # Adding these as floats, one after another, drifts to 1234567.8901233897.
    many = [
        usage_record_make(created_at=start + timedelta(seconds=n), cost=Decimal("1234.5678901234"))
        for n in range(1000)
    ]
    ledger_entries_make(*many)
    k2 = {"key_token": "k2", "team_id": "t1"}
    ledger_entry_make(
        **k2, created_at=start, cost=Decimal("0.1"), stream=True, time_to_first_token_ms=180, cached_tokens=8
    )
    ledger_entry_make(
        **k2,
        created_at=start + timedelta(hours=5),
        cost=Decimal("0.2"),
        cache_hit=True,
        status=LedgerEntry.Status.ERROR,
        http_status=500,
    )
    last_instant = start + timedelta(days=1, microseconds=-1)
    ledger_entry_make(
        **k2,
        created_at=last_instant,
        cost=Decimal("0.0000000001"),
        end_user="customer-1",
        model_group="claude",
        deployment_id="claude-1",
        provider="anthropic",
    )
    ledger_entry_make(created_at=start - timedelta(microseconds=1), cost=Decimal("5"))  # the day before
    ledger_entry_make(created_at=start + timedelta(days=1), cost=Decimal("7"))  # the day after

    rows = spend_rollup_task(day.isoformat())

    assert rows == 3
    assert rollups(day) == ledger_sums(day)
    big = SpendRollup.objects.get(day=day, requests=1000)
    assert big.cost == Decimal("1234567.8901234000")
    mixed = SpendRollup.objects.get(day=day, key_token="k2", model_group="gpt-4o-mini")
    assert (mixed.requests, mixed.errors, mixed.cache_hits, mixed.streamed_requests) == (2, 1, 1, 1)
    assert (mixed.cost, mixed.cached_tokens, mixed.time_to_first_token_ms_sum) == (Decimal("0.3"), 8, 180)


def test_running_twice_changes_nothing():
    day = today() - timedelta(days=1)
    for hour in range(5):
        ledger_entry_make(created_at=utc_day_start(day) + timedelta(hours=hour), key_token=f"key-{hour % 2}")
    spend_rollup_task(day.isoformat())
    first = rollups(day)

    spend_rollup_task(day.isoformat())

    assert rollups(day) == first == ledger_sums(day)
    assert SpendRollup.objects.count() == 2


def test_by_default_it_rebuilds_yesterday_so_a_late_record_still_counts():
    yesterday = today() - timedelta(days=1)
    late_evening = utc_day_start(today()) - timedelta(minutes=1)
    ledger_entry_make(created_at=late_evening, cost=Decimal("1.25"))
    spend_rollup_task()
    ledger_entry_make(created_at=late_evening, cost=Decimal("0.75"))  # reached the ledger after midnight

    spend_rollup_task()

    assert rollups(yesterday) == ledger_sums(yesterday)
    assert SpendRollup.objects.get(day=yesterday).cost == Decimal("2")


def test_a_day_without_ledger_rows_ends_without_rollups():
    day = today() - timedelta(days=2)
    ledger_entry_make(created_at=utc_day_start(day))
    spend_rollup_task(day.isoformat())
    LedgerEntry.objects.all().delete()

    spend_rollup_task(day.isoformat())

    assert rollups(day) == []


def test_a_day_past_retention_keeps_its_rollups(settings):
    day = today() - timedelta(days=100)
    ledger_entry_make(created_at=utc_day_start(day) + timedelta(hours=1), cost=Decimal("3.5"))
    retention_set(settings, 0)  # kept forever: the day can be rolled up
    spend_rollup_task(day.isoformat())
    retention_set(settings, 90)
    assert ledger_prune() == 1

    assert spend_rollup_task(day.isoformat()) == 0

    assert [row["cost"] for row in rollups(day)] == [Decimal("3.5")]


def test_a_lifetime_budget_spends_every_day_even_those_pruned_from_the_ledger(settings):
    key, _ = key_make(max_budget=Decimal("100"))
    for days_ago, cost in ((100, "1.5"), (3, "2.25"), (0, "0.125")):
        ledger_entry_make(
            key_token=str(key.token),
            cost=Decimal(cost),
            created_at=utc_day_start(today() - timedelta(days=days_ago)),
        )
    retention_set(settings, 0)
    for days_ago in (100, 3):
        spend_rollup_task((today() - timedelta(days=days_ago)).isoformat())
    retention_set(settings, 90)
    ledger_prune()

    spend_rollup_task()

    key.refresh_from_db()
    assert key.spend == Decimal("3.875")


def test_spend_counts_the_current_budget_period_only():
    now = timezone.now()
    team = team_make(budget_duration="1w", budget_reset_at=now + timedelta(days=2))  # began 5 days ago
    user = user_make()
    # The key's owner: a period that began 3 days ago.
    UserBudget.objects.create(user=user, budget_duration="1w", budget_reset_at=now + timedelta(days=4))
    key, _ = key_make(team=team, user=user, budget_duration="1d", budget_reset_at=now + timedelta(hours=21))
    customer = end_user_make(team=team, max_budget=Decimal("50"))  # no duration: a lifetime budget
    owners = {"key_token": str(key.token), "team_id": str(team.team_id), "user_id": str(user.pk)}
    for moment, cost in (
        (now - timedelta(days=5, minutes=1), "10"),  # the team's previous period
        (now - timedelta(days=5), "1"),  # the first instant of the team's period
        (now - timedelta(days=3, microseconds=1), "0.125"),  # the user's previous period
        (now - timedelta(days=3), "2"),  # the first instant of the user's period
        (now - timedelta(hours=3, microseconds=1), "4"),  # the key's previous period
        (now - timedelta(hours=3), "0.5"),  # the first instant of the key's period
        (now - timedelta(minutes=1), "0.25"),
    ):
        ledger_entry_make(created_at=moment, cost=Decimal(cost), end_user=customer.user_id, **owners)
    for days_ago in (5, 4, 3, 2):
        spend_rollup_task((now - timedelta(days=days_ago)).astimezone(UTC).date().isoformat())

    spend_rollup_task()

    assert VirtualKey.objects.get(pk=key.pk).spend == Decimal("0.75")
    assert Team.objects.get(pk=team.pk).spend == Decimal("7.875")
    assert UserBudget.objects.get(pk=user.pk).spend == Decimal("6.75")
    assert EndUser.objects.get(pk=customer.pk).spend == Decimal("17.875")


def test_spend_of_users_without_a_budget_row_or_with_a_foreign_id_is_skipped():
    tracked, untracked = user_make(), user_make()
    UserBudget.objects.create(user=tracked)
    for user_id in (str(tracked.pk), str(untracked.pk), "not-a-user-pk", ""):
        ledger_entry_make(user_id=user_id, cost=Decimal("1.5"))

    spend_rollup_task()

    assert UserBudget.objects.get().spend == Decimal("1.5")
