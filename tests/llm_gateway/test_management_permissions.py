"""Who may call what: master key, admin sessions, team admins (keys and sessions), plain keys."""

import pytest
from django.test import Client

from llm_gateway.models import Membership, Team, VirtualKey
from tests.llm_gateway.management_factories import (
    Api,
    assert_openai_error,
    key_make,
    member_make,
    team_make,
    user_make,
)

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db

POST_PATHS = [
    "/key/generate",
    "/key/update",
    "/key/delete",
    "/key/regenerate",
    "/key/block",
    "/key/unblock",
    "/team/new",
    "/team/update",
    "/team/delete",
    "/team/member_add",
    "/team/member_update",
    "/team/member_delete",
    "/team/block",
    "/team/unblock",
    "/user/new",
    "/user/update",
    "/user/delete",
    "/customer/new",
    "/customer/update",
    "/customer/delete",
    "/customer/block",
    "/customer/unblock",
    "/model/new",
    "/model/update",
    "/model/delete",
]
GET_PATHS = [
    "/key/info",
    "/key/list",
    "/team/info",
    "/team/list",
    "/user/info",
    "/user/list",
    "/customer/info",
    "/customer/list",
    "/model/info",
    "/v1/model/info",
]
# What a team admin may never do, whatever the team.
GATEWAY_ADMIN_ONLY_POST = [
    "/team/new",
    "/team/delete",
    "/team/block",
    "/team/unblock",
    "/user/new",
    "/user/update",
    "/user/delete",
    "/model/new",
    "/model/update",
    "/model/delete",
]
GATEWAY_ADMIN_ONLY_GET = [
    "/user/info",
    "/user/list",
    "/model/info",
    "/v1/model/info",
]


def request(api: Api, path: str, *, key: str | None = None):
    return api.get(path, key=key) if path in GET_PATHS else api.post(path, {}, key=key)


@pytest.mark.parametrize("path", POST_PATHS + GET_PATHS)
def test_no_credential_is_401(api, path):
    response = request(api, path, key="")

    assert_openai_error(response, 401, "authentication_error")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/key/info", "/key/generate", "/team/list"])
def test_an_unknown_key_is_401(api, path):
    assert_openai_error(request(api, path, key="sk-unknown"), 401, "authentication_error")


def test_a_wrong_master_key_is_401_and_no_master_key_configured_means_no_master_access(api, settings):
    assert_openai_error(api.get("/team/list", key="sk-master-tesT"), 401, "authentication_error")

    settings.GATEWAY = {**settings.GATEWAY, "MASTER_KEY": ""}

    assert_openai_error(api.get("/team/list", key=""), 401, "authentication_error")


def test_the_key_may_come_in_azure_and_anthropic_headers(api, master_key):
    for header in ("api-key", "x-api-key"):
        assert api.client.get("/team/list", headers={header: master_key}).status_code == 200


class TestPlainKey:
    def test_it_reads_its_own_info(self, api, team_a_key):
        for params in ({}, {"key": team_a_key.secret}, {"key": team_a_key.token}):
            response = api.get("/key/info", params, key=team_a_key.secret)
            assert response.status_code == 200, response.content
            assert response.json()["key"] == team_a_key.token

    def test_it_may_not_read_another_keys_info(self, api, team_a_key):
        neighbour = key_make(team=team_a_key.key.team)

        for other in (neighbour.secret, neighbour.token, "sk-does-not-exist"):
            response = api.get("/key/info", {"key": other}, key=team_a_key.secret)
            assert_openai_error(response, 403, "permission_error")

    @pytest.mark.parametrize("path", [path for path in POST_PATHS + GET_PATHS if path != "/key/info"])
    def test_it_may_do_nothing_else(self, api, team_a_key, path):
        assert_openai_error(request(api, path, key=team_a_key.secret), 403, "permission_error")

    def test_a_management_key_without_a_team_is_a_plain_key(self, api):
        loose = key_make(key_type=VirtualKey.KeyType.MANAGEMENT)

        assert_openai_error(api.post("/key/generate", {}, key=loose.secret), 403, "permission_error")
        assert api.get("/key/info", key=loose.secret).status_code == 200


class TestManagementKey:
    """A management key of team A administers team A and nothing else."""

    def test_it_generates_keys_in_its_own_team_by_default(self, api, team_a, team_a_manager):
        response = api.post("/key/generate", {"key_alias": "new"}, key=team_a_manager.secret)

        assert response.status_code == 200, response.content
        assert response.json()["team_id"] == str(team_a.team_id)

    def test_it_manages_its_teams_keys(self, api, team_a_manager, team_a_key):
        secret = team_a_manager.secret

        assert api.get("/key/info", {"key": team_a_key.token}, key=secret).status_code == 200
        assert (
            api.post("/key/update", {"key": team_a_key.token, "max_budget": 1}, key=secret).status_code == 200
        )
        assert api.post("/key/block", {"key": team_a_key.token}, key=secret).status_code == 200
        assert api.post("/key/unblock", {"key": team_a_key.token}, key=secret).status_code == 200
        assert api.post("/key/regenerate", {"key": team_a_key.token}, key=secret).status_code == 200
        assert api.post("/key/delete", {"keys": [team_a_key.token]}, key=secret).status_code == 200

    def test_it_gets_403_on_another_teams_keys(self, api, team_a_manager, team_b_key):
        secret, other = team_a_manager.secret, team_b_key.token

        assert_openai_error(api.get("/key/info", {"key": other}, key=secret), 403, "permission_error")
        for path, body in [
            ("/key/update", {"key": other, "max_budget": 1}),
            ("/key/delete", {"keys": [other]}),
            ("/key/delete", {"key_aliases": ["b-plain"]}),
            ("/key/regenerate", {"key": other}),
            ("/key/block", {"key": other}),
            ("/key/unblock", {"key": other}),
        ]:
            assert_openai_error(api.post(path, body, key=secret), 403, "permission_error")
        assert_openai_error(api.post(f"/key/{other}/regenerate", {}, key=secret), 403, "permission_error")
        team_b_key.key.refresh_from_db()
        assert team_b_key.key.max_budget is None and not team_b_key.key.blocked

    def test_it_gets_403_not_404_for_what_does_not_exist(self, api, team_a_manager):
        secret = team_a_manager.secret

        assert_openai_error(api.get("/key/info", {"key": "sk-nope"}, key=secret), 403, "permission_error")
        assert_openai_error(api.post("/key/update", {"key": "sk-nope"}, key=secret), 403, "permission_error")
        unknown_team = "00000000-0000-0000-0000-000000000000"
        assert_openai_error(
            api.get("/team/info", {"team_id": unknown_team}, key=secret), 403, "permission_error"
        )
        assert_openai_error(
            api.post("/key/generate", {"team_id": unknown_team}, key=secret), 403, "permission_error"
        )

    def test_it_may_not_put_keys_in_another_team_or_in_none(self, api, team_a_manager, team_a_key, team_b):
        secret = team_a_manager.secret

        assert_openai_error(
            api.post("/key/generate", {"team_id": str(team_b.team_id)}, key=secret), 403, "permission_error"
        )
        for team_id in (str(team_b.team_id), None):
            response = api.post("/key/update", {"key": team_a_key.token, "team_id": team_id}, key=secret)
            assert_openai_error(response, 403, "permission_error")
        assert VirtualKey.objects.get(token=team_a_key.token).team_id == team_a_key.key.team_id

    def test_it_may_give_keys_only_to_members_of_its_team(self, api, team_a, team_b, team_a_manager):
        member_make(team=team_a, user=user_make(username="insider"))
        member_make(team=team_b, user=user_make(username="outsider"))

        inside = api.post("/key/generate", {"user_id": "insider"}, key=team_a_manager.secret)
        outside = api.post("/key/generate", {"user_id": "outsider"}, key=team_a_manager.secret)

        assert inside.status_code == 200
        assert_openai_error(outside, 403, "permission_error")

    def test_it_lists_only_its_teams_keys(self, api, team_a, team_a_manager, team_a_key, team_b, team_b_key):
        listed = api.get("/key/list", key=team_a_manager.secret).json()["keys"]

        assert sorted(listed) == sorted([team_a_manager.token, team_a_key.token])
        assert_openai_error(
            api.get("/key/list", {"team_id": str(team_b.team_id)}, key=team_a_manager.secret),
            403,
            "permission_error",
        )
        assert (
            api.get("/key/list", {"team_id": str(team_a.team_id)}, key=team_a_manager.secret).status_code
            == 200
        )

    def test_it_reads_and_lists_only_its_team(self, api, team_a, team_b, team_a_manager):
        secret = team_a_manager.secret

        assert api.get("/team/info", {"team_id": str(team_a.team_id)}, key=secret).status_code == 200
        assert_openai_error(
            api.get("/team/info", {"team_id": str(team_b.team_id)}, key=secret), 403, "permission_error"
        )
        assert [team["team_alias"] for team in api.get("/team/list", key=secret).json()] == ["team-a"]

    def test_it_may_rename_its_team_but_not_lift_its_limits(self, api, team_a, team_b, team_a_manager):
        secret = team_a_manager.secret

        renamed = api.post(
            "/team/update",
            {"team_id": str(team_a.team_id), "team_alias": "a2", "metadata": {"x": 1}},
            key=secret,
        )
        lifted = api.post("/team/update", {"team_id": str(team_a.team_id), "max_budget": 10**6}, key=secret)
        other = api.post("/team/update", {"team_id": str(team_b.team_id), "team_alias": "mine"}, key=secret)

        assert renamed.status_code == 200
        assert "max_budget" in assert_openai_error(lifted, 403, "permission_error")["message"]
        assert_openai_error(other, 403, "permission_error")
        assert Team.objects.get(pk=team_b.pk).team_alias == "team-b"

    def test_it_manages_its_teams_members_only(self, api, team_a, team_b, team_a_manager):
        member_make(team=team_a, user=user_make(username="newbie"))
        member_make(team=team_b, user=user_make(username="b-member"))
        secret = team_a_manager.secret

        promoted = api.post(
            "/team/member_update",
            {"team_id": str(team_a.team_id), "user_id": "newbie", "role": "admin"},
            key=secret,
        )
        removed = api.post(
            "/team/member_delete", {"team_id": str(team_a.team_id), "user_id": "newbie"}, key=secret
        )

        assert (promoted.status_code, removed.status_code) == (200, 200)
        b_id = str(team_b.team_id)
        for path, body in [
            ("/team/member_add", {"team_id": b_id, "member": {"user_id": "newbie"}}),
            ("/team/member_update", {"team_id": b_id, "user_id": "b-member", "role": "admin"}),
            ("/team/member_delete", {"team_id": b_id, "user_id": "b-member"}),
        ]:
            assert_openai_error(api.post(path, body, key=secret), 403, "permission_error")
        assert team_b.memberships.get().role == Membership.Role.MEMBER

    @pytest.mark.parametrize("path", GATEWAY_ADMIN_ONLY_POST + GATEWAY_ADMIN_ONLY_GET)
    def test_it_may_not_use_gateway_admin_endpoints(self, api, team_a, team_a_manager, path):
        response = request(api, path, key=team_a_manager.secret)

        assert_openai_error(response, 403, "permission_error")

    def test_it_may_not_block_its_own_team(self, api, team_a, team_a_manager):
        response = api.post("/team/block", {"team_id": str(team_a.team_id)}, key=team_a_manager.secret)

        assert_openai_error(response, 403, "permission_error")

    def test_it_is_refused_when_its_team_is_blocked(self, api, team_a, team_a_manager):
        api.post("/team/block", {"team_id": str(team_a.team_id)})

        assert_openai_error(api.get("/team/list", key=team_a_manager.secret), 401, "authentication_error")


class TestTeamAdminSession:
    """A user logged in with the admin role in team A has the scope of a management key of A."""

    def test_it_manages_its_teams_keys(self, team_a, team_a_admin_client, team_a_key):
        assert team_a_admin_client.get("/key/info", {"key": team_a_key.token}).status_code == 200
        created = team_a_admin_client.post("/key/generate", {"team_id": str(team_a.team_id)})
        assert created.status_code == 200
        assert created.json()["team_id"] == str(team_a.team_id)

    def test_it_must_name_the_team_of_a_new_key(self, team_a_admin_client):
        assert_openai_error(team_a_admin_client.post("/key/generate", {}), 403, "permission_error")

    def test_it_gets_403_on_another_team(self, team_b, team_a_admin_client, team_b_key):
        client = team_a_admin_client

        assert_openai_error(client.get("/key/info", {"key": team_b_key.token}), 403, "permission_error")
        assert_openai_error(
            client.post("/key/update", {"key": team_b_key.token, "rpm_limit": 1}), 403, "permission_error"
        )
        assert_openai_error(client.post("/key/delete", {"keys": [team_b_key.token]}), 403, "permission_error")
        assert_openai_error(
            client.get("/team/info", {"team_id": str(team_b.team_id)}), 403, "permission_error"
        )
        assert_openai_error(
            client.post("/team/update", {"team_id": str(team_b.team_id)}), 403, "permission_error"
        )
        assert_openai_error(
            client.post("/team/delete", {"team_ids": [str(team_b.team_id)]}), 403, "permission_error"
        )

    def test_it_lists_only_its_team(self, team_a, team_b, team_a_admin_client):
        assert [team["team_alias"] for team in team_a_admin_client.get("/team/list").json()] == ["team-a"]

    @pytest.mark.parametrize("path", GATEWAY_ADMIN_ONLY_POST + GATEWAY_ADMIN_ONLY_GET)
    def test_it_may_not_use_gateway_admin_endpoints(self, team_a_admin_client, path):
        assert_openai_error(request(team_a_admin_client, path), 403, "permission_error")

    def test_a_plain_member_session_may_do_nothing(self, team_a):
        user = user_make(username="member")
        member_make(team=team_a, user=user, role=Membership.Role.MEMBER)
        client = Client()
        client.force_login(user)
        api = Api(client, default_key="")

        assert_openai_error(api.get("/team/list"), 403, "permission_error")
        assert_openai_error(api.get("/key/info", {"key": "sk-anything"}), 403, "permission_error")

    def test_a_session_post_without_a_csrf_token_is_refused(self, team_a, team_a_admin_client):
        client = Client(enforce_csrf_checks=True)
        client.force_login(team_a.memberships.get().user)

        response = Api(client, default_key="").post("/key/generate", {"team_id": str(team_a.team_id)})

        assert "CSRF" in assert_openai_error(response, 403, "permission_error")["message"]
        assert not VirtualKey.objects.exists()


class TestGatewayAdmins:
    def test_a_superuser_session_may_do_everything(self, superuser_client):
        team = superuser_client.post("/team/new", {"team_alias": "root-team"})
        key = superuser_client.post("/key/generate", {})

        assert team.status_code == 200 and key.status_code == 200
        assert superuser_client.get("/user/list").status_code == 200
        assert superuser_client.get("/model/info").status_code == 200

    def test_a_staff_user_who_is_not_a_superuser_is_no_gateway_admin(self, db):
        staff = user_make(username="staff")
        staff.is_staff = True
        staff.save()
        client = Client()
        client.force_login(staff)

        assert_openai_error(Api(client, default_key="").get("/team/list"), 403, "permission_error")

    def test_the_master_key_sees_every_team(self, api, team_a, team_b):
        assert [team["team_alias"] for team in api.get("/team/list").json()] == ["team-a", "team-b"]

    def test_a_key_of_another_team_is_still_found_by_the_master_key(self, api):
        other = key_make(team=team_make())

        assert api.get("/key/info", {"key": other.token}).status_code == 200
