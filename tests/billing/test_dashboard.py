"""The spend dashboard in the admin: who sees which teams, exact figures, CSV exports, budget burn.

A render's queries and limiter reads do not grow with the number of keys: it shows the first rows of
each table, and its CSV exports hold them all.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import billing.limits
from billing import selectors
from billing.dashboards.sidebar import sidebar_navigation
from billing.dashboards.tables import SHOWN_ROWS
from billing.limits import LocalLimiter, RedisLimiter
from billing.limits.types import AdmissionPlan, BudgetLimit, BudgetSpend
from billing.models import LedgerEntry, SpendRollup
from llm_gateway.admin.display import usd
from llm_gateway.models import Membership
from tests.billing.spend_factories import (
    at,
    days_ago,
    ledger_cost,
    ledger_entry_make,
    rollup_make,
    rollups_refresh,
)
from tests.llm_gateway.factories import key_make, membership_make, team_admin_make, team_make, user_make

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.spend_factories")]

URL = "/admin/billing/spend/"


@pytest.fixture
def team_a():
    return team_make(team_alias="Team Alpha")


@pytest.fixture
def team_b():
    return team_make(team_alias="Team Bravo")


@pytest.fixture
def ledger(team_a, team_b):
    """Requests of both teams and of a key without a team over three days, rolled up."""
    key_a, _ = key_make(team=team_a, key_alias="alpha-prod")
    key_b, _ = key_make(team=team_b, key_alias="bravo-prod")
    lone_key, _ = key_make(key_alias="no-team-key")
    for offset, cost in ((1, "0.0012345678"), (2, "1.5000000001"), (3, "0.25")):
        ledger_entry_make(
            key=key_a, created_at=at(days_ago(offset)), cost=Decimal(cost), latency_ms=100 * offset
        )
    ledger_entry_make(key=key_a, created_at=at(days_ago(1), 13), cost=Decimal("0.1"), status="error")
    ledger_entry_make(
        key=key_b, created_at=at(days_ago(2)), cost=Decimal("7.7777777777"), model_group="claude"
    )
    ledger_entry_make(key=lone_key, created_at=at(days_ago(1)), cost=Decimal("0.03"), provider="azure")
    rollups_refresh()
    return {"a": key_a, "b": key_b, "lone": lone_key}


class CountingReads:
    """Count the budget counters read from a limiter (either backend, as a mixin)."""

    reads = 0

    async def spend_get(self, budget: BudgetLimit) -> BudgetSpend | None:
        self.reads += 1
        return await super().spend_get(budget)


class CountingLocalLimiter(CountingReads, LocalLimiter):
    pass


class CountingRedisLimiter(CountingReads, RedisLimiter):
    pass


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def counting_limiter(request, monkeypatch) -> Iterator[CountingReads]:
    """Make a counting limiter the process's limiter (what ``billing.limits.limiter()`` returns)."""
    if request.param == "local":
        counting = CountingLocalLimiter()
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"{request.getfixturevalue('redis_prefix')}:dashboard-{uuid.uuid4().hex}"
        counting = CountingRedisLimiter(url, prefix=prefix)
    monkeypatch.setattr(billing.limits, "_limiter", counting)
    yield counting
    if request.param == "redis":
        client = redis.Redis.from_url(url)
        names = list(client.scan_iter(match=f"{prefix}:*"))
        if names:
            client.delete(*names)
        client.close()


def spenders_make(team, count: int, first: int = 0) -> None:
    """Make keys spender-<first>... with a budget and an owner, the later ones spending more, yesterday."""
    for number in range(first, first + count):
        owner = get_user_model().objects.create(username=f"owner-{number:02d}")  # no password: no hashing
        key, _ = key_make(team=team, key_alias=f"spender-{number:02d}", max_budget=Decimal("100"))
        key.spend = Decimal(number)
        key.save()
        rollup_make(
            day=days_ago(1),
            team_id=str(team.team_id),
            key_token=str(key.token),
            user_id=str(owner.pk),
            cost=Decimal(number + 1),
            requests=1,
        )


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_range() -> dict[str, str]:
    return {"start": days_ago(6).isoformat(), "end": days_ago(0).isoformat()}


def csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def kpi(response, name: str) -> str:
    """Return the text shown for one headline figure (its element carries data-kpi)."""
    html = response.content.decode()
    start = html.index(f'data-kpi="{name}">') + len(f'data-kpi="{name}">')
    return html[start : html.index("<", start)]


def test_a_superuser_sees_every_team_and_the_total_of_all(ledger, team_a, team_b):
    response = client_for(user_make(superuser=True)).get(URL, page_range())

    assert response.status_code == 200
    assert kpi(response, "total-spend") == usd(ledger_cost())
    assert kpi(response, "requests") == "6"
    assert "Team Alpha" in response.content.decode()
    assert "Team Bravo" in response.content.decode()
    assert "(no team)" in response.content.decode()


def test_a_team_admin_sees_only_their_team(ledger, team_a, team_b):
    response = client_for(team_admin_make(team=team_a)).get(URL, page_range())

    assert response.status_code == 200
    html = response.content.decode()
    assert kpi(response, "total-spend") == usd(ledger_cost(team_id=str(team_a.team_id)))
    assert kpi(response, "requests") == "4"
    assert "Team Bravo" not in html
    assert "bravo-prod" not in html
    assert "no-team-key" not in html
    assert usd(Decimal("7.7777777777")) not in html


def test_a_team_admin_of_one_team_has_it_chosen_and_no_all_teams_choice(ledger, team_a):
    response = client_for(team_admin_make(team=team_a)).get(URL)

    field = response.context["form"]["team"]
    assert field.value() == str(team_a.team_id)
    assert [value for value, _ in field.field.choices] == [str(team_a.team_id)]


def test_a_team_admin_of_two_teams_may_pick_either_or_both(ledger, team_a, team_b):
    admin_of_both = team_admin_make(team=team_a)
    membership_make(user=admin_of_both, team=team_b, role=Membership.Role.ADMIN)
    client = client_for(admin_of_both)

    both = client.get(URL, page_range())
    only_b = client.get(URL, {**page_range(), "team": str(team_b.team_id)})

    assert kpi(both, "total-spend") == usd(
        ledger_cost(team_id__in=[str(team_a.team_id), str(team_b.team_id)])
    )
    assert kpi(only_b, "total-spend") == usd(Decimal("7.7777777777"))


def test_a_crafted_team_of_another_team_is_refused(ledger, team_a, team_b):
    client = client_for(team_admin_make(team=team_a))

    page = client.get(URL, {**page_range(), "team": str(team_b.team_id)})
    export = client.get(
        URL, {**page_range(), "team": str(team_b.team_id), "format": "csv", "table": "by_team"}
    )

    assert page.status_code == 400
    assert "kpis" not in page.context
    assert "Team Bravo" not in page.content.decode()
    assert export.status_code == 400
    assert b"7.7777777777" not in export.content


def test_a_team_admin_export_holds_only_their_team(ledger, team_a):
    client = client_for(team_admin_make(team=team_a))

    rows = csv_rows(client.get(URL, {**page_range(), "format": "csv", "table": "by_key"}))

    assert [row["Key"] for row in rows] == ["alpha-prod"]
    assert Decimal(rows[0]["Spend (USD)"]) == ledger_cost(team_id=str(team_a.team_id))


def test_finance_staff_with_the_view_permission_see_every_team(ledger, team_b):
    finance = user_make(staff=True)
    finance.user_permissions.add(Permission.objects.get(codename="view_spendrollup"))

    response = client_for(finance).get(URL, page_range())

    assert response.status_code == 200
    assert kpi(response, "total-spend") == usd(ledger_cost())
    assert "Team Bravo" in response.content.decode()


def test_staff_who_administer_no_team_are_refused(ledger, team_a):
    member = user_make(staff=True)
    membership_make(user=member, team=team_a, role=Membership.Role.MEMBER)

    assert client_for(member).get(URL).status_code == 403
    assert client_for(user_make(staff=True)).get(URL).status_code == 403


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = Client().get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/billing/spend/")


def test_the_figures_equal_the_rollup_sums_exactly(team_a):
    day = days_ago(2)
    team_id = str(team_a.team_id)
    amounts = [Decimal("0.0000000001"), Decimal("123456.7890123456"), Decimal("0.3333333333")]
    for number, amount in enumerate(amounts):
        rollup_make(
            day=day,
            team_id=team_id,
            key_token=f"key-{number}",
            cost=amount,
            requests=10 + number,
            errors=number,
            prompt_tokens=1000,
            completion_tokens=500 + number,
            latency_ms_sum=4000,
        )
    superuser = client_for(user_make(superuser=True))

    page = superuser.get(URL, page_range())
    by_team = csv_rows(superuser.get(URL, {**page_range(), "format": "csv", "table": "by_team"}))
    by_day = csv_rows(superuser.get(URL, {**page_range(), "format": "csv", "table": "by_day"}))

    total = sum(amounts, Decimal("0"))
    assert total == Decimal("123457.1223456790")
    assert kpi(page, "total-spend") == usd(total) == "$123,457.122346"
    assert kpi(page, "requests") == "33"
    assert kpi(page, "tokens") == "4,503"
    assert kpi(page, "error-rate") == "9.09%"  # 3 errors in 33 requests
    assert kpi(page, "latency") == "364 ms"  # 12,000 ms over 33 requests
    assert Decimal(by_team[0].pop("Spend (USD)")) == total  # exact, whatever the trailing zeros
    assert by_team == [
        {
            "Team": "Team Alpha",
            "Team id": team_id,
            "Requests": "33",
            "Errors": "3",
            "Error rate": str(Decimal(3) / 33),
            "Tokens": "4503",
            "Prompt tokens": "3000",
            "Completion tokens": "1503",
            "Avg latency": str(Decimal(12000) / 33),
        }
    ]
    assert len(by_day) == 7
    assert {row["Day"]: Decimal(row["Spend (USD)"]) for row in by_day}[day.isoformat()] == total
    assert sum(Decimal(row["Spend (USD)"]) for row in by_day) == total


def test_the_default_range_is_the_last_30_days(team_a):
    rollup_make(day=days_ago(29), team_id=str(team_a.team_id), cost=Decimal("1"), requests=1)
    rollup_make(day=days_ago(30), team_id=str(team_a.team_id), cost=Decimal("100"), requests=1)

    response = client_for(user_make(superuser=True)).get(URL)

    assert kpi(response, "total-spend") == "$1.00"
    assert response.context["form"]["start"].value() == days_ago(29).isoformat()


def test_every_table_exports(ledger):
    client = client_for(user_make(superuser=True))

    exports = {
        name: csv_rows(client.get(URL, {**page_range(), "format": "csv", "table": name}))
        for name in ("by_day", "by_team", "by_key", "top_keys", "by_user", "by_model", "by_provider")
    }

    assert [row["Model"] for row in exports["by_model"]] == ["claude", "gpt-4o"]
    assert [row["Provider"] for row in exports["by_provider"]] == ["openai", "azure"]
    assert [row["Key"] for row in exports["top_keys"]] == ["bravo-prod", "alpha-prod", "no-team-key"]
    assert len(exports["by_user"]) == 1 and exports["by_user"][0]["User"] == "(no user)"
    assert Decimal(exports["by_user"][0]["Spend (USD)"]) == ledger_cost()


def test_an_unknown_table_or_a_backwards_range_is_a_400(ledger):
    client = client_for(user_make(superuser=True))

    unknown = client.get(URL, {"format": "csv", "table": "by_planet"})
    backwards = client.get(URL, {"start": days_ago(1).isoformat(), "end": days_ago(5).isoformat()})
    too_long = client.get(URL, {"start": days_ago(400).isoformat(), "end": days_ago(0).isoformat()})

    assert unknown.status_code == 400 and unknown["Content-Type"].startswith("text/plain")
    assert backwards.status_code == 400
    assert "The end comes before the start." in backwards.content.decode()
    assert too_long.status_code == 400


def test_a_range_ending_on_the_last_representable_day_is_a_400_not_a_500(ledger):
    client = client_for(user_make(superuser=True))

    response = client.get(URL, {"start": "9999-12-01", "end": "9999-12-31"})

    assert response.status_code == 400
    assert "9999-12-30" in response.content.decode()


def test_csv_cells_that_would_be_formulas_are_quoted(team_a):
    rollup_make(day=days_ago(1), team_id=str(team_a.team_id), end_user="=cmd()", model_group="=HYPERLINK()")

    rows = csv_rows(
        client_for(user_make(superuser=True)).get(URL, {**page_range(), "format": "csv", "table": "by_model"})
    )

    assert rows[0]["Model"] == "'=HYPERLINK()"


def test_the_budget_burn_shows_spent_held_remaining_and_the_projection(team_a):
    now = timezone.now()
    key, _ = key_make(team=team_a, key_alias="burner", max_budget=Decimal("10"), budget_duration="30d")
    key.budget_reset_at = now + timedelta(days=20)  # the period started 10 days ago: a third has elapsed
    key.spend = Decimal("2.5")
    key.save()
    team_a.max_budget = Decimal("100")
    team_a.save()

    [burn] = selectors.budget_burn_keys(team_ids={str(team_a.team_id)}, now=now).rows
    rows = csv_rows(
        client_for(team_admin_make(team=team_a)).get(
            URL, {**page_range(), "format": "csv", "table": "budget_keys"}
        )
    )

    assert (burn.spent, burn.held, burn.remaining) == (Decimal("2.5"), Decimal("0"), Decimal("7.5"))
    assert burn.projected(now) == Decimal("7.5000000000")
    assert rows[0]["Key"] == "burner"
    money = [Decimal(rows[0][f"{name} (USD)"]) for name in ("Max budget", "Spent", "Held", "Remaining")]
    assert money == [Decimal("10"), Decimal("2.5"), Decimal("0"), Decimal("7.5")]
    assert Decimal(rows[0]["Projected at period end (USD)"]).quantize(Decimal("0.01")) == Decimal("7.50")


def test_a_budget_whose_reset_time_passed_starts_its_new_period_at_zero(team_a):
    now = timezone.now()
    key, _ = key_make(team=team_a, max_budget=Decimal("10"), budget_duration="1d")
    key.budget_reset_at = now - timedelta(hours=1)
    key.spend = Decimal("9")
    key.save()

    [burn] = selectors.budget_burn_keys(team_ids=None, now=now).rows

    assert burn.spent == Decimal("0")
    assert burn.period_end == key.budget_reset_at + timedelta(days=1)


def test_a_lifetime_budget_has_no_projection(team_a):
    team_a.max_budget, team_a.spend = Decimal("50"), Decimal("20")
    team_a.save()

    [burn] = selectors.budget_burn_teams(team_ids={str(team_a.team_id)}, now=timezone.now()).rows

    assert burn.remaining == Decimal("30")
    assert burn.projected(timezone.now()) is None


def test_latency_percentiles_come_from_a_bounded_sample_of_the_latest_requests(team_a, team_b):
    key_a, _ = key_make(team=team_a)
    key_b, _ = key_make(team=team_b)
    day = days_ago(1)
    for minute in range(20):
        ledger_entry_make(key=key_a, created_at=at(day, 10, minute), latency_ms=10 * (minute + 1))
    ledger_entry_make(key=key_b, created_at=at(day, 11), latency_ms=99_999)

    everything = selectors.latency_percentiles(start=day, end=day, team_ids={str(team_a.team_id)})
    latest_five = selectors.latency_percentiles(
        start=day, end=day, team_ids={str(team_a.team_id)}, sample_size=5
    )
    all_teams = selectors.latency_percentiles(start=day, end=day, team_ids=None, sample_size=3)

    assert (everything.p50_ms, everything.p95_ms, everything.sample_size) == (100, 190, 20)
    assert not everything.is_sampled
    assert (latest_five.p50_ms, latest_five.p95_ms, latest_five.is_sampled) == (180, 200, True)
    assert (all_teams.p50_ms, all_teams.p95_ms) == (200, 99_999)


def test_the_dashboard_shows_the_rollups_not_the_ledger(ledger):
    superuser = user_make(superuser=True)
    client = client_for(superuser)
    LedgerEntry.objects.update(cost=Decimal("999"))  # the ledger disagrees: the page must show the rollups

    response = client.get(URL, page_range())

    assert kpi(response, "total-spend") == usd(
        sum(SpendRollup.objects.values_list("cost", flat=True), Decimal(0))
    )


def test_the_sidebar_lists_the_admin_s_apps_and_spend_for_those_who_may_see_it(rf, team_a):
    def sidebar(user) -> dict[str, list[str]]:
        request = rf.get("/admin/")
        request.user = user
        return {
            group["title"]: [item["title"] for item in group["items"]]
            for group in sidebar_navigation(request)
        }

    superuser, team_admin = user_make(superuser=True), team_admin_make(team=team_a)

    assert sidebar(superuser)["Billing"][0] == "Spend"
    assert "Virtual keys" in sidebar(superuser)["LLM Gateway"]
    assert sidebar(team_admin)["Billing"][0] == "Spend"
    assert "Spend" not in str(sidebar(user_make(staff=True)))


def test_the_page_s_queries_and_limiter_reads_do_not_grow_with_the_keys(team_a, counting_limiter):
    team_a.max_budget = Decimal("1000")
    team_a.save()
    client = client_for(user_make(superuser=True))
    spenders_make(team_a, 5)
    client.get(URL, page_range())  # the first request of a session loads what later ones reuse

    def render() -> tuple[int, int]:
        counting_limiter.reads = 0
        with CaptureQueriesContext(connection) as queries:
            response = client.get(URL, page_range())
        assert response.status_code == 200
        return len(queries), counting_limiter.reads

    queries_for_5, reads_for_5 = render()
    spenders_make(team_a, 45, first=5)
    queries_for_50, reads_for_50 = render()

    assert queries_for_50 == queries_for_5
    assert reads_for_5 == 5 + 1  # every key's budget, and the team's
    assert reads_for_50 == SHOWN_ROWS + 1  # the holds of the shown rows only


def test_the_page_shows_the_first_rows_and_the_csv_holds_them_all(team_a):
    spenders_make(team_a, 20)
    client = client_for(user_make(superuser=True))

    page = client.get(URL, page_range())
    by_key = csv_rows(client.get(URL, {**page_range(), "format": "csv", "table": "by_key"}))
    budget_keys = csv_rows(client.get(URL, {**page_range(), "format": "csv", "table": "budget_keys"}))

    biggest_first = [f"spender-{number:02d}" for number in range(19, -1, -1)]
    sections = {section["name"]: section for section in page.context["breakdowns"] + page.context["budgets"]}
    for name in ("by_key", "budget_keys"):
        shown = [row[0] for row in sections[name]["table"]["rows"]]
        assert shown == [("Key", alias) for alias in biggest_first[:SHOWN_ROWS]], name
    assert (sections["by_key"]["shown_count"], sections["by_key"]["row_count"]) == (SHOWN_ROWS, 20)
    assert "The first 15 of 20 rows; the CSV holds them all." in page.content.decode()
    assert [row["Key"] for row in by_key] == biggest_first
    assert [row["Key"] for row in budget_keys] == biggest_first
    assert [Decimal(row["Spent (USD)"]) for row in budget_keys] == [Decimal(n) for n in range(19, -1, -1)]


def test_the_budget_burn_shows_what_the_limiter_holds_on_each_budget(team_a, counting_limiter):
    team_a.max_budget = Decimal("100")
    team_a.save()
    big, _ = key_make(team=team_a, key_alias="big", max_budget=Decimal("50"))  # lifetime budgets
    small, _ = key_make(team=team_a, key_alias="small", max_budget=Decimal("50"))
    for key, spend, reserve in ((big, "20", "1.5"), (small, "5", "0.25")):
        key.spend = Decimal(spend)
        key.save()
        budgets = (
            BudgetLimit(scope="key", id=str(key.token), max_budget=Decimal("50")),
            BudgetLimit(scope="team", id=str(team_a.team_id), max_budget=Decimal("100")),
        )
        plan = AdmissionPlan(
            request_id=f"in-flight-{key.key_alias}", budgets=budgets, reserve=Decimal(reserve)
        )
        asyncio.run(counting_limiter.admit(plan))
    client = client_for(team_admin_make(team=team_a))

    page = client.get(URL, page_range())
    keys = csv_rows(client.get(URL, {**page_range(), "format": "csv", "table": "budget_keys"}))
    teams = csv_rows(client.get(URL, {**page_range(), "format": "csv", "table": "budget_teams"}))

    assert [(row["Key"], Decimal(row["Held (USD)"]), Decimal(row["Remaining (USD)"])) for row in keys] == [
        ("big", Decimal("1.5"), Decimal("28.5")),
        ("small", Decimal("0.25"), Decimal("44.75")),
    ]
    assert (Decimal(teams[0]["Held (USD)"]), Decimal(teams[0]["Remaining (USD)"])) == (
        Decimal("1.75"),
        Decimal("98.25"),
    )
    shown = {section["name"]: section["table"]["rows"] for section in page.context["budgets"]}
    assert [dict(row)["Held"] for row in shown["budget_keys"]] == [usd(Decimal("1.5")), usd(Decimal("0.25"))]
