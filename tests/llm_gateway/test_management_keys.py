"""The /key endpoints with the master key: shapes, secrets, validation."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from llm_gateway.crypto import virtual_key_hash
from llm_gateway.models import VirtualKey
from tests.llm_gateway.management_factories import (
    assert_openai_error,
    key_make,
    member_make,
    team_make,
    user_make,
)

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db


def assert_no_secret(response, *issued) -> None:
    """Assert a response carries neither the secrets nor the stored hashes of these keys."""
    text = response.content.decode()
    for key in issued:
        assert key.secret not in text
        assert virtual_key_hash(key.secret) not in text


def test_it_generates_a_key_and_shows_its_secret_once(api, team_a):
    owner = user_make(username="bob")
    member_make(team=team_a, user=owner)
    response = api.post(
        "/key/generate",
        {
            "key_alias": "ci",
            "team_id": str(team_a.team_id),
            "user_id": "bob",
            "models": ["gpt-4o"],
            "aliases": {"fast": "gpt-4o"},
            "max_budget": 12.5,
            "soft_budget": 10,
            "budget_duration": "30d",
            "rpm_limit": 60,
            "tpm_limit": 1000,
            "max_parallel_requests": 4,
            "model_max_budget": {"gpt-4o": 5, "o1": {"budget_limit": 1.5, "time_period": "1d"}},
            "allowed_cache_controls": ["no-cache"],
            "metadata": {"env": "ci"},
            "key_type": "management",
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    key = VirtualKey.objects.get(token=body["token"])
    assert body["key"].startswith("sk-")
    assert key.key_hash == virtual_key_hash(body["key"])
    assert body["key_name"] == key.key_prefix == f"sk-...{body['key'][-4:]}"
    assert virtual_key_hash(body["key"]) not in response.content.decode()
    assert body["team_id"] == str(team_a.team_id)
    assert body["user_id"] == "bob"
    assert body["key_alias"] == "ci"
    assert body["key_type"] == "management"
    assert body["models"] == ["gpt-4o"]
    assert body["aliases"] == {"fast": "gpt-4o"}
    assert body["allowed_cache_controls"] == key.allowed_cache_controls == ["no-cache"]
    assert body["max_budget"] == 12.5
    assert key.max_budget == Decimal("12.5")
    assert key.soft_budget == Decimal("10")
    assert body["budget_duration"] == "30d"
    assert key.budget_reset_at is not None
    assert (body["rpm_limit"], body["tpm_limit"], body["max_parallel_requests"]) == (60, 1000, 4)
    assert body["model_max_budget"] == {"gpt-4o": 5, "o1": {"budget_limit": 1.5, "time_period": "1d"}}
    assert body["metadata"] == {"env": "ci"}
    assert body["expires"] is None


def test_the_generated_secret_authenticates(api):
    secret = api.post("/key/generate", {}).json()["key"]

    response = api.get("/key/info", key=secret)

    assert response.status_code == 200


def test_it_turns_duration_into_expires(api):
    before = timezone.now()

    body = api.post("/key/generate", {"duration": "30d"}).json()

    expires = VirtualKey.objects.get(token=body["token"]).expires
    assert before + timedelta(days=30) <= expires <= timezone.now() + timedelta(days=30)


def test_it_takes_a_custom_secret(api):
    response = api.post("/key/generate", {"key": "sk-my-own-custom-secret-0123456789"})

    assert response.status_code == 200
    assert response.json()["key"] == "sk-my-own-custom-secret-0123456789"
    assert api.get("/key/info", key="sk-my-own-custom-secret-0123456789").status_code == 200


@pytest.mark.parametrize("secret", ["my-secret", "sk-", "sk-master-test"])
def test_it_refuses_a_custom_secret_without_prefix_or_taken(api, secret):
    assert_openai_error(api.post("/key/generate", {"key": secret}), 400, "invalid_request_error", "key")


def test_it_refuses_a_custom_secret_already_in_use(api):
    api.post("/key/generate", {"key": "sk-shared-secret-0123456789abcdef"})

    response = api.post("/key/generate", {"key": "sk-shared-secret-0123456789abcdef"})

    assert_openai_error(response, 400, "invalid_request_error", "key")
    assert VirtualKey.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"budget_duration": "3x"}, "budget_duration"),
        ({"duration": "forever"}, "duration"),
        ({"max_budget": "lots"}, "max_budget"),
        ({"max_budget": -1}, "max_budget"),
        ({"rpm_limit": 1.5}, "rpm_limit"),
        ({"rpm_limit": 10**12}, "rpm_limit"),
        ({"models": "gpt-4o"}, "models"),
        ({"aliases": ["gpt-4o"]}, "aliases"),
        ({"allowed_cache_controls": ["maybe-cache"]}, "allowed_cache_controls.0"),
        ({"metadata": "x"}, "metadata"),
        ({"key_type": "read_only"}, "key_type"),
        ({"expires": "tomorrow"}, "expires"),
        ({"duration": "1d", "expires": "2030-01-01T00:00:00Z"}, "duration"),
        ({"model_max_budget": {"gpt-4o": "lots"}}, "model_max_budget.gpt-4o"),
        (
            {"model_max_budget": {"gpt-4o": {"budget_limit": 1, "time_period": "3x"}}},
            "model_max_budget.gpt-4o",
        ),
        ({"tags": ["prod"]}, "tags"),
        ({"budget_duration": "999999999999999d"}, "budget_duration"),
        ({"duration": "99999999mo"}, "duration"),
        ({"metadata": {"note": "nul\u0000byte"}}, "metadata"),
        ({"model_max_budget": {"gpt\u0000": 1}}, "model_max_budget"),
        ({"key_alias": "nul\u0000byte"}, "key_alias"),
    ],
)
def test_it_answers_bad_input_with_400(api, body, param):
    error = assert_openai_error(api.post("/key/generate", body), 400, "invalid_request_error", param)
    assert error["message"].startswith(f"{param}: ")
    assert VirtualKey.objects.count() == 0


def test_it_ignores_unsupported_fields_left_empty(api):
    response = api.post(
        "/key/generate", {"tags": None, "organization_id": None, "guardrails": [], "config": {}}
    )

    assert response.status_code == 200


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"a string"'])
def test_it_answers_a_body_that_is_not_a_json_object_with_400(api, raw):
    assert_openai_error(api.post("/key/generate", raw=raw), 400, "invalid_request_error")


def test_it_answers_an_unknown_team_with_404(api):
    response = api.post("/key/generate", {"team_id": "00000000-0000-0000-0000-000000000000"})

    assert_openai_error(response, 404, "not_found_error")


def test_it_answers_an_unknown_owner_with_404(api):
    assert_openai_error(api.post("/key/generate", {"user_id": "nobody"}), 404, "not_found_error")


def test_it_refuses_models_the_team_does_not_allow(api):
    team = team_make(models=["gpt-4o"])

    response = api.post("/key/generate", {"team_id": str(team.team_id), "models": ["gpt-4o", "o1"]})

    assert_openai_error(response, 400, "invalid_request_error", "models")


def test_info_shows_the_key_without_its_secret(api, team_a_key):
    response = api.get("/key/info", {"key": team_a_key.secret})

    assert response.status_code == 200
    body = response.json()
    assert body["key"] == team_a_key.token
    assert body["info"]["token"] == team_a_key.token
    assert body["info"]["key_name"] == team_a_key.key.key_prefix
    assert "key_hash" not in body["info"]
    assert_no_secret(response, team_a_key)


def test_info_finds_a_key_by_token(api, team_a_key):
    response = api.get("/key/info", {"key": team_a_key.token})

    assert response.json()["info"]["key_alias"] == "a-plain"


def test_info_of_an_unknown_key_is_404(api):
    assert_openai_error(api.get("/key/info", {"key": "sk-nope"}), 404, "not_found_error")


def test_info_without_a_key_for_the_master_key_is_400(api):
    assert_openai_error(api.get("/key/info"), 400, "invalid_request_error", "key")


def test_update_changes_what_is_given_and_keeps_the_rest(api, team_a_key):
    response = api.post(
        "/key/update", {"key": team_a_key.secret, "max_budget": 3, "key_alias": None, "metadata": {"a": 1}}
    )

    assert response.status_code == 200, response.content
    key = VirtualKey.objects.get(token=team_a_key.token)
    assert key.max_budget == Decimal("3")
    assert key.key_alias == ""
    assert key.metadata == {"a": 1}
    assert key.team_id == team_a_key.key.team_id
    assert key.key_hash == team_a_key.key.key_hash
    assert_no_secret(response, team_a_key)


def test_update_by_token_with_duration_sets_expires(api, team_a_key):
    api.post("/key/update", {"key": team_a_key.token, "duration": "1h"})

    expires = VirtualKey.objects.get(token=team_a_key.token).expires
    assert timezone.now() < expires <= timezone.now() + timedelta(hours=1)


def test_update_moves_a_key_to_another_team(api, team_a_key, team_b):
    api.post("/key/update", {"key": team_a_key.token, "team_id": str(team_b.team_id)})

    assert VirtualKey.objects.get(token=team_a_key.token).team == team_b


def test_update_of_an_unknown_key_is_404(api):
    assert_openai_error(api.post("/key/update", {"key": "sk-nope", "max_budget": 1}), 404, "not_found_error")


def test_update_without_key_is_400(api):
    assert_openai_error(api.post("/key/update", {"max_budget": 1}), 400, "invalid_request_error", "key")


def test_delete_answers_tokens_not_secrets(api, team_a_key, team_b_key):
    response = api.post("/key/delete", {"keys": [team_a_key.secret, team_b_key.token]})

    assert response.status_code == 200
    assert sorted(response.json()["deleted_keys"]) == sorted([team_a_key.token, team_b_key.token])
    assert_no_secret(response, team_a_key, team_b_key)
    assert not VirtualKey.objects.exists()
    assert api.get("/key/info", key=team_a_key.secret).status_code == 401


def test_delete_by_alias(api, team_a_key, team_b_key):
    response = api.post("/key/delete", {"key_aliases": ["a-plain"]})

    assert response.json()["deleted_keys"] == [team_a_key.token]
    assert list(VirtualKey.objects.all()) == [team_b_key.key]


def test_delete_deletes_nothing_when_one_key_is_unknown(api, team_a_key):
    response = api.post("/key/delete", {"keys": [team_a_key.token, "sk-nope"]})

    assert_openai_error(response, 404, "not_found_error")
    assert VirtualKey.objects.filter(token=team_a_key.token).exists()


def test_delete_needs_keys(api):
    assert_openai_error(api.post("/key/delete", {"keys": []}), 400, "invalid_request_error", "keys")


def test_list_pages_newest_first_and_shows_tokens(api, team_a):
    issued = [key_make(team=team_a, key_alias=f"k{index}") for index in range(3)]

    first = api.get("/key/list", {"size": 2})
    second = api.get("/key/list", {"size": 2, "page": 2})

    assert first.json() == {
        "keys": [issued[2].token, issued[1].token],
        "total_count": 3,
        "current_page": 1,
        "total_pages": 2,
    }
    assert second.json()["keys"] == [issued[0].token]
    assert_no_secret(first, *issued)


def test_list_filters_by_team_owner_and_alias(api, team_a, team_b):
    owner = user_make(username="carol")
    a_key = key_make(team=team_a, key_alias="same")
    b_key = key_make(team=team_b, key_alias="same", user=owner)

    assert api.get("/key/list", {"team_id": str(team_a.team_id)}).json()["keys"] == [a_key.token]
    assert api.get("/key/list", {"user_id": "carol"}).json()["keys"] == [b_key.token]
    assert api.get("/key/list", {"key_alias": "same"}).json()["total_count"] == 2


def test_list_returns_full_objects_without_secrets(api, team_a_key):
    response = api.get("/key/list", {"return_full_object": "true"})

    assert response.json()["keys"][0]["token"] == team_a_key.token
    assert response.json()["keys"][0]["key_alias"] == "a-plain"
    assert_no_secret(response, team_a_key)


@pytest.mark.parametrize("params", [{"page": 0}, {"page": 10**12}, {"size": 1000}, {"page": "x"}])
def test_list_refuses_bad_paging(api, params):
    assert_openai_error(api.get("/key/list", params), 400, "invalid_request_error", next(iter(params)))


def test_regenerate_replaces_the_secret(api, team_a_key):
    response = api.post("/key/regenerate", {"key": team_a_key.secret})

    assert response.status_code == 200
    new_secret = response.json()["key"]
    assert new_secret != team_a_key.secret
    assert response.json()["token"] == team_a_key.token
    assert api.get("/key/info", key=team_a_key.secret).status_code == 401
    assert api.get("/key/info", key=new_secret).status_code == 200


def test_regenerate_by_path_with_a_custom_new_key(api, team_a_key):
    new_key = "sk-brand-new-secret-0123456789abc"
    response = api.post(f"/key/{team_a_key.token}/regenerate", {"new_key": new_key})

    assert response.json()["key"] == "sk-brand-new-secret-0123456789abc"
    assert api.get("/key/info", key="sk-brand-new-secret-0123456789abc").status_code == 200


def test_regenerate_needs_a_key(api):
    assert_openai_error(api.post("/key/regenerate", {}), 400, "invalid_request_error", "key")


def test_block_refuses_the_key_until_unblocked(api, team_a_key):
    blocked = api.post("/key/block", {"key": team_a_key.secret})

    assert blocked.json()["blocked"] is True
    assert_openai_error(api.get("/key/info", key=team_a_key.secret), 401, "authentication_error")

    unblocked = api.post("/key/unblock", {"key": team_a_key.token})

    assert unblocked.json()["blocked"] is False
    assert api.get("/key/info", key=team_a_key.secret).status_code == 200


def test_an_expired_key_is_refused(api, team_a):
    expired = key_make(team=team_a, expires=timezone.now() - timedelta(seconds=1))

    assert_openai_error(api.get("/key/info", key=expired.secret), 401, "authentication_error")
