"""The /customer endpoints (end users) with the master key."""

from decimal import Decimal

import pytest

from llm_gateway.models import EndUser
from tests.llm_gateway.management_factories import assert_openai_error, end_user_make

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
