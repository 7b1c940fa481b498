"""The /user endpoints with the master key: Django users under LiteLLM's names."""

import pytest
from django.contrib.auth import get_user_model

from llm_gateway.models import VirtualKey
from tests.llm_gateway.management_factories import (
    assert_openai_error,
    key_make,
    member_make,
    user_make,
)

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db

User = get_user_model()


def test_new_creates_a_user_with_a_key_shown_once(api, team_a):
    response = api.post(
        "/user/new", {"user_id": "lea", "user_email": "lea@example.com", "teams": [str(team_a.team_id)]}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    user = User.objects.get(username="lea")
    assert body["user_id"] == "lea"
    assert body["user_email"] == "lea@example.com"
    assert body["user_role"] == "internal_user"
    assert body["teams"] == [str(team_a.team_id)]
    assert body["key"].startswith("sk-")
    assert VirtualKey.objects.get(token=body["token"]).user == user
    assert not user.is_superuser
    assert not user.has_usable_password()
    assert api.get("/key/info", key=body["key"]).status_code == 200


def test_new_without_a_key_and_as_an_admin_with_a_password(api):
    response = api.post(
        "/user/new",
        {
            "user_id": "max",
            "user_role": "proxy_admin",
            "password": "a long passphrase",
            "auto_create_key": False,
        },
    )

    assert response.json()["key"] is None
    assert response.json()["token"] is None
    assert response.json()["user_role"] == "proxy_admin"
    user = User.objects.get(username="max")
    assert user.is_superuser and user.is_staff
    assert user.check_password("a long passphrase")
    assert not VirtualKey.objects.exists()


def test_new_without_user_id_makes_one_up(api):
    user_id = api.post("/user/new", {"auto_create_key": False}).json()["user_id"]

    assert User.objects.filter(username=user_id).exists()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"user_id": "x", "max_budget": 10}, "max_budget"),
        ({"user_id": "x", "models": ["gpt-4o"]}, "models"),
        ({"user_id": "x", "user_role": "proxy_admin_viewer"}, "user_role"),
        ({"user_id": "x", "user_email": "not an email"}, "user_email"),
        ({"user_id": "not valid!"}, "user_id"),
        ({"user_id": "x", "teams": "team-a"}, "teams"),
        ({"user_id": "x", "password": "password"}, "password"),
        ({"user_id": "x", "user_email": "a" * 250 + "@example.com"}, "user_email"),
        ({"user_id": "x\u0000"}, "user_id"),
    ],
)
def test_new_answers_bad_input_with_400(api, body, param):
    assert_openai_error(api.post("/user/new", body), 400, "invalid_request_error", param)
    assert not User.objects.exists()


def test_new_refuses_a_taken_user_id(api):
    user_make(username="ned")

    assert_openai_error(api.post("/user/new", {"user_id": "ned"}), 400, "invalid_request_error", "user_id")


def test_new_in_an_unknown_team_is_404(api):
    response = api.post("/user/new", {"user_id": "x", "teams": ["00000000-0000-0000-0000-000000000000"]})

    assert_openai_error(response, 404, "not_found_error")
    assert not User.objects.exists()


def test_info_shows_the_user_their_keys_and_teams(api, team_a):
    user = user_make(username="ola", email="ola@example.com")
    member_make(team=team_a, user=user)
    issued = key_make(user=user, key_alias="ola-key")

    response = api.get("/user/info", {"user_id": "ola"})

    body = response.json()
    assert body["user_id"] == "ola"
    assert body["user_info"]["user_email"] == "ola@example.com"
    assert [key["token"] for key in body["keys"]] == [issued.token]
    assert [team["team_alias"] for team in body["teams"]] == ["team-a"]
    assert issued.secret not in response.content.decode()


def test_info_of_an_unknown_user_is_404(api):
    assert_openai_error(api.get("/user/info", {"user_id": "ghost"}), 404, "not_found_error")


def test_update_changes_email_role_and_password(api):
    user_make(username="pia")

    response = api.post(
        "/user/update",
        {
            "user_id": "pia",
            "user_email": "pia@example.com",
            "user_role": "proxy_admin",
            "password": "new secret pw",
        },
    )

    assert response.json()["user_role"] == "proxy_admin"
    user = User.objects.get(username="pia")
    assert user.email == "pia@example.com"
    assert user.is_superuser
    assert user.check_password("new secret pw")


def test_update_keeps_what_is_absent(api):
    user_make(username="quin", email="quin@example.com", password="old password 1")

    api.post("/user/update", {"user_id": "quin", "user_role": "internal_user"})

    user = User.objects.get(username="quin")
    assert user.email == "quin@example.com"
    assert user.check_password("old password 1")


def test_update_refuses_an_unsupported_field(api):
    user_make(username="rae")

    assert_openai_error(
        api.post("/user/update", {"user_id": "rae", "max_budget": 1}),
        400,
        "invalid_request_error",
        "max_budget",
    )


def test_delete_removes_users_and_leaves_their_keys_ownerless(api):
    user = user_make(username="sam")
    issued = key_make(user=user)

    response = api.post("/user/delete", {"user_ids": ["sam"]})

    assert response.json() == {"deleted_users": ["sam"]}
    assert not User.objects.filter(username="sam").exists()
    assert VirtualKey.objects.get(token=issued.token).user is None


def test_delete_of_an_unknown_user_is_404_and_deletes_nothing(api):
    user_make(username="tia")

    assert_openai_error(api.post("/user/delete", {"user_ids": ["tia", "ghost"]}), 404, "not_found_error")
    assert User.objects.filter(username="tia").exists()


def test_list_pages_and_filters(api):
    for name in ("u1", "u2", "u3"):
        user_make(username=name)
    user_make(username="u4", is_admin=True)

    first = api.get("/user/list", {"page_size": 2}).json()
    admins = api.get("/user/list", {"role": "proxy_admin"}).json()
    chosen = api.get("/user/list", {"user_ids": "u1,u3"}).json()

    assert [user["user_id"] for user in first["users"]] == ["u1", "u2"]
    assert (first["total"], first["page"], first["page_size"], first["total_pages"]) == (4, 1, 2, 2)
    assert [user["user_id"] for user in admins["users"]] == ["u4"]
    assert [user["user_id"] for user in chosen["users"]] == ["u1", "u3"]


def test_update_refuses_a_weak_password(api):
    user_make(username="uma")

    response = api.post("/user/update", {"user_id": "uma", "password": "123"})

    assert_openai_error(response, 400, "invalid_request_error", "password")


def test_list_refuses_an_unknown_role(api):
    assert_openai_error(api.get("/user/list", {"role": "god"}), 400, "invalid_request_error", "role")
