"""The admin: keys shown once, write-only credentials, and team admins kept to their own teams."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from llm_gateway.crypto import credential_decrypt, virtual_key_hash
from llm_gateway.models import Deployment, Membership, Team, VirtualKey
from tests.llm_gateway.factories import (
    PASSWORD,
    deployment_make,
    end_user_make,
    key_make,
    membership_make,
    team_admin_make,
    team_make,
    user_make,
)

pytestmark = pytest.mark.django_db

SHOWN_SECRET = re.compile(r'value="(sk-[A-Za-z0-9_-]+)"[^>]*data-secret')


def url(model: str, view: str, *args: Any) -> str:
    app = "auth" if model in ("user", "group") else "llm_gateway"
    return reverse(f"admin:{app}_{model}_{view}", args=args)


def shown_secrets(html: str) -> list[str]:
    return SHOWN_SECRET.findall(html)


def key_form(**overrides: Any) -> dict[str, Any]:
    """Return the key add/change form as a browser would post it, empty fields included."""
    data = {
        "key_alias": "",
        "key_type": VirtualKey.KeyType.LLM_API,
        "team": "",
        "user": "",
        "expires_0": "",
        "expires_1": "",
        "models": "[]",
        "aliases": "{}",
        "max_budget": "",
        "soft_budget": "",
        "budget_duration": "",
        "model_max_budget": "{}",
        "rpm_limit": "",
        "tpm_limit": "",
        "max_parallel_requests": "",
        "metadata": "{}",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def deployment_form(deployment: Deployment, **overrides: Any) -> dict[str, Any]:
    """Return a deployment's change form as a browser would post it, the API key left blank."""
    data = {
        "model_name": deployment.model_name,
        "provider": deployment.provider,
        "model": deployment.model,
        "mode": deployment.mode,
        "enabled": "on",
        "api_base": deployment.api_base,
        "api_version": "",
        "api_key": "",
        "timeout": "",
        "order": "1",
        "weight": "1.0",
        "rpm": "",
        "tpm": "",
        "model_id": deployment.model_id,
        "extra_params": "{}",
        "model_info": "{}",
        # The management form of the read-only health-check inline, which a browser posts too.
        "health_checks-TOTAL_FORMS": "0",
        "health_checks-INITIAL_FORMS": "0",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def action_post(client: Client, model: str, action: str, *rows: Any) -> Any:
    return client.post(
        url(model, "changelist"),
        {"action": action, "_selected_action": [str(row.pk) for row in rows]},
        follow=True,
    )


def visible_models(response: Any) -> set[str]:
    return {model["object_name"] for app in response.context["available_apps"] for model in app["models"]}


@pytest.fixture
def team() -> Team:
    return team_make(team_alias="team-alpha")


@pytest.fixture
def other_team() -> Team:
    return team_make(team_alias="team-bravo")


@pytest.fixture
def team_admin_client(client: Client, team: Team) -> Client:
    """A client logged in as a staff user who is a team admin of `team`, with no model permission."""
    client.force_login(team_admin_make(team=team, username="alpha-admin"))
    return client


class TestPagesRender:
    def test_logging_in_on_the_login_page_itself_lands_on_the_admin(self, client):
        user_make(username="operator", superuser=True)

        page = client.get(reverse("admin:login")).content.decode()
        # What the browser posts: the form's fields, the hidden "next" among them.
        [next_url] = re.findall(r'<input type="hidden" name="next" value="([^"]*)" form="login-form">', page)
        response = client.post(
            reverse("admin:login"), {"username": "operator", "password": PASSWORD, "next": next_url}
        )

        assert response.status_code == 302
        assert response["Location"] == reverse("admin:index")

    @pytest.mark.parametrize("model", ["virtualkey", "team", "deployment", "enduser", "user", "group"])
    def test_every_changelist_and_add_form_renders_for_a_superuser(self, admin_client, team, model):
        membership_make(user=user_make(), team=team)
        key_make(team=team)
        deployment_make()
        end_user_make()

        assert admin_client.get(url(model, "changelist")).status_code == 200
        assert admin_client.get(url(model, "changelist"), {"_facets": "True"}).status_code == 200
        assert admin_client.get(url(model, "add")).status_code == 200

    def test_every_change_form_renders_for_a_superuser(self, admin_client, team):
        key, _ = key_make(team=team)
        rows = {"virtualkey": key, "team": team, "deployment": deployment_make(), "enduser": end_user_make()}

        for model, row in rows.items():
            assert admin_client.get(url(model, "change", row.pk)).status_code == 200, model

    def test_the_key_list_labels_each_status(self, admin_client, team):
        key_make(key_alias="fine")
        key_make(key_alias="stopped", blocked=True)
        key_make(key_alias="old", expires=timezone.now() - timedelta(days=1))
        team_make(team_alias="frozen", blocked=True)
        key_make(key_alias="in-frozen-team", team=Team.objects.get(team_alias="frozen"))

        html = admin_client.get(url("virtualkey", "changelist")).content.decode()

        for label in ("Active", "Blocked", "Expired", "Team blocked"):
            assert f"\n{label}\n" in html, label

    def test_the_key_list_filters_expired_keys(self, admin_client):
        key_make(key_alias="fresh-key")
        key_make(key_alias="stale-key", expires=timezone.now() - timedelta(minutes=1))

        html = admin_client.get(url("virtualkey", "changelist"), {"expired": "yes"}).content.decode()

        assert "stale-key" in html
        assert "fresh-key" not in html

    def test_a_pasted_secret_finds_its_key(self, admin_client):
        key_make(key_alias="wanted")
        key_make(key_alias="unwanted")
        _, secret = key_make(key_alias="the-one")

        html = admin_client.get(url("virtualkey", "changelist"), {"q": secret}).content.decode()

        assert "the-one" in html
        assert "unwanted" not in html


class TestKeySecrets:
    def test_it_shows_a_created_key_secret_exactly_once(self, admin_client, team):
        response = admin_client.post(
            url("virtualkey", "add"), key_form(key_alias="billing-bot", team=team.pk), follow=True
        )

        key = VirtualKey.objects.get(key_alias="billing-bot")
        assert response.redirect_chain == [(url("virtualkey", "change", key.pk), 302)]
        [secret] = shown_secrets(response.content.decode())
        assert virtual_key_hash(secret) == key.key_hash
        assert key.team == team
        again = admin_client.get(url("virtualkey", "change", key.pk)).content.decode()
        assert secret not in again
        assert key.key_hash not in again
        assert key.key_prefix in again
        assert "\nActive\n" in again  # the status, as unfold's label

    def test_it_regenerates_keys_with_one_message_per_key(self, admin_client):
        first, first_secret = key_make(key_alias="first")
        second, second_secret = key_make(key_alias="second")
        old_hashes = {first.key_hash, second.key_hash}

        response = action_post(admin_client, "virtualkey", "regenerate", first, second)

        secrets = shown_secrets(response.content.decode())
        assert len(secrets) == 2
        assert not {first_secret, second_secret} & set(secrets)
        stored = set(VirtualKey.objects.values_list("key_hash", flat=True))
        assert stored == {virtual_key_hash(secret) for secret in secrets}
        assert not stored & old_hashes

    def test_it_blocks_and_unblocks_keys(self, admin_client):
        key, _ = key_make()
        untouched, _ = key_make()

        action_post(admin_client, "virtualkey", "block", key)
        key.refresh_from_db()
        untouched.refresh_from_db()
        assert key.blocked
        assert not untouched.blocked

        action_post(admin_client, "virtualkey", "unblock", key)
        key.refresh_from_db()
        assert not key.blocked

    def test_it_saves_budgets_and_json_settings(self, admin_client):
        key, _ = key_make()

        response = admin_client.post(
            url("virtualkey", "change", key.pk),
            key_form(
                key_alias="tuned",
                max_budget="12.50",
                rpm_limit="60",
                models='["gpt-4o", "claude-sonnet"]',
                aliases='{"fast": "gpt-4o"}',
                model_max_budget='{"gpt-4o": 5}',
                metadata="",
            ),
        )

        assert response.status_code == 302
        key.refresh_from_db()
        assert (key.key_alias, str(key.max_budget), key.rpm_limit) == ("tuned", "12.5000000000", 60)
        assert key.models == ["gpt-4o", "claude-sonnet"]
        assert key.aliases == {"fast": "gpt-4o"}
        assert key.model_max_budget == {"gpt-4o": 5}
        assert key.metadata == {}

    def test_it_rejects_json_of_the_wrong_shape(self, admin_client):
        response = admin_client.post(url("virtualkey", "add"), key_form(models='{"gpt-4o": true}'))

        assert response.status_code == 200
        assert "Enter a JSON list" in response.content.decode()
        assert not VirtualKey.objects.exists()


class TestDeploymentCredentials:
    def test_the_change_form_never_renders_the_credential(self, admin_client):
        deployment = deployment_make(api_key="sk-live-SECRET123")

        html = admin_client.get(url("deployment", "change", deployment.pk)).content.decode()

        assert "sk-live-SECRET123" not in html
        assert deployment.credential not in html
        assert "encrypted key set" in html

    def test_saving_with_a_blank_api_key_keeps_it(self, admin_client):
        deployment = deployment_make(api_key="sk-live-SECRET123")

        response = admin_client.post(
            url("deployment", "change", deployment.pk), deployment_form(deployment, model_name="renamed")
        )

        assert response.status_code == 302
        deployment.refresh_from_db()
        assert deployment.model_name == "renamed"
        assert credential_decrypt(deployment.credential) == "sk-live-SECRET123"

    def test_saving_an_environment_reference_stores_the_reference(self, admin_client):
        deployment = deployment_make(api_key="sk-live-SECRET123")

        admin_client.post(
            url("deployment", "change", deployment.pk),
            deployment_form(deployment, api_key="os.environ/LLM_OPENAI_KEY_X"),
        )

        deployment.refresh_from_db()
        assert (deployment.credential, deployment.credential_env) == ("", "LLM_OPENAI_KEY_X")
        html = admin_client.get(url("deployment", "change", deployment.pk)).content.decode()
        assert "from $LLM_OPENAI_KEY_X" in html

    def test_it_removes_the_credential_when_asked(self, admin_client):
        deployment = deployment_make(api_key="sk-live-SECRET123")

        admin_client.post(
            url("deployment", "change", deployment.pk), deployment_form(deployment, api_key_remove="on")
        )

        deployment.refresh_from_db()
        assert (deployment.credential, deployment.credential_env) == ("", "")

    def test_adding_a_deployment_encrypts_its_key(self, admin_client):
        form = deployment_form(
            deployment_make(model_name="template"), model_name="new-model", model_id="new-id"
        )

        response = admin_client.post(url("deployment", "add"), {**form, "api_key": "sk-new-SECRET456"})

        assert response.status_code == 302
        created = Deployment.objects.get(model_id="new-id")
        assert "sk-new-SECRET456" not in created.credential
        assert credential_decrypt(created.credential) == "sk-new-SECRET456"

    def test_it_rejects_a_malformed_environment_reference(self, admin_client):
        deployment = deployment_make(api_key="sk-live-SECRET123")

        response = admin_client.post(
            url("deployment", "change", deployment.pk), deployment_form(deployment, api_key="os.environ/")
        )

        assert response.status_code == 200
        assert "is not an environment variable name" in response.content.decode()

    def test_it_disables_and_enables_deployments(self, admin_client):
        deployment = deployment_make()

        action_post(admin_client, "deployment", "disable", deployment)
        deployment.refresh_from_db()
        assert not deployment.enabled

        action_post(admin_client, "deployment", "enable", deployment)
        deployment.refresh_from_db()
        assert deployment.enabled


class TestBlocking:
    def test_it_blocks_and_unblocks_teams(self, admin_client, team, other_team):
        action_post(admin_client, "team", "block", team)
        team.refresh_from_db()
        other_team.refresh_from_db()
        assert team.blocked
        assert not other_team.blocked

        action_post(admin_client, "team", "unblock", team)
        team.refresh_from_db()
        assert not team.blocked

    def test_it_blocks_and_unblocks_end_users(self, admin_client):
        end_user = end_user_make()

        action_post(admin_client, "enduser", "block", end_user)
        end_user.refresh_from_db()
        assert end_user.blocked

        action_post(admin_client, "enduser", "unblock", end_user)
        end_user.refresh_from_db()
        assert not end_user.blocked

    def test_the_team_list_counts_members_and_keys(self, admin_client, team):
        for _ in range(3):
            membership_make(user=user_make(), team=team)
        key_make(team=team)

        response = admin_client.get(url("team", "changelist"))

        [row] = response.context["cl"].result_list
        assert (row.member_count, row.key_count) == (3, 1)


class TestTeamAdmin:
    def test_it_lists_only_its_teams_keys(self, team_admin_client, team, other_team):
        key_make(key_alias="alpha-key", team=team)
        key_make(key_alias="bravo-key", team=other_team)
        key_make(key_alias="teamless-key")

        html = team_admin_client.get(url("virtualkey", "changelist")).content.decode()

        assert "alpha-key" in html
        assert "bravo-key" not in html
        assert "teamless-key" not in html
        assert "team-bravo" not in html  # not even in the team filter

    @pytest.mark.parametrize("view", ["change", "delete", "history"])
    def test_another_teams_key_is_not_found(self, team_admin_client, other_team, view):
        key, _ = key_make(team=other_team)

        assert team_admin_client.get(url("virtualkey", view, key.pk)).status_code == 404

    def test_posting_to_another_teams_key_changes_nothing(self, team_admin_client, team, other_team):
        key, _ = key_make(key_alias="bravo-key", team=other_team)

        response = team_admin_client.post(
            url("virtualkey", "change", key.pk), key_form(key_alias="taken", team=team.pk)
        )
        deleted = team_admin_client.post(url("virtualkey", "delete", key.pk), {"post": "yes"})

        assert response.status_code == 404
        assert deleted.status_code == 404
        key.refresh_from_db()
        assert (key.key_alias, key.team) == ("bravo-key", other_team)

    def test_actions_skip_another_teams_keys(self, team_admin_client, other_team):
        key, _ = key_make(team=other_team)

        action_post(team_admin_client, "virtualkey", "regenerate", key)
        action_post(team_admin_client, "virtualkey", "block", key)

        assert VirtualKey.objects.get(pk=key.pk).key_hash == key.key_hash
        assert not VirtualKey.objects.get(pk=key.pk).blocked

    def test_it_creates_a_key_in_its_team_and_sees_the_secret(self, team_admin_client, team, other_team):
        form = team_admin_client.get(url("virtualkey", "add")).content.decode()
        assert "team-alpha" in form
        assert "team-bravo" not in form

        response = team_admin_client.post(
            url("virtualkey", "add"), key_form(key_alias="alpha-bot", team=team.pk), follow=True
        )

        key = VirtualKey.objects.get(key_alias="alpha-bot")
        assert key.team == team
        [secret] = shown_secrets(response.content.decode())
        assert virtual_key_hash(secret) == key.key_hash

    def test_it_cannot_create_a_key_in_another_team_or_in_none(self, team_admin_client, other_team):
        into_other = team_admin_client.post(url("virtualkey", "add"), key_form(team=other_team.pk))
        into_none = team_admin_client.post(url("virtualkey", "add"), key_form(team=""))

        assert into_other.status_code == into_none.status_code == 200
        assert into_other.context["adminform"].form.errors["team"]
        assert into_none.context["adminform"].form.errors["team"]
        assert not VirtualKey.objects.exists()

    def test_owner_choices_are_its_teams_members(self, team_admin_client, team, other_team):
        membership_make(user=user_make(username="alpha-member"), team=team)
        membership_make(user=user_make(username="bravo-member"), team=other_team)

        form = team_admin_client.get(url("virtualkey", "add")).context["adminform"].form

        usernames = {user.username for user in form.fields["user"].queryset}
        assert usernames == {"alpha-admin", "alpha-member"}

    def test_it_sees_only_the_gateway_models_it_manages(self, team_admin_client):
        response = team_admin_client.get(reverse("admin:index"))

        assert visible_models(response) == {"Team", "VirtualKey", "LedgerEntry", "SpendRollup"}

    @pytest.mark.parametrize("model", ["deployment", "enduser", "user", "group"])
    def test_it_cannot_open_other_models(self, team_admin_client, model):
        assert team_admin_client.get(url(model, "changelist")).status_code == 403
        assert team_admin_client.get(url(model, "add")).status_code == 403

    def test_it_cannot_open_a_deployment(self, team_admin_client):
        deployment = deployment_make(api_key="sk-live-SECRET123")

        response = team_admin_client.get(url("deployment", "change", deployment.pk))

        assert response.status_code == 403

    def test_it_sees_only_its_team(self, team_admin_client, team, other_team):
        html = team_admin_client.get(url("team", "changelist")).content.decode()

        assert "team-alpha" in html
        assert "team-bravo" not in html
        assert team_admin_client.get(url("team", "change", other_team.pk)).status_code == 404
        assert team_admin_client.get(url("team", "add")).status_code == 403

    def test_it_sees_its_teams_members(self, team_admin_client, team, other_team):
        membership_make(user=user_make(username="alpha-member"), team=team)
        membership_make(user=user_make(username="bravo-member"), team=other_team)

        response = team_admin_client.get(url("team", "change", team.pk))

        [memberships] = response.context["inline_admin_formsets"]
        members = {form.instance.user.username for form in memberships.formset.initial_forms}
        assert members == {"alpha-admin", "alpha-member"}

    def test_it_edits_its_teams_members_but_not_its_budget(self, team_admin_client, team):
        admin_membership = Membership.objects.get(team=team)
        newcomer = user_make(username="newcomer")

        response = team_admin_client.post(
            url("team", "change", team.pk),
            {
                "team_alias": "renamed",
                "max_budget": "999",
                "memberships-TOTAL_FORMS": "2",
                "memberships-INITIAL_FORMS": "1",
                "memberships-0-id": admin_membership.pk,
                "memberships-0-team": team.pk,
                "memberships-0-user": admin_membership.user_id,
                "memberships-0-role": Membership.Role.ADMIN,
                "memberships-1-team": team.pk,
                "memberships-1-user": newcomer.pk,
                "memberships-1-role": Membership.Role.VIEWER,
                "_save": "Save",
            },
        )

        assert response.status_code == 302
        team.refresh_from_db()
        assert (team.team_alias, team.max_budget) == ("team-alpha", None)
        assert Membership.objects.get(team=team, user=newcomer).role == Membership.Role.VIEWER
        assert Membership.objects.filter(team=team).count() == 2

    def test_it_cannot_block_teams(self, team_admin_client, team):
        action_post(team_admin_client, "team", "block", team)

        team.refresh_from_db()
        assert not team.blocked


class TestOtherStaff:
    @pytest.mark.parametrize("role", [Membership.Role.MEMBER, Membership.Role.VIEWER])
    def test_a_member_who_is_not_a_team_admin_sees_nothing(self, client, team, role):
        user = user_make(staff=True)
        membership_make(user=user, team=team, role=role)
        key, _ = key_make(team=team)
        client.force_login(user)

        assert visible_models(client.get(reverse("admin:index"))) == set()
        for model in ("virtualkey", "team", "deployment", "enduser"):
            assert client.get(url(model, "changelist")).status_code == 403, model
        assert client.get(url("virtualkey", "change", key.pk)).status_code == 404

    def test_model_permissions_still_grant_their_rows(self, client, team, other_team):
        user = user_make(staff=True)
        user.user_permissions.add(Permission.objects.get(codename="view_virtualkey"))
        key_make(key_alias="alpha-key", team=team)
        bravo_key, _ = key_make(key_alias="bravo-key", team=other_team)
        client.force_login(user)

        html = client.get(url("virtualkey", "changelist")).content.decode()
        change = client.post(url("virtualkey", "change", bravo_key.pk), key_form(key_alias="renamed"))

        assert "alpha-key" in html
        assert "bravo-key" in html
        assert change.status_code == 403
