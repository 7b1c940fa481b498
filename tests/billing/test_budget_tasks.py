"""Budget resets, budget alerts (webhook and email) and ledger pruning, as the Celery tasks run them."""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.limits.periods import budget_period
from billing.models import BudgetAlert, LedgerEntry, SpendRollup
from billing.services.ledger import ledger_prune
from billing.services.periods import utc_day_start
from billing.tasks import budget_alerts_task, budget_reset_task, ledger_prune_task
from llm_gateway.budget_durations import next_reset
from llm_gateway.models import EndUser, Team, UserBudget, VirtualKey
from tests.billing.factories import ledger_entry_make
from tests.fakes.upstream import Reply
from tests.llm_gateway.factories import end_user_make, key_make, team_make, user_make

pytestmark = pytest.mark.django_db

WEBHOOK_PATH = "/hooks/budget-alerts"
EMAILS = ["finance@example.com", "ops@example.com"]


def gateway_set(settings, **values) -> None:
    settings.GATEWAY = {**settings.GATEWAY, **values}


@pytest.fixture
def alert_channels(settings, upstream):
    """Send alerts to the fake upstream's webhook path and to two addresses (Django's locmem outbox)."""
    gateway_set(settings, ALERT_WEBHOOK_URL=upstream.url + WEBHOOK_PATH, ALERT_EMAILS=EMAILS)


def key_spending(spend: str, **fields) -> VirtualKey:
    """Create a key (through the service) that has spent ``spend`` this period."""
    key, _ = key_make(**fields)
    VirtualKey.objects.filter(pk=key.pk).update(spend=Decimal(spend))
    key.refresh_from_db()
    return key


def user_budget_make(*, username: str | None = None, **fields) -> UserBudget:
    """Create a user with a budget row (``fields``: its budget, limits and spend)."""
    return UserBudget.objects.create(user=user_make(username=username), **fields)


def webhook_answers(upstream, *statuses: int) -> None:
    upstream.enqueue(*(Reply(status=status, json={}) for status in statuses))


def webhook_alerts(upstream) -> list[tuple[str, str]]:
    """Return (entity, threshold) of every alert the webhook received, in order."""
    return [(request.json["entity"], request.json["threshold"]) for request in upstream.requests]


def recorded_alerts() -> list[tuple[str, str, str]]:
    return sorted(BudgetAlert.objects.values_list("entity", "entity_id", "threshold"))


class TestBudgetReset:
    def test_a_budget_whose_period_ended_starts_a_new_one_at_zero(self):
        now = timezone.now()
        key = key_spending("5", budget_duration="1d", budget_reset_at=now - timedelta(hours=1))
        team = team_make(budget_duration="1w", budget_reset_at=now - timedelta(minutes=1), spend=Decimal("9"))
        customer = end_user_make(
            budget_duration="1mo", budget_reset_at=now - timedelta(days=2), spend=Decimal("2")
        )
        user = user_budget_make(
            budget_duration="1h", budget_reset_at=now - timedelta(minutes=30), spend=Decimal("1.5")
        )

        assert budget_reset_task() == 4

        key.refresh_from_db()
        team.refresh_from_db()
        customer.refresh_from_db()
        user.refresh_from_db()
        assert (key.spend, key.budget_reset_at) == (0, now - timedelta(hours=1) + timedelta(days=1))
        assert (team.spend, team.budget_reset_at) == (0, now - timedelta(minutes=1) + timedelta(weeks=1))
        assert (customer.spend, customer.budget_reset_at) == (0, next_reset("1mo", now - timedelta(days=2)))
        assert (user.spend, user.budget_reset_at) == (0, now + timedelta(minutes=30))

    def test_running_it_again_changes_nothing(self):
        key, _ = key_make(budget_duration="1h", budget_reset_at=timezone.now() - timedelta(minutes=5))
        budget_reset_task()
        after_first = VirtualKey.objects.values("spend", "budget_reset_at").get(pk=key.pk)

        assert budget_reset_task() == 0
        assert VirtualKey.objects.values("spend", "budget_reset_at").get(pk=key.pk) == after_first

    def test_a_budget_many_periods_behind_skips_to_the_current_one(self):
        now = timezone.now()
        stale = now - timedelta(days=365, seconds=7)
        key = key_spending("1", budget_duration="30s", budget_reset_at=stale)

        budget_reset_task()

        key.refresh_from_db()
        assert now < key.budget_reset_at <= timezone.now() + timedelta(seconds=30)
        assert (key.budget_reset_at - stale) % timedelta(seconds=30) == timedelta(0)
        assert key.spend == 0

    def test_a_budget_with_a_duration_and_no_reset_time_gets_the_limiters_period(self):
        key = key_spending("3", budget_duration="1d")
        VirtualKey.objects.filter(pk=key.pk).update(budget_reset_at=None)  # as the admin may leave it

        budget_reset_task()

        key.refresh_from_db()
        assert key.budget_reset_at == budget_period("1d", None, timezone.now())[1]
        assert key.budget_reset_at == utc_day_start(timezone.now().astimezone(UTC).date() + timedelta(days=1))
        assert key.spend == Decimal("3")  # the limiter already counts it in this period

    def test_a_budget_whose_duration_was_removed_stops_resetting(self):
        team = team_make(budget_reset_at=timezone.now() - timedelta(hours=1), spend=Decimal("4"))

        budget_reset_task()

        team.refresh_from_db()
        assert (team.budget_reset_at, team.spend) == (None, Decimal("4"))

    def test_budgets_not_due_are_left_alone(self):
        later = timezone.now() + timedelta(hours=2)
        key = key_spending("6", budget_duration="1d", budget_reset_at=later)
        team_make(spend=Decimal("8"))  # a lifetime budget

        assert budget_reset_task() == 0
        key.refresh_from_db()
        assert (key.budget_reset_at, key.spend) == (later, Decimal("6"))
        assert Team.objects.get().spend == Decimal("8")


@pytest.mark.usefixtures("alert_channels")
class TestBudgetAlerts:
    def test_each_threshold_is_alerted_once_per_period(self, upstream, mailoutbox):
        key = key_spending("85", key_alias="batch-jobs", max_budget=Decimal("100"))
        webhook_answers(upstream, 200, 200)

        assert budget_alerts_task() == 2
        assert budget_alerts_task() == 0

        assert webhook_alerts(upstream) == [("key", "50"), ("key", "80")]
        assert [message.subject for message in mailoutbox] == [
            "Budget alert: key 'batch-jobs' spent 85.0000000000 USD, 50% of its 100.0000000000 USD budget.",
            "Budget alert: key 'batch-jobs' spent 85.0000000000 USD, 80% of its 100.0000000000 USD budget.",
        ]
        assert all(message.to == EMAILS for message in mailoutbox)
        assert recorded_alerts() == [("key", str(key.token), "50"), ("key", str(key.token), "80")]

        VirtualKey.objects.filter(pk=key.pk).update(spend=Decimal("96"))
        webhook_answers(upstream, 200)
        assert budget_alerts_task() == 1
        assert webhook_alerts(upstream)[2:] == [("key", "95")]

    def test_a_new_period_alerts_again(self, upstream):
        key = key_spending(
            "6",
            max_budget=Decimal("10"),
            budget_duration="1d",
            budget_reset_at=timezone.now() + timedelta(hours=1),
        )
        webhook_answers(upstream, 200, 200)
        assert budget_alerts_task() == 1

        VirtualKey.objects.filter(pk=key.pk).update(budget_reset_at=timezone.now() - timedelta(seconds=1))
        budget_reset_task()
        VirtualKey.objects.filter(pk=key.pk).update(spend=Decimal("6"))
        assert budget_alerts_task() == 1

        assert webhook_alerts(upstream) == [("key", "50"), ("key", "50")]
        first, second = BudgetAlert.objects.order_by("period_start")
        key.refresh_from_db()
        assert second.period_start == budget_period("1d", key.budget_reset_at, timezone.now())[0]
        assert first.period_start < second.period_start

    def test_a_stale_spend_of_an_ended_period_raises_no_alert(self, upstream):
        key_spending(
            "9",
            max_budget=Decimal("10"),
            budget_duration="1d",
            budget_reset_at=timezone.now() - timedelta(minutes=1),
        )

        assert budget_alerts_task() == 0
        assert upstream.requests == []

    def test_a_failed_webhook_is_retried_on_the_next_run(self, settings, upstream):
        gateway_set(settings, ALERT_EMAILS=[])
        team = team_make(team_alias="research", soft_budget=Decimal("10"), spend=Decimal("12"))
        webhook_answers(upstream, 503)

        assert budget_alerts_task() == 0
        assert recorded_alerts() == []

        webhook_answers(upstream, 200)
        assert budget_alerts_task() == 1
        assert webhook_alerts(upstream) == [("team", "soft"), ("team", "soft")]
        assert recorded_alerts() == [("team", str(team.team_id), "soft")]

    def test_an_unreachable_webhook_is_retried_on_the_next_run(self, settings):
        gateway_set(settings, ALERT_WEBHOOK_URL="http://127.0.0.1:9/hooks", ALERT_EMAILS=[])
        team_make(soft_budget=Decimal("1"), spend=Decimal("2"))

        assert budget_alerts_task() == 0
        assert recorded_alerts() == []

    def test_the_webhook_receives_the_alert_as_json(self, upstream):
        customer = end_user_make(
            user_id="customer-42", alias="Acme", max_budget=Decimal("20"), spend=Decimal("10.5")
        )
        webhook_answers(upstream, 200)

        assert budget_alerts_task() == 1

        assert upstream.last.method == "POST"
        assert upstream.last.json == {
            "type": "budget_alert",
            "entity": "end_user",
            "entity_id": str(customer.pk),
            "name": "Acme",
            "threshold": "50",
            "spend": "10.5000000000",
            "limit": "10.000000000000",
            "max_budget": "20.0000000000",
            "period_start": customer.created_at.isoformat(),
            "period_end": None,
            "message": (
                "Budget alert: end user 'Acme' spent 10.5000000000 USD, 50% of its 20.0000000000 USD budget."
            ),
        }

    def test_a_user_is_alerted_by_username_with_their_primary_key_as_id(self, upstream, mailoutbox):
        user = user_budget_make(
            username="lea", max_budget=Decimal("40"), soft_budget=Decimal("25"), spend=Decimal("30")
        )
        webhook_answers(upstream, 200, 200)

        assert budget_alerts_task() == 2

        assert webhook_alerts(upstream) == [("user", "soft"), ("user", "50")]
        assert upstream.last.json["entity_id"] == str(user.pk)
        assert upstream.last.json["name"] == "lea"
        assert upstream.last.json["period_start"] == user.created_at.isoformat()
        assert [message.subject for message in mailoutbox] == [
            "Budget alert: user 'lea' spent 30.0000000000 USD, past its soft budget of 25.0000000000 USD.",
            "Budget alert: user 'lea' spent 30.0000000000 USD, 50% of its 40.0000000000 USD budget.",
        ]
        assert recorded_alerts() == [("user", str(user.pk), "50"), ("user", str(user.pk), "soft")]
        assert budget_alerts_task() == 0

    def test_budgets_below_every_threshold_send_nothing(self, upstream, mailoutbox):
        key_spending("49.99", max_budget=Decimal("100"), soft_budget=Decimal("60"))

        assert budget_alerts_task() == 0
        assert upstream.requests == []
        assert mailoutbox == []

    def test_without_alert_channels_nothing_is_sent_or_recorded(self, settings, upstream, mailoutbox):
        gateway_set(settings, ALERT_WEBHOOK_URL="", ALERT_EMAILS=[])
        team_make(max_budget=Decimal("1"), spend=Decimal("1"))

        assert budget_alerts_task() == 0
        assert (upstream.requests, mailoutbox, recorded_alerts()) == ([], [], [])


class TestLedgerPrune:
    @pytest.fixture(autouse=True)
    def retention(self, settings):
        gateway_set(settings, LEDGER_RETENTION_DAYS=90)

    def test_it_deletes_rows_past_retention_in_batches_and_keeps_the_rollups(self):
        now = timezone.now()
        for days_ago in (120, 100, 95, 91, 89, 0):
            ledger_entry_make(request_id=f"day-{days_ago}", created_at=now - timedelta(days=days_ago))
        SpendRollup.objects.create(day=(now - timedelta(days=100)).date(), requests=1, cost=Decimal("1"))

        with CaptureQueriesContext(connection) as queries:
            deleted = ledger_prune(batch_size=3)

        assert deleted == 4
        assert sorted(LedgerEntry.objects.values_list("request_id", flat=True)) == ["day-0", "day-89"]
        assert sum(query["sql"].startswith("DELETE") for query in queries) == 2
        assert SpendRollup.objects.count() == 1

    def test_the_task_prunes_with_the_configured_retention(self, settings):
        gateway_set(settings, LEDGER_RETENTION_DAYS=7)
        ledger_entry_make(created_at=timezone.now() - timedelta(days=8))
        ledger_entry_make(created_at=timezone.now() - timedelta(days=6))

        assert ledger_prune_task() == 1
        assert LedgerEntry.objects.count() == 1

    def test_a_retention_of_zero_keeps_every_row(self, settings):
        gateway_set(settings, LEDGER_RETENTION_DAYS=0)
        ledger_entry_make(created_at=timezone.now() - timedelta(days=3650))

        assert ledger_prune_task() == 0
        assert LedgerEntry.objects.count() == 1

    def test_it_never_prunes_a_day_the_rollups_still_rebuild(self, settings):
        gateway_set(settings, LEDGER_RETENTION_DAYS=1)
        yesterday = utc_day_start(timezone.now().astimezone(UTC).date() - timedelta(days=1))
        ledger_entry_make(request_id="yesterday", created_at=yesterday)
        ledger_entry_make(request_id="before", created_at=yesterday - timedelta(microseconds=1))

        assert ledger_prune_task() == 1
        assert list(LedgerEntry.objects.values_list("request_id", flat=True)) == ["yesterday"]


def test_end_users_have_no_soft_budget_and_still_get_budget_alerts(settings, upstream):
    gateway_set(settings, ALERT_WEBHOOK_URL=upstream.url + WEBHOOK_PATH, ALERT_EMAILS=[])
    end_user_make(max_budget=Decimal("10"), spend=Decimal("8"))
    webhook_answers(upstream, 200, 200)

    assert budget_alerts_task() == 2
    assert webhook_alerts(upstream) == [("end_user", "50"), ("end_user", "80")]
    assert EndUser.objects.count() == 1
