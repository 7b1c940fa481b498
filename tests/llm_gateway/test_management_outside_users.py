"""A team admin names only users who share one of their teams; anyone else is one and the same 403.

A key owned by a user spends that user's own budget, so a team admin who could enlist another team's
user (or the superuser) in their team, or make them own a key, would spend another tenant's money.
The answer must not tell whether the name exists, nor return anything about the user.
"""

import pytest
from django.test import Client

from llm_gateway.models import Membership, VirtualKey
from tests.llm_gateway.management_factories import (
    Api,
    assert_openai_error,
    member_make,
    team_make,
    user_make,
)

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db

OUTSIDERS = ["b-member", "root", "ghost"]
OUTSIDER_EMAILS = ["b-member@b.example", "root@gateway.example", "ghost@nowhere.example"]


@pytest.fixture
def outsiders(team_b):
    """Another team's member and the superuser; "ghost" does not exist."""
    member_make(team=team_b, user=user_make(username="b-member", email="b-member@b.example"))
    user_make(username="root", email="root@gateway.example", is_admin=True)


@pytest.fixture(params=["management key", "session"])
def team_admin(request, api, team_a, team_a_manager) -> Api:
    """A team admin of team A only: its management key, or a logged-in user with the admin role."""
    if request.param == "management key":
        return Api(api.client, team_a_manager.secret)
    user = user_make(username="alice")
    member_make(team=team_a, user=user, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return Api(client, default_key="")


def refusals(responses) -> dict:
    """Assert every response is the same 403 and return its body."""
    bodies = []
    for response in responses:
        assert_openai_error(response, 403, "permission_error")
        bodies.append(response.json())
    assert all(body == bodies[0] for body in bodies), bodies
    for name in OUTSIDERS + OUTSIDER_EMAILS:
        assert name not in str(bodies[0]), bodies[0]
    return bodies[0]


def test_it_refuses_to_add_an_outsider_to_its_team_whoever_they_are(team_admin, team_a, outsiders):
    team_id = str(team_a.team_id)

    by_name = [
        team_admin.post("/team/member_add", {"team_id": team_id, "member": {"user_id": name}})
        for name in OUTSIDERS
    ]
    by_email = [
        team_admin.post("/team/member_add", {"team_id": team_id, "member": {"user_email": email}})
        for email in OUTSIDER_EMAILS
    ]

    assert refusals(by_name + by_email)["error"]["message"]
    assert not team_a.memberships.filter(user__username__in=OUTSIDERS).exists()


@pytest.mark.parametrize("path", ["/team/member_update", "/team/member_delete"])
def test_it_refuses_to_change_an_outsiders_membership_whoever_they_are(team_admin, team_a, outsiders, path):
    role = {"role": "admin"} if path == "/team/member_update" else {}
    responses = [
        team_admin.post(path, {"team_id": str(team_a.team_id), "user_id": name, **role}) for name in OUTSIDERS
    ]

    refusals(responses)


@pytest.mark.parametrize("path", ["/user/info", "/user/list"])
def test_it_may_not_read_users_whoever_they_are(team_admin, outsiders, path):
    parameter = "user_id" if path == "/user/info" else "user_ids"

    refusals([team_admin.get(path, {parameter: name}) for name in OUTSIDERS])


def test_it_may_not_give_a_key_to_an_outsider_whoever_they_are(team_admin, team_a, outsiders):
    team_id = str(team_a.team_id)

    responses = [
        team_admin.post("/key/generate", {"team_id": team_id, "user_id": name}) for name in OUTSIDERS
    ]

    refusals(responses)
    assert not VirtualKey.objects.filter(user__username__in=OUTSIDERS).exists()


def test_it_may_not_hand_a_key_over_to_an_outsider_whoever_they_are(team_admin, team_a_key, outsiders):
    responses = [
        team_admin.post("/key/update", {"key": team_a_key.token, "user_id": name}) for name in OUTSIDERS
    ]

    refusals(responses)
    team_a_key.key.refresh_from_db()
    assert team_a_key.key.user is None


def test_the_refusals_of_every_endpoint_are_one_answer(team_admin, team_a, team_a_key, outsiders):
    team_id = str(team_a.team_id)

    refusals(
        [
            team_admin.post("/team/member_add", {"team_id": team_id, "member": {"user_id": "ghost"}}),
            team_admin.post("/team/member_update", {"team_id": team_id, "user_id": "root", "role": "admin"}),
            team_admin.post("/key/generate", {"team_id": team_id, "user_id": "b-member"}),
            team_admin.post("/key/update", {"key": team_a_key.token, "user_id": "ghost"}),
        ]
    )


def test_a_session_admin_of_two_teams_may_add_a_member_of_one_to_the_other(api, team_a, outsiders):
    team_c = team_make(team_alias="team-c")
    user = user_make(username="carol")
    member_make(team=team_a, user=user, role=Membership.Role.ADMIN)
    member_make(team=team_c, user=user, role=Membership.Role.ADMIN)
    member_make(team=team_c, user=user_make(username="c-member", email="c@c.example"))
    client = Client()
    client.force_login(user)

    response = Api(client, default_key="").post(
        "/team/member_add", {"team_id": str(team_a.team_id), "member": {"user_id": "c-member"}}
    )

    assert response.status_code == 200, response.content
    assert response.json()["updated_users"] == [{"user_id": "c-member", "user_email": "c@c.example"}]


def test_a_management_key_manages_the_members_its_team_has(api, team_a, team_a_manager, outsiders):
    member_make(team=team_a, user=user_make(username="insider"))
    manager = Api(api.client, team_a_manager.secret)
    team_id = str(team_a.team_id)

    promoted = manager.post(
        "/team/member_update", {"team_id": team_id, "user_id": "insider", "role": "admin"}
    )
    removed = manager.post("/team/member_delete", {"team_id": team_id, "user_id": "insider"})
    # Once removed, the user shares no team with this key: adding them back is for a gateway admin.
    readded = manager.post("/team/member_add", {"team_id": team_id, "member": {"user_id": "insider"}})

    assert (promoted.status_code, removed.status_code) == (200, 200)
    refusals([readded])


def test_the_master_key_still_adds_anyone_and_learns_who_is_missing(api, team_a, outsiders):
    team_id = str(team_a.team_id)

    for name in ("b-member", "root"):
        added = api.post("/team/member_add", {"team_id": team_id, "member": {"user_id": name}})
        assert added.status_code == 200, added.content
    missing = api.post("/team/member_add", {"team_id": team_id, "member": {"user_id": "ghost"}})

    assert_openai_error(missing, 404, "not_found_error")
    assert set(team_a.memberships.values_list("user__username", flat=True)) == {"b-member", "root"}
