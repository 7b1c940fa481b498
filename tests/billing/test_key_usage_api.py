"""GET /key/usage: a key reads its own usage, limits and remaining budget, and nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.apis.self_service import key_usage
from llm_gateway.models import VirtualKey
from tests.billing.spend_factories import ledger_entry_make, rollups_refresh
from tests.llm_gateway.management_factories import assert_openai_error, key_make

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.spend_factories")]

URL = "/key/usage"
NOW = datetime(2025, 3, 20, 15, 0, tzinfo=UTC)


def body(response) -> dict:
    assert response.status_code == 200, response.content
    return json.loads(response.content, parse_float=Decimal)


@pytest.fixture
def budgeted(team_a):
    """A key with a 30-day budget whose period started on 28 February at 15:00 (reset on 30 March)."""
    issued = key_make(
        team=team_a,
        key_alias="budgeted",
        max_budget=Decimal("10"),
        budget_duration="30d",
        rpm_limit=60,
        tpm_limit=10_000,
        max_parallel_requests=4,
        metadata={"owner": "secret team notes"},
    )
    VirtualKey.objects.filter(pk=issued.key.pk).update(
        budget_reset_at=datetime(2025, 3, 30, 15, 0, tzinfo=UTC), spend=Decimal("2.25")
    )
    issued.key.refresh_from_db()
    return issued


def request_at(key: VirtualKey, moment: datetime, cost: str, **fields) -> None:
    ledger_entry_make(key=key, created_at=moment, cost=Decimal(cost), **fields)


class TestKeyUsageFigures:
    def test_today_and_the_period_add_up_the_key_s_requests(self, budgeted, team_a_key):
        key = budgeted.key
        request_at(key, datetime(2025, 2, 27, 12, tzinfo=UTC), "100")  # an earlier period
        request_at(
            key, datetime(2025, 2, 28, 14, tzinfo=UTC), "100"
        )  # the period's first day, before it began
        request_at(key, datetime(2025, 2, 28, 16, tzinfo=UTC), "0.0000000001")
        request_at(key, datetime(2025, 3, 10, 12, tzinfo=UTC), "1.25", status="error")
        request_at(
            key, datetime(2025, 3, 20, 9, tzinfo=UTC), "0.3333333333", prompt_tokens=7, completion_tokens=5
        )
        request_at(team_a_key.key, datetime(2025, 3, 20, 9, tzinfo=UTC), "50")  # another key
        rollups_refresh()

        usage = key_usage(key=key, now=NOW)

        today, period = usage["usage"]["today"], usage["usage"]["period"]
        assert today["start"] == datetime(2025, 3, 20, tzinfo=UTC)
        assert (today["figures"].cost, today["figures"].requests, today["figures"].total_tokens) == (
            Decimal("0.3333333333"),
            1,
            12,
        )
        assert (period["start"], period["end"]) == (
            datetime(2025, 2, 28, 15, tzinfo=UTC),
            datetime(2025, 3, 30, 15, tzinfo=UTC),
        )
        assert period["figures"].cost == Decimal("1.5833333334")
        assert (period["figures"].requests, period["figures"].errors) == (3, 1)
        assert usage["budget"] == {
            "spend": Decimal("2.25"),
            "held": Decimal("0"),
            "remaining": Decimal("7.75"),
        }

    def test_a_key_without_a_budget_period_counts_since_it_was_made(self, team_a):
        issued = key_make(team=team_a)
        VirtualKey.objects.filter(pk=issued.key.pk).update(created_at=datetime(2025, 3, 1, 8, tzinfo=UTC))
        issued.key.refresh_from_db()
        request_at(issued.key, datetime(2025, 3, 1, 7, tzinfo=UTC), "5")  # before it was made: another story
        request_at(issued.key, datetime(2025, 3, 1, 9, tzinfo=UTC), "0.25")
        request_at(issued.key, datetime(2025, 3, 5, 9, tzinfo=UTC), "0.5")
        rollups_refresh()

        usage = key_usage(key=issued.key, now=NOW)

        assert usage["usage"]["period"]["end"] is None
        assert usage["usage"]["period"]["figures"].cost == Decimal("0.75")
        assert usage["budget"]["remaining"] is None
        assert usage["limits"]["budget_reset_at"] is None

    def test_a_period_whose_reset_time_passed_starts_again_at_zero(self, budgeted):
        later = datetime(2025, 4, 2, 12, tzinfo=UTC)

        usage = key_usage(key=budgeted.key, now=later)

        assert usage["budget"]["spend"] == Decimal("0")
        assert usage["limits"]["budget_reset_at"] == datetime(2025, 4, 29, 15, tzinfo=UTC)
        assert usage["usage"]["period"]["start"] == datetime(2025, 3, 30, 15, tzinfo=UTC)


class TestKeyUsageEndpoint:
    def test_it_needs_credentials(self, api):
        assert_openai_error(api.get(URL, key=""), 401, "authentication_error")

    def test_an_unknown_key_is_a_401(self, api):
        assert_openai_error(api.get(URL, key="sk-not-a-key"), 401, "authentication_error")

    def test_the_master_key_has_no_usage_of_its_own(self, api):
        assert_openai_error(api.get(URL), 403, "permission_error")

    def test_an_admin_session_is_not_a_key(self, superuser_client):
        assert_openai_error(superuser_client.get(URL), 401, "authentication_error")

    def test_a_key_reads_its_usage_limits_and_budget_and_nothing_more(self, api, budgeted):
        VirtualKey.objects.filter(pk=budgeted.key.pk).update(
            budget_reset_at=timezone.now() + timedelta(days=3)
        )
        request_at(budgeted.key, timezone.now() - timedelta(seconds=1), "0.1234567891")
        rollups_refresh()

        usage = body(api.get(URL, key=budgeted.secret))

        assert set(usage) == {"key", "usage", "limits", "budget"}
        assert usage["key"] == {
            "token": budgeted.token,
            "key_alias": "budgeted",
            "key_name": budgeted.key.key_prefix,
        }
        assert usage["limits"] == {
            "rpm_limit": 60,
            "tpm_limit": 10_000,
            "max_parallel_requests": 4,
            "max_budget": Decimal("10"),
            "budget_duration": "30d",
            "budget_reset_at": usage["limits"]["budget_reset_at"],
        }
        assert usage["budget"] == {
            "spend": Decimal("2.25"),
            "held": Decimal("0"),
            "remaining": Decimal("7.75"),
        }
        today = usage["usage"]["today"]
        assert (
            today["spend"],
            today["requests"],
            today["successful_requests"],
            today["failed_requests"],
        ) == (
            Decimal("0.1234567891"),
            1,
            1,
            0,
        )
        assert (today["prompt_tokens"], today["completion_tokens"], today["total_tokens"]) == (100, 20, 120)
        assert usage["usage"]["period"]["spend"] == Decimal("0.1234567891")
        text = json.dumps(usage, default=str)
        assert "secret team notes" not in text and str(budgeted.key.team_id) not in text
        assert budgeted.secret not in text

    def test_a_key_sees_only_its_own_usage(self, api, budgeted, team_a_key):
        request_at(team_a_key.key, timezone.now() - timedelta(seconds=1), "3")
        rollups_refresh()

        usage = body(api.get(URL, key=budgeted.secret))

        assert usage["usage"]["today"]["requests"] == 0
        assert usage["usage"]["today"]["spend"] == Decimal("0")

    def test_a_blocked_key_is_refused(self, api, budgeted):
        VirtualKey.objects.filter(pk=budgeted.key.pk).update(blocked=True)

        assert_openai_error(api.get(URL, key=budgeted.secret), 401, "authentication_error")
