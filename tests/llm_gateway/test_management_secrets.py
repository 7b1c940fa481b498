"""Key secrets: custom ones long enough, shown by no more than 4 characters, and never cached."""

import importlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

from billing.services.alerts import budget_alerts_due
from llm_gateway.crypto import CUSTOM_KEY_MIN_LENGTH, KEY_PREFIX
from llm_gateway.models import VirtualKey
from llm_gateway.services.keys import virtual_key_create, virtual_key_regenerate
from tests.llm_gateway.management_factories import assert_openai_error, key_make, team_make, user_make

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db

SHOWN_CHARACTERS = 4


def shows_more_than_4_characters(text: str, secret: str) -> bool:
    """Return True if ``text`` holds any 5 consecutive characters of the secret's part after ``sk-``."""
    hidden = secret.removeprefix(KEY_PREFIX)
    window = SHOWN_CHARACTERS + 1
    return any(hidden[start : start + window] in text for start in range(len(hidden) - window + 1))


def assert_never_cached(response) -> None:
    assert "no-store" in response["Cache-Control"], response.headers
    assert "private" in response["Cache-Control"], response.headers


class TestCustomSecrets:
    @pytest.mark.parametrize(
        "secret", ["sk-short", "sk-" + "a" * (CUSTOM_KEY_MIN_LENGTH - 4), "x" * CUSTOM_KEY_MIN_LENGTH]
    )
    def test_it_refuses_a_custom_key_under_32_characters_or_without_prefix(self, api, secret):
        error = assert_openai_error(
            api.post("/key/generate", {"key": secret}), 400, "invalid_request_error", "key"
        )

        assert secret not in error["message"]
        assert not VirtualKey.objects.exists()

    def test_it_takes_a_custom_key_of_32_characters(self, api):
        secret = "sk-" + "b" * (CUSTOM_KEY_MIN_LENGTH - 3)

        response = api.post("/key/generate", {"key": secret})

        assert response.status_code == 200, response.content
        assert api.get("/key/info", key=secret).status_code == 200

    def test_it_refuses_a_short_new_key_on_regenerate(self, api, team_a_key):
        for path in ("/key/regenerate", f"/key/{team_a_key.token}/regenerate"):
            response = api.post(path, {"key": team_a_key.token, "new_key": "sk-too-short-12345"})
            assert_openai_error(response, 400, "invalid_request_error", "new_key")

        assert api.get("/key/info", key=team_a_key.secret).status_code == 200

    def test_the_services_refuse_a_short_custom_key_too(self, team_a_key):
        from django.core.exceptions import ValidationError

        with pytest.raises(ValidationError, match="at least 32"):
            virtual_key_create(secret="sk-short-secret")
        with pytest.raises(ValidationError, match="at least 32"):
            virtual_key_regenerate(key=team_a_key.key, secret="sk-short-secret")


class TestDisplayForm:
    def test_a_key_is_shown_as_its_prefix_and_last_4_characters(self, api):
        body = api.post("/key/generate", {}).json()

        assert body["key_name"] == f"sk-...{body['key'][-4:]}"
        assert not shows_more_than_4_characters(body["key_name"], body["key"])

    def test_no_answer_but_the_one_that_issues_it_shows_more_than_4_characters(self, api, team_a):
        owner = user_make(username="owner")
        issued = api.post(
            "/key/generate", {"team_id": str(team_a.team_id), "user_id": "owner", "key_alias": "shown"}
        ).json()
        secret, token = issued["key"], issued["token"]

        answers = [
            api.get("/key/info", {"key": token}),
            api.get("/key/list", {"return_full_object": "true"}),
            api.get("/team/info", {"team_id": str(team_a.team_id)}),
            api.get("/user/info", {"user_id": owner.username}),
            api.post("/key/update", {"key": token, "key_alias": "still-shown"}),
            api.post("/key/block", {"key": token}),
            api.post("/key/unblock", {"key": token}),
            api.get("/key/usage", key=secret),
        ]

        for answer in answers:
            assert answer.status_code == 200, answer.content
            assert f"sk-...{secret[-4:]}" in answer.content.decode() or answer.json().get("keys") is not None
            assert not shows_more_than_4_characters(answer.content.decode(), secret), answer.content

    def test_the_admin_list_and_page_show_no_more_than_4_characters(self, team_a):
        issued = key_make(team=team_a)
        client = Client()
        client.force_login(user_make(username="root", is_admin=True))

        pages = [
            client.get(reverse("admin:llm_gateway_virtualkey_changelist")),
            client.get(reverse("admin:llm_gateway_virtualkey_change", args=[issued.key.pk])),
        ]

        for page in pages:
            assert page.status_code == 200
            assert f"sk-...{issued.secret[-4:]}" in page.content.decode()
            assert not shows_more_than_4_characters(page.content.decode(), issued.secret)

    def test_a_budget_alert_names_a_key_by_no_more_than_4_characters(self):
        issued = key_make(max_budget=Decimal("1"))
        VirtualKey.objects.filter(pk=issued.key.pk).update(spend=Decimal("1"))

        alerts = list(budget_alerts_due(now=datetime.now(UTC)))

        assert alerts
        for alert in alerts:
            text = f"{alert.payload()} {alert.message}"
            assert f"sk-...{issued.secret[-4:]}" in text
            assert not shows_more_than_4_characters(text, issued.secret)

    def test_the_migration_shortens_the_display_of_existing_keys(self):
        old = key_make()
        VirtualKey.objects.filter(pk=old.key.pk).update(key_prefix=f"{old.secret[:7]}...{old.secret[-4:]}")
        migration = importlib.import_module("llm_gateway.migrations.0007_admin_locks")

        migration._display_shorten(apps, None)

        assert VirtualKey.objects.get(pk=old.key.pk).key_prefix == f"sk-...{old.secret[-4:]}"


class TestNeverCached:
    def test_answers_with_a_secret_are_never_cached(self, api, team_a, team_a_key):
        for response in [
            api.post("/key/generate", {"team_id": str(team_a.team_id)}),
            api.post("/key/regenerate", {"key": team_a_key.token}),
            api.post(f"/key/{team_a_key.token}/regenerate", {}),
            api.post("/user/new", {"user_id": "newcomer"}),
        ]:
            assert response.status_code == 200, response.content
            assert response.json()["key"].startswith("sk-")
            assert_never_cached(response)

    def test_refusals_are_never_cached_either(self, api):
        assert_never_cached(api.post("/key/generate", {"key": "sk-short"}))
        assert_never_cached(api.get("/key/info", key=""))

    def test_the_admin_page_showing_a_new_secret_is_never_cached(self):
        team = team_make()
        client = Client()
        client.force_login(user_make(username="root", is_admin=True))
        form = {
            "key_alias": "shown-once",
            "key_type": VirtualKey.KeyType.LLM_API,
            "team": str(team.pk),
            "models": "[]",
            "aliases": "{}",
            "model_max_budget": "{}",
            "allowed_cache_controls": "[]",
            "metadata": "{}",
            "_save": "Save",
        }

        response = client.post(reverse("admin:llm_gateway_virtualkey_add"), form, follow=True)

        assert 'data-secret' in response.content.decode()
        assert_never_cached(response)


class TestUserNewKey:
    def test_the_key_of_a_new_user_may_call_no_model_unless_given(self, api, client):
        from llm_gateway.services.deployments import deployment_create

        deployment_create(model_name="demo", provider="mock", model="demo")
        bare = api.post("/user/new", {"user_id": "bare"}).json()
        given = api.post("/user/new", {"user_id": "given", "models": ["demo"]}).json()
        chat = {"model": "demo", "messages": [{"role": "user", "content": "Hi"}]}


        def bearer(user: dict) -> dict:
            return {"Authorization": f"Bearer {user['key']}"}

        refused = client.post("/v1/chat/completions", chat, "application/json", headers=bearer(bare))
        served = client.post("/v1/chat/completions", chat, "application/json", headers=bearer(given))
        listed = client.get("/v1/models", headers=bearer(bare))

        assert refused.status_code in (401, 403, 404), refused.content
        assert set(refused.json()) == {"error"}
        assert served.status_code == 200, served.content
        assert listed.json()["data"] == []
