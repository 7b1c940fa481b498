"""The /team endpoints with the master key: shapes, members, validation."""

import uuid
from decimal import Decimal

import pytest

from llm_gateway.crypto import virtual_key_hash
from llm_gateway.models import Membership, Team, VirtualKey
from tests.llm_gateway.management_factories import (
    assert_openai_error,
    key_make,
    member_make,
    user_make,
)

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db


def test_new_creates_a_team_with_members(api):
    user_make(username="ann")
    user_make(username="ben", email="ben@example.com")

    response = api.post(
        "/team/new",
        {
            "team_alias": "search",
            "models": ["gpt-4o"],
            "model_aliases": {"smart": "gpt-4o"},
            "max_budget": 100,
            "soft_budget": 80,
            "budget_duration": "1mo",
            "rpm_limit": 10,
            "tpm_limit": 1000,
            "max_parallel_requests": 2,
            "metadata": {"cost_center": "42"},
            "members_with_roles": [
                {"role": "admin", "user_id": "ann"},
                {"role": "user", "user_email": "ben@example.com"},
            ],
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    team = Team.objects.get(team_id=body["team_id"])
    assert body["team_alias"] == "search"
    assert body["model_aliases"] == team.model_aliases == {"smart": "gpt-4o"}
    assert body["max_budget"] == 100
    assert team.soft_budget == Decimal("80")
    assert team.budget_reset_at is not None
    assert body["budget_duration"] == "1mo"
    assert body["metadata"] == {"cost_center": "42"}
    assert sorted((member["user_id"], member["role"]) for member in body["members_with_roles"]) == [
        ("ann", "admin"),
        ("ben", "user"),
    ]
    assert team.memberships.get(user__username="ben").role == Membership.Role.MEMBER


def test_new_takes_a_custom_team_id(api):
    team_id = str(uuid.uuid4())

    assert api.post("/team/new", {"team_alias": "x", "team_id": team_id}).json()["team_id"] == team_id


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "team_alias"),
        ({"team_alias": "x", "team_id": "not-a-uuid"}, "team_id"),
        ({"team_alias": "x", "budget_duration": "3x"}, "budget_duration"),
        ({"team_alias": "x", "max_budget": "x"}, "max_budget"),
        (
            {"team_alias": "x", "members_with_roles": [{"role": "owner", "user_id": "ann"}]},
            "members_with_roles.0.role",
        ),
        ({"team_alias": "x", "members_with_roles": [{"role": "user"}]}, "members_with_roles.0.user_id"),
        ({"team_alias": "x", "tags": ["a"]}, "tags"),
        ({"team_alias": "x", "budget_duration": "9999999999999w"}, "budget_duration"),
    ],
)
def test_new_answers_bad_input_with_400(api, body, param):
    assert_openai_error(api.post("/team/new", body), 400, "invalid_request_error", param)
    assert not Team.objects.exists()


def test_new_refuses_a_taken_alias(api, team_a):
    assert_openai_error(
        api.post("/team/new", {"team_alias": "team-a"}), 400, "invalid_request_error", "team_alias"
    )


def test_new_with_an_unknown_member_is_404_and_creates_nothing(api):
    response = api.post("/team/new", {"team_alias": "x", "members_with_roles": [{"user_id": "ghost"}]})

    assert_openai_error(response, 404, "not_found_error")
    assert not Team.objects.exists()


def test_update_changes_what_is_given(api, team_a):
    response = api.post(
        "/team/update", {"team_id": str(team_a.team_id), "max_budget": 5, "budget_duration": "1d"}
    )

    assert response.status_code == 200
    team_a.refresh_from_db()
    assert team_a.max_budget == Decimal("5")
    assert team_a.budget_duration == "1d"
    assert team_a.budget_reset_at is not None
    assert team_a.team_alias == "team-a"


def test_update_of_an_unknown_team_is_404(api):
    response = api.post("/team/update", {"team_id": str(uuid.uuid4()), "max_budget": 5})

    assert_openai_error(response, 404, "not_found_error")


def test_info_shows_the_team_its_keys_and_members(api, team_a, team_a_key):
    member_make(team=team_a, user=user_make(username="dan"), role=Membership.Role.VIEWER)

    response = api.get("/team/info", {"team_id": str(team_a.team_id)})

    body = response.json()
    assert body["team_id"] == str(team_a.team_id)
    assert body["team_info"]["team_alias"] == "team-a"
    assert [key["token"] for key in body["keys"]] == [team_a_key.token]
    assert body["team_memberships"][0]["user_id"] == "dan"
    assert body["team_memberships"][0]["role"] == "viewer"
    assert team_a_key.secret not in response.content.decode()
    assert virtual_key_hash(team_a_key.secret) not in response.content.decode()


@pytest.mark.parametrize("team_id", ["not-a-uuid", str(uuid.uuid4())])
def test_info_of_an_unknown_team_is_404(api, team_id):
    assert_openai_error(api.get("/team/info", {"team_id": team_id}), 404, "not_found_error")


def test_info_needs_a_team_id(api):
    assert_openai_error(api.get("/team/info"), 400, "invalid_request_error", "team_id")


def test_list_shows_every_team_or_a_users_teams(api, team_a, team_b):
    member_make(team=team_b, user=user_make(username="eve"))

    assert [team["team_alias"] for team in api.get("/team/list").json()] == ["team-a", "team-b"]
    assert [team["team_alias"] for team in api.get("/team/list", {"user_id": "eve"}).json()] == ["team-b"]


def test_delete_removes_teams_with_their_keys(api, team_a, team_b, team_a_key, team_b_key):
    response = api.post("/team/delete", {"team_ids": [str(team_a.team_id)]})

    assert response.json() == {"deleted_teams": [str(team_a.team_id)]}
    assert list(Team.objects.all()) == [team_b]
    assert list(VirtualKey.objects.all()) == [team_b_key.key]


def test_delete_deletes_nothing_when_one_team_is_unknown(api, team_a):
    response = api.post("/team/delete", {"team_ids": [str(team_a.team_id), str(uuid.uuid4())]})

    assert_openai_error(response, 404, "not_found_error")
    assert Team.objects.filter(pk=team_a.pk).exists()


def test_member_add_takes_one_member_or_a_list(api, team_a):
    user_make(username="fay")
    user_make(username="gus", email="gus@example.com")

    one = api.post(
        "/team/member_add", {"team_id": str(team_a.team_id), "member": {"role": "admin", "user_id": "fay"}}
    )
    many = api.post(
        "/team/member_add", {"team_id": str(team_a.team_id), "member": [{"user_email": "gus@example.com"}]}
    )

    assert one.status_code == 200, one.content
    assert one.json()["updated_users"] == [{"user_id": "fay", "user_email": None}]
    assert one.json()["updated_team_memberships"][0]["role"] == "admin"
    assert many.json()["updated_team_memberships"][0]["user_id"] == "gus"
    assert many.json()["updated_team_memberships"][0]["role"] == "user"
    assert sorted(member["user_id"] for member in many.json()["members_with_roles"]) == ["fay", "gus"]


def test_member_add_refuses_a_member_twice(api, team_a):
    member_make(team=team_a, user=user_make(username="hal"))

    response = api.post("/team/member_add", {"team_id": str(team_a.team_id), "member": {"user_id": "hal"}})

    assert_openai_error(response, 400, "invalid_request_error", "member")


def test_member_add_of_an_unknown_user_is_404(api, team_a):
    response = api.post("/team/member_add", {"team_id": str(team_a.team_id), "member": {"user_id": "ghost"}})

    assert_openai_error(response, 404, "not_found_error")


def test_member_update_changes_the_role(api, team_a):
    member_make(team=team_a, user=user_make(username="ivy"))

    response = api.post(
        "/team/member_update", {"team_id": str(team_a.team_id), "user_id": "ivy", "role": "admin"}
    )

    assert response.json()["role"] == "admin"
    assert team_a.memberships.get(user__username="ivy").role == Membership.Role.ADMIN


def test_member_update_of_a_non_member_is_404(api, team_a):
    user_make(username="jon")

    response = api.post(
        "/team/member_update", {"team_id": str(team_a.team_id), "user_id": "jon", "role": "admin"}
    )

    assert_openai_error(response, 404, "not_found_error")


def test_member_delete_removes_the_member(api, team_a):
    member_make(team=team_a, user=user_make(username="kim"))

    response = api.post("/team/member_delete", {"team_id": str(team_a.team_id), "user_id": "kim"})

    assert response.json()["members_with_roles"] == []
    assert not team_a.memberships.exists()


def test_block_refuses_the_teams_keys_until_unblocked(api, team_a, team_a_key):
    assert api.post("/team/block", {"team_id": str(team_a.team_id)}).json()["blocked"] is True
    assert_openai_error(api.get("/key/info", key=team_a_key.secret), 401, "authentication_error")

    assert api.post("/team/unblock", {"team_id": str(team_a.team_id)}).json()["blocked"] is False
    assert api.get("/key/info", key=team_a_key.secret).status_code == 200


def test_a_new_key_in_a_team_inherits_nothing_it_did_not_ask_for(api, team_a):
    key = key_make(team=team_a)

    info = api.get("/key/info", {"key": key.token}).json()["info"]

    assert info["team_id"] == str(team_a.team_id)
    assert info["models"] == []
