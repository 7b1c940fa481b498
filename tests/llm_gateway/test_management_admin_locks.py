"""What a gateway admin set on a key or team, its team admins may tighten but not lift."""

import pytest
from django.test import Client
from django.urls import reverse

from llm_gateway.models import Membership, Team, VirtualKey
from tests.llm_gateway.management_factories import (
    Api,
    assert_openai_error,
    member_make,
    user_make,
)

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db

LIMITS = {"max_budget": 10, "rpm_limit": 10, "tpm_limit": 1000, "max_parallel_requests": 2}
RAISED = {"max_budget": 11, "rpm_limit": 11, "tpm_limit": 1001, "max_parallel_requests": 3}
LOWERED = {"max_budget": 5, "rpm_limit": 5, "tpm_limit": 500, "max_parallel_requests": 1}


@pytest.fixture(params=["management key", "session"])
def team_admin(request, api, team_a, team_a_manager) -> Api:
    """A team admin of team A: its management key, or a logged-in user with the admin role."""
    if request.param == "management key":
        return Api(api.client, team_a_manager.secret)
    user = user_make(username="alice")
    member_make(team=team_a, user=user, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return Api(client, default_key="")


def stored(token: str) -> VirtualKey:
    return VirtualKey.objects.get(token=token)


class TestKeys:
    def test_it_may_not_unblock_a_key_a_gateway_admin_blocked(self, api, team_admin, team_a_key):
        api.post("/key/block", {"key": team_a_key.token})

        unblocked = team_admin.post("/key/unblock", {"key": team_a_key.token})
        updated = team_admin.post("/key/update", {"key": team_a_key.token, "blocked": False})

        assert "blocked" in assert_openai_error(unblocked, 403, "permission_error", "blocked")["message"]
        assert_openai_error(updated, 403, "permission_error", "blocked")
        assert stored(team_a_key.token).blocked

    @pytest.mark.parametrize("field", sorted(LIMITS))
    @pytest.mark.parametrize("change", ["raise", "clear"])
    def test_it_may_not_raise_or_clear_a_limit_a_gateway_admin_set(
        self, api, team_admin, team_a_key, field, change
    ):
        api.post("/key/update", {"key": team_a_key.token, field: LIMITS[field]})
        value = RAISED[field] if change == "raise" else None

        response = team_admin.post("/key/update", {"key": team_a_key.token, field: value})

        assert field in assert_openai_error(response, 403, "permission_error", field)["message"]
        assert getattr(stored(team_a_key.token), field) == LIMITS[field]

    def test_it_may_not_change_a_budget_period_a_gateway_admin_set(self, api, team_admin, team_a_key):
        api.post("/key/update", {"key": team_a_key.token, "max_budget": 10, "budget_duration": "30d"})

        response = team_admin.post("/key/update", {"key": team_a_key.token, "budget_duration": "1d"})

        assert_openai_error(response, 403, "permission_error", "budget_duration")
        assert stored(team_a_key.token).budget_duration == "30d"

    def test_it_may_lower_a_limit_a_gateway_admin_set_and_block_the_key(self, api, team_admin, team_a_key):
        api.post("/key/update", {"key": team_a_key.token, **LIMITS})

        lowered = team_admin.post("/key/update", {"key": team_a_key.token, **LOWERED})
        blocked = team_admin.post("/key/block", {"key": team_a_key.token})
        raised_again = team_admin.post("/key/update", {"key": team_a_key.token, "rpm_limit": 8})

        assert (lowered.status_code, blocked.status_code) == (200, 200), lowered.content
        assert lowered.json()["admin_locked"] == sorted(LIMITS)
        assert_openai_error(raised_again, 403, "permission_error", "rpm_limit")
        key = stored(team_a_key.token)
        assert (key.rpm_limit, key.blocked) == (LOWERED["rpm_limit"], True)

    def test_a_key_created_by_a_gateway_admin_keeps_its_limits(self, api, team_admin, team_a):
        token = api.post("/key/generate", {"team_id": str(team_a.team_id), "rpm_limit": 10}).json()["token"]

        response = team_admin.post("/key/update", {"key": token, "rpm_limit": None})

        assert_openai_error(response, 403, "permission_error", "rpm_limit")

    def test_what_a_team_admin_set_it_may_change_freely(self, team_admin, team_a):
        token = team_admin.post("/key/generate", {"team_id": str(team_a.team_id), "rpm_limit": 10}).json()[
            "token"
        ]

        raised = team_admin.post("/key/update", {"key": token, "rpm_limit": 100})
        blocked = team_admin.post("/key/block", {"key": token})
        unblocked = team_admin.post("/key/unblock", {"key": token})

        assert (raised.status_code, blocked.status_code, unblocked.status_code) == (200, 200, 200)
        assert stored(token).rpm_limit == 100 and not stored(token).blocked

    def test_a_gateway_admin_lifting_its_limit_frees_it(self, api, team_admin, team_a_key):
        api.post("/key/update", {"key": team_a_key.token, "rpm_limit": 10})
        api.post("/key/block", {"key": team_a_key.token})
        api.post("/key/unblock", {"key": team_a_key.token})
        api.post("/key/update", {"key": team_a_key.token, "rpm_limit": None})

        raised = team_admin.post("/key/update", {"key": team_a_key.token, "rpm_limit": 50})
        blocked = team_admin.post("/key/block", {"key": team_a_key.token})
        unblocked = team_admin.post("/key/unblock", {"key": team_a_key.token})

        assert (raised.status_code, blocked.status_code, unblocked.status_code) == (200, 200, 200)
        assert stored(team_a_key.token).admin_locked == []


class TestTeams:
    def test_it_may_not_lift_a_teams_block_or_limits(self, api, team_admin, team_a):
        team_id = str(team_a.team_id)
        api.post("/team/update", {"team_id": team_id, **LIMITS})

        for field in sorted(LIMITS):
            for value in (RAISED[field], None):
                response = team_admin.post("/team/update", {"team_id": team_id, field: value})
                assert field in assert_openai_error(response, 403, "permission_error")["message"]
        api.post("/team/block", {"team_id": team_id})
        unblocked = team_admin.post("/team/unblock", {"team_id": team_id})

        # A blocked team's management key no longer authenticates at all (401); a session is refused.
        assert unblocked.status_code in (401, 403), unblocked.content
        team = Team.objects.get(pk=team_a.pk)
        assert team.blocked and team.rpm_limit == LIMITS["rpm_limit"]


class TestAdminForm:
    @pytest.fixture
    def team_admin_browser(self, team_a) -> Client:
        user = user_make(username="alice-staff")
        user.is_staff = True
        user.save()
        member_make(team=team_a, user=user, role=Membership.Role.ADMIN)
        client = Client()
        client.force_login(user)
        return client

    @staticmethod
    def form(key: VirtualKey, **overrides) -> dict:
        data = {
            "key_alias": key.key_alias,
            "key_type": key.key_type,
            "team": str(key.team_id),
            "user": "",
            "models": "[]",
            "aliases": "{}",
            "model_max_budget": "{}",
            "allowed_cache_controls": "[]",
            "metadata": "{}",
            "max_budget": "" if key.max_budget is None else str(key.max_budget),
            "budget_duration": key.budget_duration,
            "rpm_limit": "" if key.rpm_limit is None else str(key.rpm_limit),
            "tpm_limit": "" if key.tpm_limit is None else str(key.tpm_limit),
            "max_parallel_requests": "",
            "_save": "Save",
        }
        if key.blocked:
            data["blocked"] = "on"
        data.update(overrides)
        return {name: value for name, value in data.items() if value is not None}

    def test_the_form_refuses_to_raise_or_clear_a_locked_limit(self, api, team_a_key, team_admin_browser):
        api.post("/key/update", {"key": team_a_key.token, "rpm_limit": 10, "tpm_limit": 1000})
        key = stored(team_a_key.token)
        url = reverse("admin:llm_gateway_virtualkey_change", args=[key.pk])

        response = team_admin_browser.post(url, self.form(key, rpm_limit="11", tpm_limit=""))

        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert set(errors) == {"rpm_limit", "tpm_limit"}
        key = stored(team_a_key.token)
        assert (key.rpm_limit, key.tpm_limit) == (10, 1000)

    def test_the_form_lets_a_team_admin_lower_a_locked_limit(self, api, team_a_key, team_admin_browser):
        api.post("/key/update", {"key": team_a_key.token, "rpm_limit": 10})
        key = stored(team_a_key.token)
        url = reverse("admin:llm_gateway_virtualkey_change", args=[key.pk])

        response = team_admin_browser.post(url, self.form(key, rpm_limit="3"))

        assert response.status_code == 302, response.context["adminform"].form.errors
        assert stored(team_a_key.token).rpm_limit == 3

    def test_the_form_and_the_action_refuse_to_unblock(self, api, team_a_key, team_admin_browser):
        api.post("/key/block", {"key": team_a_key.token})
        key = stored(team_a_key.token)

        saved = team_admin_browser.post(
            reverse("admin:llm_gateway_virtualkey_change", args=[key.pk]), self.form(key, blocked=None)
        )
        acted = team_admin_browser.post(
            reverse("admin:llm_gateway_virtualkey_changelist"),
            {"action": "unblock", "_selected_action": [str(key.pk)]},
            follow=True,
        )

        assert set(saved.context["adminform"].form.errors) == {"blocked"}
        assert "stays blocked" in acted.content.decode()
        assert stored(team_a_key.token).blocked

    def test_a_superuser_in_the_admin_locks_what_it_sets(self, team_a_key, team_admin_browser):
        root = Client()
        root.force_login(user_make(username="root", is_admin=True))
        key = stored(team_a_key.token)

        saved = root.post(
            reverse("admin:llm_gateway_virtualkey_change", args=[key.pk]), self.form(key, rpm_limit="7")
        )
        response = Api(team_admin_browser, default_key="").post(
            "/key/update", {"key": team_a_key.token, "rpm_limit": 70}
        )

        assert saved.status_code == 302
        assert stored(team_a_key.token).admin_locked == ["rpm_limit"]
        assert_openai_error(response, 403, "permission_error", "rpm_limit")
