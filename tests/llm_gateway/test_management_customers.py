"""The /customer endpoints (end users): with the master key, and team admins within their own team."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from llm_gateway.end_user_scopes import EndUserScope
from llm_gateway.models import EndUser, Membership
from tests.llm_gateway.management_factories import (
    assert_openai_error,
    end_user_make,
    member_make,
    team_make,
    user_make,
)

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db


def test_new_creates_a_customer_with_a_budget(api):
    response = api.post(
        "/customer/new",
        {
            "user_id": "acme",
            "alias": "ACME",
            "max_budget": 20,
            "budget_duration": "1w",
            "metadata": {"tier": "b"},
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    customer = EndUser.objects.get(user_id="acme")
    assert customer.max_budget == Decimal("20")
    assert customer.budget_reset_at is not None
    assert body["alias"] == "ACME"
    assert body["blocked"] is False
    assert body["spend"] == 0
    assert body["litellm_budget_table"]["max_budget"] == 20
    assert body["litellm_budget_table"]["budget_duration"] == "1w"
    assert body["metadata"] == {"tier": "b"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "user_id"),
        ({"user_id": "x", "budget_duration": "3x"}, "budget_duration"),
        ({"user_id": "x", "max_budget": "free"}, "max_budget"),
        ({"user_id": "x", "tpm_limit": 10}, "tpm_limit"),
        ({"user_id": "x", "allowed_model_region": "eu"}, "allowed_model_region"),
        ({"user_id": "x" * 201}, "user_id"),
    ],
)
def test_new_answers_bad_input_with_400(api, body, param):
    assert_openai_error(api.post("/customer/new", body), 400, "invalid_request_error", param)
    assert not EndUser.objects.exists()


def test_new_refuses_a_taken_id(api):
    end_user_make(user_id="acme")

    assert_openai_error(
        api.post("/customer/new", {"user_id": "acme"}), 400, "invalid_request_error", "user_id"
    )


def test_info_shows_the_customer(api):
    end_user_make(user_id="acme", alias="ACME")

    body = api.get("/customer/info", {"end_user_id": "acme"}).json()

    assert body["user_id"] == "acme"
    assert body["alias"] == "ACME"
    assert body["litellm_budget_table"] is None


def test_info_of_an_unknown_customer_is_404(api):
    assert_openai_error(api.get("/customer/info", {"end_user_id": "ghost"}), 404, "not_found_error")


def test_update_changes_what_is_given(api):
    end_user_make(user_id="acme", alias="ACME", max_budget=Decimal("5"))

    response = api.post("/customer/update", {"user_id": "acme", "max_budget": 50, "alias": None})

    assert response.status_code == 200
    customer = EndUser.objects.get(user_id="acme")
    assert customer.max_budget == Decimal("50")
    assert customer.alias == ""


def test_update_of_an_unknown_customer_is_404(api):
    assert_openai_error(
        api.post("/customer/update", {"user_id": "ghost", "alias": "x"}), 404, "not_found_error"
    )


def test_delete_removes_customers(api):
    end_user_make(user_id="a")
    end_user_make(user_id="b")

    response = api.post("/customer/delete", {"user_ids": ["a"]})

    assert response.json()["deleted_customers"] == 1
    assert list(EndUser.objects.values_list("user_id", flat=True)) == ["b"]


def test_delete_names_missing_customers_and_deletes_nothing(api):
    end_user_make(user_id="a")

    error = assert_openai_error(
        api.post("/customer/delete", {"user_ids": ["a", "x", "y"]}), 404, "not_found_error"
    )

    assert "x, y" in error["message"]
    assert EndUser.objects.filter(user_id="a").exists()


def test_list_shows_every_customer(api):
    end_user_make(user_id="b")
    end_user_make(user_id="a")

    assert [customer["user_id"] for customer in api.get("/customer/list").json()] == ["a", "b"]


def test_block_creates_unknown_customers_blocked_and_unblock_releases(api):
    end_user_make(user_id="a")

    blocked = api.post("/customer/block", {"user_ids": ["a", "new"]}).json()["blocked_users"]

    assert [(customer["user_id"], customer["blocked"]) for customer in blocked] == [
        ("a", True),
        ("new", True),
    ]
    assert EndUser.objects.filter(blocked=True).count() == 2

    unblocked = api.post("/customer/unblock", {"user_ids": ["a"]}).json()["unblocked_users"]

    assert [(customer["user_id"], customer["blocked"]) for customer in unblocked] == [("a", False)]
    assert EndUser.objects.get(user_id="new").blocked


def test_unblock_of_an_unknown_customer_is_404(api):
    assert_openai_error(api.post("/customer/unblock", {"user_ids": ["ghost"]}), 404, "not_found_error")
    assert not EndUser.objects.exists()


def test_block_needs_ids(api):
    assert_openai_error(
        api.post("/customer/block", {"user_ids": []}), 400, "invalid_request_error", "user_ids"
    )


def team_customer(team, user_id: str, **fields) -> EndUser:
    return end_user_make(user_id=user_id, scope=EndUserScope(team_id=str(team.team_id)), **fields)


class TestTeamScope:
    """The same id in two teams is two customers; a team admin reaches only their own team's."""

    def test_a_team_admin_creates_customers_in_their_own_team(self, api, team_a, team_b, team_a_manager):
        team_customer(team_b, "cust")

        response = api.post("/customer/new", {"user_id": "cust", "max_budget": 5}, key=team_a_manager.secret)

        assert response.status_code == 200, response.content
        assert response.json()["team_id"] == str(team_a.team_id)
        assert sorted(EndUser.objects.values_list("team__team_alias", "user_id")) == [
            ("team-a", "cust"),
            ("team-b", "cust"),
        ]

    def test_the_same_id_in_one_team_is_refused(self, api, team_a, team_a_manager):
        team_customer(team_a, "cust")

        response = api.post("/customer/new", {"user_id": "cust"}, key=team_a_manager.secret)

        assert_openai_error(response, 400, "invalid_request_error", "user_id")

    def test_a_team_admin_cannot_read_change_block_or_delete_another_teams_customer(
        self, api, team_a, team_b, team_a_manager
    ):
        theirs = team_customer(team_b, "cust-b", max_budget=Decimal("1"))
        key = team_a_manager.secret

        for response in (
            api.get("/customer/info", {"end_user_id": "cust-b"}, key=key),
            api.post("/customer/update", {"user_id": "cust-b", "max_budget": 1000}, key=key),
            api.post("/customer/delete", {"user_ids": ["cust-b"]}, key=key),
            api.post("/customer/unblock", {"user_ids": ["cust-b"]}, key=key),
        ):
            assert_openai_error(response, 404, "not_found_error")
        # Blocking an id not seen yet creates it: in the caller's own team, never in another.
        blocked = api.post("/customer/block", {"user_ids": ["cust-b"]}, key=key).json()["blocked_users"]

        assert [(row["user_id"], row["team_id"]) for row in blocked] == [("cust-b", str(team_a.team_id))]
        theirs.refresh_from_db()
        assert (theirs.max_budget, theirs.blocked) == (Decimal("1"), False)
        assert [row["user_id"] for row in api.get("/customer/list", key=key).json()] == ["cust-b"]
        assert api.get("/customer/list", key=key).json()[0]["team_id"] == str(team_a.team_id)

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("get", "/customer/info", {"end_user_id": "cust-b"}),
            ("get", "/customer/list", {}),
            ("post", "/customer/new", {"user_id": "cust-b"}),
            ("post", "/customer/update", {"user_id": "cust-b", "max_budget": 1000}),
            ("post", "/customer/delete", {"user_ids": ["cust-b"]}),
            ("post", "/customer/block", {"user_ids": ["cust-b"]}),
            ("post", "/customer/unblock", {"user_ids": ["cust-b"]}),
        ],
    )
    def test_naming_another_team_is_403_whether_it_exists_or_not(
        self, api, team_a, team_b, team_a_manager, method, path, body
    ):
        team_customer(team_b, "cust-b")

        for team_id in (str(team_b.team_id), "00000000-0000-4000-8000-000000000000"):
            response = getattr(api, method)(path, {**body, "team_id": team_id}, key=team_a_manager.secret)
            assert_openai_error(response, 403, "permission_error")
        assert EndUser.objects.get().max_budget is None
        assert EndUser.objects.get().team == team_b

    def test_a_session_team_admin_of_two_teams_names_one(self, api, team_a, team_b, team_a_admin_client):
        alice = Membership.objects.get(team=team_a).user
        member_make(team=team_b, user=alice, role=Membership.Role.ADMIN)

        unnamed = team_a_admin_client.post("/customer/new", {"user_id": "cust"})
        assert_openai_error(unnamed, 400, "invalid_request_error", "team_id")
        named = {"user_id": "cust", "team_id": str(team_b.team_id)}
        response = team_a_admin_client.post("/customer/new", named)

        assert response.status_code == 200, response.content
        assert EndUser.objects.get().team == team_b

    def test_a_team_admin_lists_only_their_teams_customers(self, api, team_a, team_b, team_a_admin_client):
        team_customer(team_a, "mine")
        team_customer(team_b, "theirs")
        end_user_make(user_id="gateways")

        listed = team_a_admin_client.get("/customer/list").json()

        assert [row["user_id"] for row in listed] == ["mine"]

    def test_the_master_key_names_a_team_or_none(self, api, team_a, team_b):
        team_customer(team_a, "cust", alias="A's")
        team_customer(team_b, "cust", alias="B's")
        end_user_make(user_id="cust", alias="gateway's")

        assert api.get("/customer/info", {"end_user_id": "cust"}).json()["alias"] == "gateway's"
        info = api.get("/customer/info", {"end_user_id": "cust", "team_id": str(team_b.team_id)}).json()
        assert (info["alias"], info["team_id"]) == ("B's", str(team_b.team_id))
        api.post("/customer/block", {"user_ids": ["cust"], "team_id": str(team_a.team_id)})
        blocked = sorted(EndUser.objects.values_list("alias", "blocked"))
        assert blocked == [("A's", True), ("B's", False), ("gateway's", False)]
        assert len(api.get("/customer/list").json()) == 3
        listed = api.get("/customer/list", {"team_id": str(team_a.team_id)}).json()
        assert [row["alias"] for row in listed] == ["A's"]

    def test_the_master_key_gets_404_for_a_team_that_does_not_exist(self, api):
        response = api.get("/customer/list", {"team_id": "00000000-0000-4000-8000-000000000000"})

        assert_openai_error(response, 404, "not_found_error")

    def test_a_plain_key_may_not_manage_customers(self, api, team_a_key):
        assert_openai_error(api.get("/customer/list", key=team_a_key.secret), 403, "permission_error")

    def test_a_key_owners_customers_show_their_owner(self, api):
        owner = user_make(username="olga")
        EndUser.objects.create(user_id="cust", owner=owner)

        (row,) = api.get("/customer/list").json()

        assert (row["team_id"], row["owner_user_id"]) == (None, "olga")


def test_a_user_id_is_unique_within_each_scope_in_the_database(db):
    team, owner = team_make(), user_make()
    for scope in ({}, {"team": team}, {"owner": owner}):
        EndUser.objects.create(user_id="cust", **scope)

    assert EndUser.objects.filter(user_id="cust").count() == 3
    for scope in ({}, {"team": team}, {"owner": owner}):
        with pytest.raises(IntegrityError), transaction.atomic():
            EndUser.objects.create(user_id="cust", **scope)
    with pytest.raises(IntegrityError), transaction.atomic():
        EndUser.objects.create(user_id="other", team=team, owner=owner)  # one scope only
