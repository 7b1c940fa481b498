"""The /user endpoints with the master key: Django users under LiteLLM's names."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from llm_gateway.models import UserBudget, VirtualKey
from tests.llm_gateway import factories
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
        ({"user_id": "x", "models": "gpt-4o"}, "models"),
        ({"user_id": "x", "spend": 3}, "spend"),
        ({"user_id": "x", "max_budget": -1}, "max_budget"),
        ({"user_id": "x", "soft_budget": "lots"}, "soft_budget"),
        ({"user_id": "x", "budget_duration": "monthly"}, "budget_duration"),
        ({"user_id": "x", "budget_duration": "200000w"}, "budget_duration"),
        ({"user_id": "x", "rpm_limit": -5}, "rpm_limit"),
        ({"user_id": "x", "tpm_limit": 2**31}, "tpm_limit"),
        ({"user_id": "x", "max_parallel_requests": 1.5}, "max_parallel_requests"),
        ({"user_id": "x", "blocked": "perhaps"}, "blocked"),
        ({"user_id": "x", "metadata": ["not", "an", "object"]}, "metadata"),
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
        api.post("/user/update", {"user_id": "rae", "models": ["gpt-4o"]}),
        400,
        "invalid_request_error",
        "models",
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


BUDGET = {
    "max_budget": 12.5,
    "soft_budget": 10,
    "budget_duration": "1d",
    "rpm_limit": 60,
    "tpm_limit": 100000,
    "max_parallel_requests": 4,
    "blocked": False,
    "metadata": {"cost_center": "research"},
}


def test_new_stores_the_budget_and_limits(api):
    before = timezone.now()

    response = api.post("/user/new", {"user_id": "vic", "auto_create_key": False, **BUDGET})

    assert response.status_code == 200, response.content
    body = response.json()
    assert {name: body[name] for name in BUDGET} == BUDGET
    assert body["spend"] == 0
    budget = UserBudget.objects.get(user__username="vic")
    assert (budget.max_budget, budget.soft_budget) == (Decimal("12.5"), Decimal("10"))
    assert (budget.rpm_limit, budget.tpm_limit, budget.max_parallel_requests) == (60, 100000, 4)
    assert budget.metadata == {"cost_center": "research"}
    # Setting a duration starts the first period now.
    assert before + timedelta(days=1) <= budget.budget_reset_at <= timezone.now() + timedelta(days=1)


def test_new_without_limits_still_tracks_the_users_spend(api):
    body = api.post("/user/new", {"user_id": "wes", "auto_create_key": False}).json()

    assert (body["spend"], body["max_budget"], body["rpm_limit"], body["blocked"]) == (0, None, None, False)
    budget = UserBudget.objects.get(user__username="wes")
    assert (budget.spend, budget.max_budget, budget.budget_duration) == (Decimal("0"), None, "")


def test_info_and_list_show_the_budget_and_spend(api):
    user = user_make(username="xia", max_budget=Decimal("20"), rpm_limit=5, blocked=True)
    UserBudget.objects.filter(user=user).update(spend=Decimal("7.25"))

    info = api.get("/user/info", {"user_id": "xia"}).json()["user_info"]
    listed = api.get("/user/list", {"user_ids": "xia"}).json()["users"][0]

    assert info == listed
    assert (info["spend"], info["max_budget"], info["rpm_limit"], info["blocked"]) == (7.25, 20, 5, True)
    assert (info["tpm_limit"], info["budget_duration"], info["budget_reset_at"]) == (None, None, None)


def test_a_user_without_a_budget_row_shows_no_limits_and_no_spend(api):
    factories.user_make(username="yan")  # made as the admin or createsuperuser make users

    info = api.get("/user/info", {"user_id": "yan"}).json()["user_info"]

    assert (info["spend"], info["max_budget"], info["soft_budget"]) == (0, None, None)
    assert (info["rpm_limit"], info["blocked"], info["metadata"]) == (None, False, {})


def test_update_changes_the_budget_keeps_what_is_absent_and_clears_what_is_null(api):
    user = user_make(username="zed", max_budget=Decimal("5"), rpm_limit=10, tpm_limit=1000)

    response = api.post(
        "/user/update",
        {"user_id": "zed", "max_budget": 8, "tpm_limit": None, "blocked": True, "budget_duration": "1w"},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["max_budget"], body["rpm_limit"], body["tpm_limit"], body["blocked"]) == (8, 10, None, True)
    budget = UserBudget.objects.get(user=user)
    assert (budget.max_budget, budget.rpm_limit, budget.tpm_limit) == (Decimal("8"), 10, None)
    assert budget.blocked
    assert budget.budget_duration == "1w"
    assert budget.budget_reset_at > timezone.now() + timedelta(days=6)


def test_update_gives_a_user_without_a_budget_row_one(api):
    user = factories.user_make(username="amy")

    api.post("/user/update", {"user_id": "amy", "max_budget": 3})

    assert UserBudget.objects.get(user=user).max_budget == Decimal("3")


def test_update_without_budget_fields_leaves_the_budget_alone(api):
    user = user_make(username="bob", max_budget=Decimal("5"))
    updated_at = UserBudget.objects.get(user=user).updated_at

    api.post("/user/update", {"user_id": "bob", "user_email": "bob@example.com"})

    assert UserBudget.objects.get(user=user).updated_at == updated_at


def test_update_of_an_unchanged_duration_keeps_the_current_period(api):
    user = user_make(username="cal", budget_duration="1d")
    reset_at = UserBudget.objects.get(user=user).budget_reset_at

    api.post("/user/update", {"user_id": "cal", "budget_duration": "1d", "max_budget": 9})

    assert UserBudget.objects.get(user=user).budget_reset_at == reset_at


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_budget": -0.01}, "max_budget"),
        ({"budget_duration": "1 day"}, "budget_duration"),
        ({"rpm_limit": "sixty"}, "rpm_limit"),
        ({"max_parallel_requests": -1}, "max_parallel_requests"),
        ({"metadata": {"note": "nul\u0000"}}, "metadata"),
    ],
)
def test_update_answers_a_bad_budget_field_with_400_and_changes_nothing(api, body, param):
    user = user_make(username="dee", max_budget=Decimal("5"), rpm_limit=10)

    response = api.post("/user/update", {"user_id": "dee", **body})

    assert_openai_error(response, 400, "invalid_request_error", param)
    budget = UserBudget.objects.get(user=user)
    assert (budget.max_budget, budget.rpm_limit, budget.budget_duration) == (Decimal("5"), 10, "")


def test_list_reads_the_budgets_in_its_own_query(api):
    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/user/list").status_code == 200
        return len(queries)

    user_make(username="eve", max_budget=Decimal("1"))
    one_user = list_queries()
    for name in ("fay", "gus", "hal"):
        user_make(username=name, max_budget=Decimal("1"))
    factories.user_make(username="ivy")  # no budget row

    assert list_queries() == one_user
