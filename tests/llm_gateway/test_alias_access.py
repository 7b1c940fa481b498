"""Aliases pointing at model groups their key or team may not use are refused when written.

The management API answers 400 naming the field, the admin shows the error on the field, and nothing
is saved. (At request time the router decides on the group an alias reaches: tests/e2e/test_alias_access.py.)
"""

import pytest
from django.test import Client

from llm_gateway.models import Team, VirtualKey
from llm_gateway.router.settings import RouterSettings, RouterSettingsError
from tests.llm_gateway.management_factories import assert_openai_error, key_make, team_make
from tests.llm_gateway.test_admin import key_form, url

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db


@pytest.fixture
def team_a() -> Team:
    return team_make(team_alias="team-a", models=["gpt-a"])


@pytest.fixture
def team_a_manager(team_a: Team):
    """A management key of team A: a team admin of A."""
    return key_make(team=team_a, key_type=VirtualKey.KeyType.MANAGEMENT, key_alias="a-manager")


def test_key_generate_refuses_an_alias_to_a_group_the_team_may_not_use(api, team_a, team_a_manager):
    body = {"team_id": str(team_a.team_id), "aliases": {"gpt-a": "gpt-b"}}

    for key in (None, team_a_manager.secret):  # the master key, and team A's own admin
        error = assert_openai_error(api.post("/key/generate", body, key=key), 400, "invalid_request_error")
        assert error["param"] == "aliases"
        assert "gpt-a -> gpt-b" in error["message"]
    assert not VirtualKey.objects.filter(aliases__has_key="gpt-a").exists()


def test_key_generate_refuses_an_alias_to_a_group_outside_the_keys_own_models(api):
    response = api.post("/key/generate", {"models": ["gpt-a"], "aliases": {"fast": "gpt-b"}})

    assert assert_openai_error(response, 400, "invalid_request_error")["param"] == "aliases"


@pytest.mark.parametrize(
    ("fields", "aliases"),
    [
        ({"models": ["gpt-a"]}, {"fast": "gpt-a"}),
        ({"models": ["*"]}, {"fast": "gpt-b"}),
        ({}, {"fast": "gpt-b"}),  # no team, no list: every model, as the gateway admin chose
    ],
)
def test_key_generate_accepts_aliases_within_what_the_key_may_use(api, fields, aliases):
    response = api.post("/key/generate", {**fields, "aliases": aliases})

    assert response.status_code == 200, response.content
    assert response.json()["aliases"] == aliases


def test_key_update_refuses_an_alias_to_a_group_the_team_may_not_use(api, team_a, team_a_manager):
    key = key_make(team=team_a, aliases={"fast": "gpt-a"}).key

    response = api.post(
        "/key/update", {"key": str(key.token), "aliases": {"fast": "gpt-b"}}, key=team_a_manager.secret
    )

    assert assert_openai_error(response, 400, "invalid_request_error")["param"] == "aliases"
    key.refresh_from_db()
    assert key.aliases == {"fast": "gpt-a"}


def test_key_update_refuses_narrowing_models_below_the_keys_aliases(api):
    key = key_make(models=["gpt-a", "gpt-b"], aliases={"fast": "gpt-b"}).key

    response = api.post("/key/update", {"key": str(key.token), "models": ["gpt-a"]})

    assert assert_openai_error(response, 400, "invalid_request_error")["param"] == "aliases"


def test_team_new_refuses_model_aliases_outside_its_models(api):
    response = api.post(
        "/team/new", {"team_alias": "t", "models": ["gpt-a"], "model_aliases": {"smart": "gpt-b"}}
    )

    assert assert_openai_error(response, 400, "invalid_request_error")["param"] == "model_aliases"
    assert not Team.objects.filter(team_alias="t").exists()


def test_team_update_refuses_model_aliases_outside_its_models(api, team_a):
    response = api.post("/team/update", {"team_id": str(team_a.team_id), "model_aliases": {"smart": "gpt-b"}})

    assert assert_openai_error(response, 400, "invalid_request_error")["param"] == "model_aliases"
    team_a.refresh_from_db()
    assert team_a.model_aliases == {}


def test_team_update_accepts_model_aliases_within_its_models(api, team_a):
    response = api.post("/team/update", {"team_id": str(team_a.team_id), "model_aliases": {"smart": "gpt-a"}})

    assert response.status_code == 200, response.content
    team_a.refresh_from_db()
    assert team_a.model_aliases == {"smart": "gpt-a"}


class TestAdmin:
    def test_the_key_form_refuses_an_alias_to_a_group_the_team_may_not_use(self, admin_client, team_a):
        response = admin_client.post(
            url("virtualkey", "add"), key_form(team=str(team_a.pk), aliases='{"gpt-a": "gpt-b"}')
        )

        assert response.status_code == 200  # the form again, with the error
        assert "gpt-a -&gt; gpt-b" in response.content.decode()
        assert response.context["adminform"].form.errors.keys() == {"aliases"}
        assert not VirtualKey.objects.exists()

    def test_a_team_admin_cannot_alias_another_teams_group(self, client: Client, team_a):
        from tests.llm_gateway.factories import team_admin_make

        key = key_make(team=team_a, key_alias="mine").key
        client.force_login(team_admin_make(team=team_a, username="a-admin"))

        response = client.post(
            url("virtualkey", "change", key.pk),
            key_form(key_alias="mine", team=str(team_a.pk), aliases='{"fast": "gpt-b"}'),
        )

        assert response.status_code == 200
        assert response.context["adminform"].form.errors.keys() == {"aliases"}
        key.refresh_from_db()
        assert key.aliases == {}

    def test_the_key_form_accepts_an_alias_within_the_teams_models(self, admin_client, team_a):
        response = admin_client.post(
            url("virtualkey", "add"), key_form(team=str(team_a.pk), aliases='{"fast": "gpt-a"}')
        )

        assert response.status_code == 302
        assert VirtualKey.objects.get().aliases == {"fast": "gpt-a"}

    def test_the_team_form_refuses_model_aliases_outside_its_models(self, admin_client, team_a):
        response = admin_client.post(
            url("team", "change", team_a.pk),
            {
                "team_alias": "team-a",
                "models": '["gpt-a"]',
                "model_aliases": '{"smart": "gpt-b"}',
                "metadata": "{}",
                "memberships-TOTAL_FORMS": "0",
                "memberships-INITIAL_FORMS": "0",
                "_save": "Save",
            },
        )

        assert response.status_code == 200
        assert response.context["adminform"].form.errors.keys() == {"model_aliases"}
        team_a.refresh_from_db()
        assert team_a.model_aliases == {}


def test_router_aliases_are_read_with_their_hidden_flag():
    settings = RouterSettings.parse(
        {"model_group_alias": {"fast": "gpt-a", "quiet": {"model": "gpt-a", "hidden": True}}}
    )

    assert settings.model_group_alias == {"fast": "gpt-a", "quiet": "gpt-a"}
    assert settings.hidden_aliases == {"quiet"}


@pytest.mark.parametrize("target", [{"hidden": True}, {"model": "gpt-a", "hidden": "yes"}, 3, ""])
def test_router_settings_refuse_an_alias_that_names_no_group(target):
    with pytest.raises(RouterSettingsError, match="model_group_alias"):
        RouterSettings.parse({"model_group_alias": {"fast": target}})
