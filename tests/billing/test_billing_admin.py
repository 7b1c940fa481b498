"""Billing's admin: prices edited by operators, a read-only ledger, and team admins kept to their teams."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing import pricing
from billing.admin import CappedCountPaginator
from billing.models import BudgetAlert, LedgerEntry, Price, SpendRollup
from billing.pricing import price_for
from llm_gateway.models import Team
from tests.llm_gateway.factories import deployment_make, team_admin_make, team_make

pytestmark = pytest.mark.django_db


def url(model: str, view: str, *args: Any) -> str:
    return reverse(f"admin:billing_{model}_{view}", args=args)


def ledger_make(team: Team | None = None, **fields: Any) -> LedgerEntry:
    fields.setdefault("request_id", f"req-{uuid.uuid4().hex}")
    fields.setdefault("created_at", timezone.now())
    fields.setdefault("key_alias", "search-bot")
    fields.setdefault("model_group", "gpt-4o-mini")
    fields.setdefault("provider", "openai")
    fields.setdefault("prompt_tokens", 1200)
    fields.setdefault("completion_tokens", 30)
    fields.setdefault("cost", Decimal("0.000198"))
    fields.setdefault("latency_ms", 250)
    return LedgerEntry.objects.create(team_id=str(team.pk) if team else "", **fields)


def rollup_make(team: Team, **fields: Any) -> SpendRollup:
    fields.setdefault("day", timezone.now().date())
    fields.setdefault("model_group", "gpt-4o-mini")
    return SpendRollup.objects.create(
        team_id=str(team.pk), requests=4, cost=Decimal("0.5"), latency_ms_sum=1000, **fields
    )


def alert_make() -> BudgetAlert:
    return BudgetAlert.objects.create(
        entity="team",
        entity_id=str(uuid.uuid4()),
        period_start=timezone.now(),
        threshold="80",
        spend=Decimal("80.5"),
        limit=Decimal("100"),
    )


def price_form(**overrides: Any) -> dict[str, Any]:
    """Return the price add/change form as a browser posts it, empty fields included."""
    data = {
        "model": "",
        "provider": "",
        "deployment_id": "",
        "mode": "chat",
        "input_cost_per_token": "",
        "output_cost_per_token": "",
        "cache_read_input_token_cost": "",
        "cache_creation_input_token_cost": "",
        "output_cost_per_reasoning_token": "",
        "output_cost_per_image": "",
        "effective_from_0": "",
        "effective_from_1": "",
        "effective_to_0": "",
        "effective_to_1": "",
        "_save": "Save",
    }
    data.update(overrides)
    return data


@pytest.fixture(autouse=True)
def fresh_price_book():
    pricing.book.clear()
    yield
    pricing.book.clear()


@pytest.fixture
def team() -> Team:
    return team_make(team_alias="team-alpha")


@pytest.fixture
def other_team() -> Team:
    return team_make(team_alias="team-bravo")


@pytest.fixture
def team_admin_client(client: Client, team: Team) -> Client:
    """A client logged in as a team admin of `team` with no model permission."""
    client.force_login(team_admin_make(team=team, username="alpha-admin"))
    return client


class TestPrices:
    def test_the_list_shows_prices_per_million_tokens(self, admin_client):
        Price.objects.create(
            model="house-model",
            provider="openai",
            input_cost_per_token=Decimal("0.00000015"),
            output_cost_per_token=Decimal("0.0000006"),
            cache_read_input_token_cost=Decimal("0.000000075"),
            output_cost_per_image=Decimal("0.04"),
        )

        html = admin_client.get(url("price", "changelist"), {"q": "house-model"}).content.decode()

        for shown in ("$0.15", "$0.60", "$0.075", "$0.04"):
            assert shown in html, shown

    @pytest.mark.parametrize(
        "query", [{}, {"provider": "openai"}, {"mode": "embedding"}, {"source": "admin"}, {"q": "gpt"}]
    )
    def test_the_list_renders_filtered(self, admin_client, query):
        Price.objects.create(model="house-model", input_cost_per_token=Decimal("0.000001"))

        assert admin_client.get(url("price", "changelist"), query).status_code == 200

    def test_the_source_filter_tells_admin_rows_from_bundled_ones(self, admin_client):
        Price.objects.create(model="house-model", input_cost_per_token=Decimal("0.000001"), source="admin")
        Price.objects.create(model="listed-model", input_cost_per_token=Decimal("0.000001"), source="bundled")

        html = admin_client.get(url("price", "changelist"), {"source": "admin"}).content.decode()

        assert "house-model" in html
        assert "listed-model" not in html

    def test_the_add_and_change_forms_render(self, admin_client):
        row = Price.objects.create(model="house-model", input_cost_per_token=Decimal("0.000001"))

        assert admin_client.get(url("price", "add")).status_code == 200
        assert admin_client.get(url("price", "change", row.pk)).status_code == 200

    def test_a_deployment_override_is_an_ordinary_add(self, admin_client, django_capture_on_commit_callbacks):
        deployment_make(model_id="dep-1", model="gpt-4o-mini")
        price_for("gpt-4o-mini", "openai", "dep-1", timezone.now())  # warm the cache

        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                url("price", "add"), price_form(deployment_id="dep-1", input_cost_per_token="0.0000001")
            )

        assert response.status_code == 302, response.content.decode()
        row = Price.objects.get(deployment_id="dep-1")
        assert (row.model, row.source) == ("gpt-4o-mini", "admin")
        quote = price_for("gpt-4o-mini", "openai", "dep-1", timezone.now())
        assert quote.snapshot["price_id"] == str(row.pk)
        assert quote.prices["input_cost_per_token"] == Decimal("0.0000001")

    def test_editing_a_bundled_price_makes_it_the_admins(self, admin_client):
        row = Price.objects.create(
            model="gpt-4o-mini",
            provider="openai",
            input_cost_per_token=Decimal("0.00000015"),
            source="bundled",
        )

        response = admin_client.post(
            url("price", "change", row.pk),
            price_form(model="gpt-4o-mini", provider="openai", input_cost_per_token="0.0000001"),
        )

        assert response.status_code == 302
        row.refresh_from_db()
        assert (row.source, row.input_cost_per_token) == ("admin", Decimal("0.0000001"))

    @pytest.mark.parametrize(
        ("fields", "error"),
        [
            ({"deployment_id": "no-such-deployment", "input_cost_per_token": "0.000001"}, "No deployment"),
            ({"model": "house-model", "input_cost_per_token": "-0.000001"}, "cannot be negative"),
            ({"model": "house-model"}, "at least one price"),
            ({"input_cost_per_token": "0.000001"}, "Enter the model"),
            (
                {
                    "model": "house-model",
                    "input_cost_per_token": "0.000001",
                    "effective_from_0": "2026-06-01",
                    "effective_from_1": "00:00:00",
                    "effective_to_0": "2026-05-01",
                    "effective_to_1": "00:00:00",
                },
                "must end after it starts",
            ),
        ],
    )
    def test_it_refuses_a_wrong_price(self, admin_client, fields, error):
        response = admin_client.post(url("price", "add"), price_form(**fields))

        assert response.status_code == 200
        assert error in response.content.decode()
        assert not Price.objects.filter(source="admin").exists()


class TestLedger:
    def test_the_list_shows_team_aliases_and_never_counts_the_whole_ledger(self, admin_client, team):
        entry = ledger_make(team, cost=Decimal("0.0123"))
        ledger_make(status=LedgerEntry.Status.ERROR)

        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url("ledgerentry", "changelist"))

        html = response.content.decode()
        assert response.status_code == 200
        assert entry.request_id in html
        assert "team-alpha" in html
        assert "$0.0123" in html
        ledger_counts = [
            query["sql"]
            for query in queries
            if "COUNT(" in query["sql"] and "billing_ledgerentry" in query["sql"]
        ]
        assert ledger_counts
        assert all("LIMIT" in sql for sql in ledger_counts), ledger_counts

    @pytest.mark.parametrize(
        "query",
        [
            {"status": "error"},
            {"billing_basis": "estimated"},
            {"provider": "openai"},
            {"model_group": "gpt-4o-mini"},
            {"operation": "embedding"},
            {"cache_hit__exact": "1"},
            {"created_at__year": "2026"},
        ],
    )
    def test_the_list_renders_filtered(self, admin_client, team, query):
        ledger_make(team)
        deployment_make(model_name="gpt-4o-mini")

        assert admin_client.get(url("ledgerentry", "changelist"), query).status_code == 200

    def test_the_team_filter_and_the_search_find_rows(self, admin_client, team, other_team):
        mine = ledger_make(team)
        theirs = ledger_make(other_team)

        by_team = admin_client.get(
            url("ledgerentry", "changelist"), {"team_id": str(team.pk)}
        ).content.decode()
        searched = admin_client.get(
            url("ledgerentry", "changelist"), {"q": theirs.request_id}
        ).content.decode()

        assert mine.request_id in by_team
        assert theirs.request_id not in by_team
        assert theirs.request_id in searched
        assert mine.request_id not in searched

    def test_the_count_stops_at_the_cap(self, admin_client, monkeypatch):
        monkeypatch.setattr(CappedCountPaginator, "cap", 2)
        for _ in range(5):
            ledger_make()

        response = admin_client.get(url("ledgerentry", "changelist"))

        assert response.context["cl"].result_count == 3

    def test_it_is_read_only_even_for_a_superuser(self, admin_client, team):
        entry = ledger_make(team)

        assert admin_client.get(url("ledgerentry", "change", entry.pk)).status_code == 200
        assert admin_client.get(url("ledgerentry", "add")).status_code == 403
        assert admin_client.post(url("ledgerentry", "change", entry.pk), {"cost": "0"}).status_code == 403
        assert admin_client.post(url("ledgerentry", "delete", entry.pk), {"post": "yes"}).status_code == 403
        entry.refresh_from_db()
        assert entry.cost == Decimal("0.000198")


class TestRollupsAndAlerts:
    def test_the_rollups_render_read_only(self, admin_client, team):
        rollup = rollup_make(team)

        html = admin_client.get(url("spendrollup", "changelist")).content.decode()

        assert "team-alpha" in html
        assert "250 ms" in html  # 1000 ms over 4 requests
        assert admin_client.get(url("spendrollup", "change", rollup.pk)).status_code == 200
        assert admin_client.get(url("spendrollup", "add")).status_code == 403

    def test_the_alerts_render_read_only(self, admin_client):
        alert = alert_make()

        html = admin_client.get(url("budgetalert", "changelist"), {"entity": "team"}).content.decode()

        assert alert.entity_id in html
        assert "$80.50" in html
        assert admin_client.get(url("budgetalert", "add")).status_code == 403
        assert admin_client.post(url("budgetalert", "delete", alert.pk), {"post": "yes"}).status_code == 403


class TestTeamAdmins:
    def test_they_see_their_teams_ledger_rows_only(self, team_admin_client, team, other_team):
        mine = ledger_make(team)
        theirs = ledger_make(other_team)
        no_team = ledger_make()

        html = team_admin_client.get(url("ledgerentry", "changelist")).content.decode()

        assert mine.request_id in html
        assert theirs.request_id not in html
        assert no_team.request_id not in html
        assert "team-bravo" not in html  # not even in the team filter
        assert team_admin_client.get(url("ledgerentry", "change", mine.pk)).status_code == 200
        assert team_admin_client.get(url("ledgerentry", "change", theirs.pk)).status_code == 404
        assert team_admin_client.post(url("ledgerentry", "change", mine.pk), {"cost": "0"}).status_code == 403

    def test_they_see_their_teams_rollups_only(self, team_admin_client, team, other_team):
        mine = rollup_make(team, provider="mine-provider")
        theirs = rollup_make(other_team, provider="their-provider")

        html = team_admin_client.get(url("spendrollup", "changelist")).content.decode()

        assert "mine-provider" in html
        assert "their-provider" not in html
        assert team_admin_client.get(url("spendrollup", "change", mine.pk)).status_code == 200
        assert team_admin_client.get(url("spendrollup", "change", theirs.pk)).status_code == 404

    def test_they_cannot_see_or_edit_prices_or_alerts(self, team_admin_client):
        row = Price.objects.create(model="house-model", input_cost_per_token=Decimal("0.000001"))
        alert_make()

        assert team_admin_client.get(url("price", "changelist")).status_code == 403
        assert team_admin_client.get(url("price", "change", row.pk)).status_code == 403
        assert team_admin_client.post(url("price", "add"), price_form(model="x")).status_code == 403
        assert team_admin_client.get(url("budgetalert", "changelist")).status_code == 403
        index = team_admin_client.get(reverse("admin:index"))
        visible = {model["object_name"] for app in index.context["available_apps"] for model in app["models"]}
        assert {"LedgerEntry", "SpendRollup"} <= visible
        assert not {"Price", "BudgetAlert"} & visible
