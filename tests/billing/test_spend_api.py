"""GET /spend/logs (ledger rows) and GET /global/spend/report (rollups): figures, scoping, errors."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.billing.spend_factories import at, days_ago, ledger_cost, ledger_entry_make, rollups_refresh
from tests.llm_gateway.management_factories import assert_openai_error, key_make, member_make, user_make

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.spend_factories")]

A1, A2, B1 = Decimal("0.0012345678"), Decimal("2.5000000001"), Decimal("7.7777777777")


def body(response) -> object:
    """Return the JSON body with amounts as exact Decimals."""
    assert response.status_code == 200, response.content
    return json.loads(response.content, parse_float=Decimal)


@pytest.fixture
def owner(team_a):
    user = user_make(username="owen")
    member_make(team=team_a, user=user)
    return user


@pytest.fixture
def spend(team_a_key, team_a_manager, team_b_key, owner):
    """Requests of team A's plain key (owned by owen), its manager key, team B, and the master key."""
    owned = key_make(team=team_a_key.key.team, user=owner, key_alias="a-owned")
    entries = {
        "a1": ledger_entry_make(key=team_a_key.key, created_at=at(days_ago(2), 9), cost=A1, request_id="a1"),
        "a2": ledger_entry_make(
            key=team_a_key.key,
            created_at=at(days_ago(1), 9),
            cost=A2,
            request_id="a2",
            status="error",
            latency_ms=1500,
            time_to_first_token_ms=250,
            end_user="customer-1",
        ),
        "a3": ledger_entry_make(key=team_a_manager.key, created_at=at(days_ago(1), 10), request_id="a3"),
        "a4": ledger_entry_make(
            key=owned.key, created_at=at(days_ago(1), 11), request_id="a4", end_user="customer-1"
        ),
        "b1": ledger_entry_make(
            key=team_b_key.key, created_at=at(days_ago(1), 12), cost=B1, request_id="b1", model_group="claude"
        ),
        "m1": ledger_entry_make(created_at=at(days_ago(1), 13), request_id="m1", key_alias="master"),
    }
    rollups_refresh()
    return {**entries, "owned": owned}


def ids(response) -> list[str]:
    return [row["request_id"] for row in body(response)]


class TestSpendLogs:
    def test_it_needs_credentials(self, api, spend):
        assert_openai_error(api.get("/spend/logs", key=""), 401, "authentication_error")

    def test_the_master_key_reads_every_row_newest_first(self, api, spend):
        assert ids(api.get("/spend/logs")) == ["m1", "b1", "a4", "a3", "a2", "a1"]

    def test_a_row_has_litellm_s_shape_and_the_exact_cost(self, api, spend, team_a, team_a_key):
        [row] = body(api.get("/spend/logs", {"request_id": "a2"}))

        assert row["spend"] == A2
        assert row["api_key"] == team_a_key.token
        assert row["team_id"] == str(team_a.team_id)
        assert row["status"] == "failure"
        assert row["call_type"] == "chat"
        assert (row["model"], row["model_group"], row["custom_llm_provider"]) == (
            "gpt-4o",
            "gpt-4o",
            "openai",
        )
        assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (100, 20, 120)
        assert row["startTime"] == at(days_ago(1), 9).isoformat().replace("+00:00", "Z")
        assert row["endTime"] == at(days_ago(1), 9).replace(second=1, microsecond=500000).isoformat().replace(
            "+00:00", "Z"
        )
        assert row["completionStartTime"].endswith("09:00:00.250000Z")
        assert row["end_user"] == "customer-1"
        assert row["metadata"]["key_alias"] == "a-plain"
        assert row["metadata"]["http_status"] == 500
        assert row["messages"] is None
        assert team_a_key.secret not in json.dumps(row, default=str)

    def test_the_owner_is_named_by_their_user_id(self, api, spend):
        [row] = body(api.get("/spend/logs", {"request_id": "a4"}))

        assert row["user"] == "owen"

    def test_a_team_admin_key_reads_only_its_teams_rows(self, api, spend, team_a_manager):
        assert ids(api.get("/spend/logs", key=team_a_manager.secret)) == ["a4", "a3", "a2", "a1"]

    def test_a_team_admin_session_reads_only_its_teams_rows(self, team_a_admin_client, spend):
        assert ids(team_a_admin_client.get("/spend/logs")) == ["a4", "a3", "a2", "a1"]

    def test_a_plain_key_reads_only_its_own_rows(self, api, spend, team_a_key):
        assert ids(api.get("/spend/logs", key=team_a_key.secret)) == ["a2", "a1"]

    def test_a_key_of_another_team_is_refused(self, api, spend, team_a_manager, team_a_key, team_b_key):
        by_manager = api.get("/spend/logs", {"api_key": team_b_key.token}, key=team_a_manager.secret)
        by_plain_key = api.get("/spend/logs", {"api_key": team_b_key.secret}, key=team_a_key.secret)

        assert_openai_error(by_manager, 403, "permission_error")
        assert_openai_error(by_plain_key, 403, "permission_error")

    def test_a_request_id_of_another_team_gives_no_row(self, api, spend, team_a_manager):
        assert ids(api.get("/spend/logs", {"request_id": "b1"}, key=team_a_manager.secret)) == []

    def test_it_filters_by_key_secret_or_token_and_by_user(self, api, spend, team_a_key, team_a_manager):
        assert ids(api.get("/spend/logs", {"api_key": team_a_key.secret})) == ["a2", "a1"]
        assert ids(api.get("/spend/logs", {"api_key": team_a_key.token}, key=team_a_manager.secret)) == [
            "a2",
            "a1",
        ]
        assert ids(api.get("/spend/logs", {"user_id": "owen"})) == ["a4"]
        assert ids(api.get("/spend/logs", {"user_id": "owen"}, key=spend["owned"].secret)) == ["a4"]

    def test_a_plain_key_may_not_ask_for_another_user(self, api, spend, team_a_key):
        response = api.get("/spend/logs", {"user_id": "owen"}, key=team_a_key.secret)

        assert_openai_error(response, 403, "permission_error")

    def test_a_deleted_key_s_rows_stay_readable_by_token_for_admins(self, api, spend, team_b_key):
        token = team_b_key.token
        team_b_key.key.delete()

        assert ids(api.get("/spend/logs", {"api_key": token})) == ["b1"]

    def test_it_filters_by_days(self, api, spend):
        day = days_ago(2).isoformat()

        assert ids(api.get("/spend/logs", {"start_date": day, "end_date": day})) == ["a1"]
        assert ids(api.get("/spend/logs", {"start_date": days_ago(1).isoformat()}))[-1] == "a2"

    def test_it_pages_with_a_link_to_the_next_page(self, api, spend):
        first = api.get("/spend/logs", {"page_size": 4})
        second = api.get("/spend/logs", {"page_size": 4, "page": 2})

        assert ids(first) == ["m1", "b1", "a4", "a3"]
        assert first["Link"] == '<http://testserver/spend/logs?page_size=4&page=2>; rel="next"'
        assert (first["X-Page"], first["X-Page-Size"]) == ("1", "4")
        assert ids(second) == ["a2", "a1"]
        assert "Link" not in second

    @pytest.mark.parametrize(
        ("params", "param"),
        [
            ({"start_date": "yesterday"}, "start_date"),
            ({"end_date": "2025-02-30"}, "end_date"),
            ({"start_date": "2025-03-02", "end_date": "2025-03-01"}, "end_date"),
            ({"page_size": 0}, "page_size"),
            ({"summarize": "true"}, "summarize"),
        ],
    )
    def test_bad_parameters_are_a_400_in_openai_s_shape(self, api, params, param):
        assert_openai_error(api.get("/spend/logs", params), 400, "invalid_request_error", param=param)


def report(response) -> list:
    return body(response)


class TestGlobalSpendReport:
    def dates(self) -> dict[str, str]:
        return {"start_date": days_ago(6).isoformat(), "end_date": days_ago(0).isoformat()}

    def test_it_needs_credentials(self, api):
        assert_openai_error(
            api.get("/global/spend/report", self.dates(), key=""), 401, "authentication_error"
        )

    def test_it_reports_each_day_s_teams_with_their_model_and_key_split(
        self, api, spend, team_a_key, team_b_key
    ):
        days = report(api.get("/global/spend/report", self.dates()))

        assert [day["group_by_day"] for day in days] == [days_ago(2).isoformat(), days_ago(1).isoformat()]
        first, second = days
        assert first["teams"] == [
            {
                "team_name": "team-a",
                "total_spend": A1,
                "metadata": [
                    {"model": "gpt-4o", "api_key": team_a_key.token, "spend": A1, "total_tokens": 120}
                ],
            }
        ]
        teams = {team["team_name"]: team for team in second["teams"]}
        assert set(teams) == {"Unassigned Team", "team-a", "team-b"}
        assert teams["team-a"]["total_spend"] == A2 + 2 * Decimal("0.00125")
        assert teams["team-b"]["metadata"] == [
            {"model": "claude", "api_key": team_b_key.token, "spend": B1, "total_tokens": 120}
        ]
        total = sum(team["total_spend"] for day in days for team in day["teams"])
        assert total == ledger_cost()

    def test_a_team_admin_sees_only_their_teams(self, api, spend, team_a_manager, team_a):
        days = report(api.get("/global/spend/report", self.dates(), key=team_a_manager.secret))

        assert {team["team_name"] for day in days for team in day["teams"]} == {"team-a"}
        total = sum(team["total_spend"] for day in days for team in day["teams"])
        assert total == ledger_cost(team_id=str(team_a.team_id))

    def test_a_team_admin_naming_another_team_is_refused(self, api, spend, team_a_manager, team_b):
        response = api.get(
            "/global/spend/report",
            {**self.dates(), "team_id": str(team_b.team_id)},
            key=team_a_manager.secret,
        )

        assert_openai_error(response, 403, "permission_error")

    def test_a_plain_key_may_not_read_the_report(self, api, spend, team_a_key):
        response = api.get("/global/spend/report", self.dates(), key=team_a_key.secret)

        assert_openai_error(response, 403, "permission_error")

    def test_it_reports_per_customer(self, api, spend):
        days = report(api.get("/global/spend/report", {**self.dates(), "group_by": "customer"}))

        customers = {row["customer"]: row["total_spend"] for row in days[-1]["customers"]}
        assert customers == {"customer-1": A2 + Decimal("0.00125"), "": B1 + 2 * Decimal("0.00125")}

    def test_it_reports_per_key_biggest_first(self, api, spend, team_a_key, team_b_key):
        keys = report(api.get("/global/spend/report", {**self.dates(), "group_by": "api_key"}))

        assert [key["api_key"] for key in keys][:2] == [team_b_key.token, team_a_key.token]
        assert keys[1] == {
            "api_key": team_a_key.token,
            "total_cost": A1 + A2,
            "total_input_tokens": 200,
            "total_output_tokens": 40,
            "model_details": [
                {
                    "model": "gpt-4o",
                    "total_cost": A1 + A2,
                    "total_input_tokens": 200,
                    "total_output_tokens": 40,
                }
            ],
        }
        assert sum(key["total_cost"] for key in keys) == ledger_cost()

    def test_a_key_or_user_filter_gives_the_per_key_shape(self, api, spend, team_a_key):
        by_key = report(api.get("/global/spend/report", {**self.dates(), "api_key": team_a_key.secret}))
        by_user = report(api.get("/global/spend/report", {**self.dates(), "internal_user_id": "owen"}))

        assert [key["api_key"] for key in by_key] == [team_a_key.token]
        assert [key["api_key"] for key in by_user] == [spend["owned"].token]

    @pytest.mark.parametrize(
        ("params", "param"),
        [
            ({"end_date": "2025-03-01"}, "start_date"),
            ({"start_date": "2025-03-01"}, "end_date"),
            ({"start_date": "01/03/2025", "end_date": "2025-03-02"}, "start_date"),
            ({"start_date": "2024-01-01", "end_date": "2025-03-01"}, "end_date"),
            ({"start_date": "2025-03-01", "end_date": "2025-03-02", "group_by": "planet"}, "group_by"),
            ({"start_date": "2025-03-01", "end_date": "2025-03-02", "team_id": "not-a-team"}, "team_id"),
        ],
    )
    def test_bad_parameters_are_a_400_in_openai_s_shape(self, api, params, param):
        response = api.get("/global/spend/report", params)

        assert_openai_error(response, 400, "invalid_request_error", param=param)
