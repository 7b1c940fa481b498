"""GET /user/daily/activity and GET /team/daily/activity: LiteLLM's daily activity, from rollups."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from tests.billing.spend_factories import at, days_ago, ledger_entry_make, rollups_refresh
from tests.llm_gateway.management_factories import Api, assert_openai_error, key_make, member_make, user_make

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.spend_factories")]

USER_URL, TEAM_URL = "/user/daily/activity", "/team/daily/activity"
A_OLD, A_NEW, B_NEW = Decimal("0.0000000123"), Decimal("1.2345678901"), Decimal("9.99")
OWNED = Decimal("0.5")


def body(response) -> dict:
    assert response.status_code == 200, response.content
    return json.loads(response.content, parse_float=Decimal)


def dates(**extra) -> dict:
    return {"start_date": days_ago(6).isoformat(), "end_date": days_ago(0).isoformat(), **extra}


@pytest.fixture
def owner(team_a):
    user = user_make(username="owen", password="correct-horse-battery")
    member_make(team=team_a, user=user)
    return user


@pytest.fixture
def activity(team_a_key, team_b_key, owner):
    """Team A's plain key on two days (one error, one cache read), owen's key and team B's key."""
    owned = key_make(team=team_a_key.key.team, user=owner, key_alias="a-owned")
    ledger_entry_make(
        key=team_a_key.key, created_at=at(days_ago(3)), cost=A_OLD, prompt_tokens=7, completion_tokens=3
    )
    ledger_entry_make(key=team_a_key.key, created_at=at(days_ago(1)), cost=A_NEW, cached_tokens=40)
    ledger_entry_make(key=team_a_key.key, created_at=at(days_ago(1), 14), cost=Decimal("0"), status="error")
    ledger_entry_make(key=owned.key, created_at=at(days_ago(1)), cost=OWNED, model_group="gpt-4o-mini")
    ledger_entry_make(
        key=team_b_key.key, created_at=at(days_ago(1)), cost=B_NEW, model_group="claude", provider="anthropic"
    )
    rollups_refresh()
    return {"owned": owned}


class TestUserDailyActivity:
    def test_it_needs_credentials(self, api):
        assert_openai_error(api.get(USER_URL, dates(), key=""), 401, "authentication_error")

    def test_it_gives_each_day_s_metrics_and_breakdown_newest_first(
        self, api, activity, team_a, team_a_key, team_b_key
    ):
        result = body(api.get(USER_URL, dates()))

        newest, oldest = result["results"]
        assert (newest["date"], oldest["date"]) == (days_ago(1).isoformat(), days_ago(3).isoformat())
        assert newest["metrics"] == {
            "spend": A_NEW + OWNED + B_NEW,
            "prompt_tokens": 400,
            "completion_tokens": 80,
            "total_tokens": 480,
            "cache_read_input_tokens": 40,
            "cache_creation_input_tokens": 0,
            "api_requests": 4,
            "successful_requests": 3,
            "failed_requests": 1,
        }
        breakdown = newest["breakdown"]
        assert set(breakdown["models"]) == {"gpt-4o", "gpt-4o-mini", "claude"}
        assert breakdown["models"]["gpt-4o"]["metrics"]["spend"] == A_NEW
        assert breakdown["model_groups"] == breakdown["models"]
        assert {name: item["metrics"]["spend"] for name, item in breakdown["providers"].items()} == {
            "openai": A_NEW + OWNED,
            "anthropic": B_NEW,
        }
        assert breakdown["api_keys"][team_a_key.token] == {
            "metrics": {**breakdown["models"]["gpt-4o"]["metrics"]},
            "metadata": {"key_alias": "a-plain", "team_id": str(team_a.team_id)},
        }
        assert breakdown["api_keys"][team_b_key.token]["metrics"]["api_requests"] == 1
        assert breakdown["entities"] == breakdown["mcp_servers"] == breakdown["endpoints"] == {}
        assert oldest["metrics"]["spend"] == A_OLD
        assert result["metadata"] == {
            "total_spend": A_OLD + A_NEW + OWNED + B_NEW,
            "total_prompt_tokens": 407,
            "total_completion_tokens": 83,
            "total_tokens": 490,
            "total_api_requests": 5,
            "total_successful_requests": 4,
            "total_failed_requests": 1,
            "total_cache_read_input_tokens": 40,
            "total_cache_creation_input_tokens": 0,
            "page": 1,
            "total_pages": 1,
            "has_more": False,
        }

    def test_a_plain_key_sees_only_itself(self, api, activity, team_a_key):
        result = body(api.get(USER_URL, dates(), key=team_a_key.secret))

        assert result["metadata"]["total_spend"] == A_OLD + A_NEW
        assert {key for day in result["results"] for key in day["breakdown"]["api_keys"]} == {
            team_a_key.token
        }

    def test_a_team_admin_sees_only_their_teams_keys(self, api, activity, team_a_manager, team_b_key):
        result = body(api.get(USER_URL, dates(), key=team_a_manager.secret))

        assert result["metadata"]["total_spend"] == A_OLD + A_NEW + OWNED
        assert team_b_key.token not in json.dumps(result, default=str)

    def test_a_logged_in_user_without_an_admin_role_sees_their_own_keys(self, activity, owner):
        client = Client()
        client.force_login(owner)

        result = body(Api(client, default_key="").get(USER_URL, dates()))

        assert result["metadata"]["total_spend"] == OWNED
        assert list(result["results"][0]["breakdown"]["api_keys"]) == [activity["owned"].token]

    def test_it_filters_by_user_model_and_key(self, api, activity, team_a_key):
        by_user = body(api.get(USER_URL, dates(user_id="owen")))
        by_model = body(api.get(USER_URL, dates(model="claude")))
        by_key = body(api.get(USER_URL, dates(api_key=team_a_key.secret)))

        assert by_user["metadata"]["total_spend"] == OWNED
        assert by_model["metadata"]["total_spend"] == B_NEW
        assert by_key["metadata"]["total_spend"] == A_OLD + A_NEW

    def test_another_team_s_key_or_another_user_is_refused(
        self, api, activity, team_a_manager, team_a_key, team_b_key
    ):
        other_key = api.get(USER_URL, dates(api_key=team_b_key.token), key=team_a_manager.secret)
        other_user = api.get(USER_URL, dates(user_id="owen"), key=team_a_key.secret)

        assert_openai_error(other_key, 403, "permission_error")
        assert_openai_error(other_user, 403, "permission_error")

    def test_it_pages_by_days(self, api, activity):
        first = body(api.get(USER_URL, dates(page_size=1)))
        second = body(api.get(USER_URL, dates(page_size=1, page=2)))

        assert [day["date"] for day in first["results"]] == [days_ago(1).isoformat()]
        assert (first["metadata"]["total_pages"], first["metadata"]["has_more"]) == (2, True)
        assert [day["date"] for day in second["results"]] == [days_ago(3).isoformat()]
        assert second["metadata"]["has_more"] is False
        assert first["metadata"]["total_spend"] == second["metadata"]["total_spend"]

    @pytest.mark.parametrize(
        ("params", "param"),
        [
            ({"end_date": "2025-03-01"}, "start_date"),
            ({"start_date": "2025-13-01", "end_date": "2025-03-01"}, "start_date"),
            ({"start_date": "2025-03-02", "end_date": "2025-03-01"}, "end_date"),
            ({"start_date": "2025-03-01", "end_date": "2025-03-02", "page": 0}, "page"),
        ],
    )
    def test_bad_parameters_are_a_400_in_openai_s_shape(self, api, params, param):
        assert_openai_error(api.get(USER_URL, params), 400, "invalid_request_error", param=param)


class TestTeamDailyActivity:
    def test_it_needs_credentials(self, api):
        assert_openai_error(api.get(TEAM_URL, dates(), key=""), 401, "authentication_error")

    def test_it_breaks_each_day_down_by_team_with_its_keys(self, api, activity, team_a, team_b, team_a_key):
        result = body(api.get(TEAM_URL, dates()))

        entities = result["results"][0]["breakdown"]["entities"]
        assert set(entities) == {str(team_a.team_id), str(team_b.team_id)}
        team = entities[str(team_a.team_id)]
        assert team["metadata"] == {"team_alias": "team-a"}
        assert team["metrics"]["spend"] == A_NEW + OWNED
        assert set(team["api_key_breakdown"]) == {team_a_key.token, activity["owned"].token}
        assert team["api_key_breakdown"][team_a_key.token]["metrics"]["spend"] == A_NEW
        assert team["api_key_breakdown"][team_a_key.token]["metadata"]["key_alias"] == "a-plain"

    def test_team_ids_narrow_it(self, api, activity, team_b):
        result = body(api.get(TEAM_URL, dates(team_ids=f" {team_b.team_id} ,")))

        assert result["metadata"]["total_spend"] == B_NEW

    def test_a_team_admin_sees_their_team_only_and_may_not_name_another(
        self, api, activity, team_a_manager, team_a, team_b
    ):
        own = body(api.get(TEAM_URL, dates(), key=team_a_manager.secret))
        other = api.get(
            TEAM_URL, dates(team_ids=f"{team_a.team_id},{team_b.team_id}"), key=team_a_manager.secret
        )

        assert own["metadata"]["total_spend"] == A_OLD + A_NEW + OWNED
        assert {team for day in own["results"] for team in day["breakdown"]["entities"]} == {
            str(team_a.team_id)
        }
        assert_openai_error(other, 403, "permission_error")

    def test_a_team_admin_session_reads_its_team(self, team_a_admin_client, activity):
        result = body(team_a_admin_client.get(TEAM_URL, dates()))

        assert result["metadata"]["total_spend"] == A_OLD + A_NEW + OWNED

    def test_a_plain_key_may_not_read_team_activity(self, api, activity, team_a_key):
        assert_openai_error(api.get(TEAM_URL, dates(), key=team_a_key.secret), 403, "permission_error")

    def test_a_malformed_team_id_is_a_400(self, api):
        response = api.get(TEAM_URL, dates(team_ids="team-a"))

        assert_openai_error(response, 400, "invalid_request_error", param="team_ids")
