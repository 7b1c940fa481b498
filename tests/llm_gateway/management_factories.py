"""Factories and fixtures for the management API tests.

Factories are small functions over the services, so test data is made the way the API makes it.
Test modules load the fixtures with ``pytest_plugins = ["tests.llm_gateway.management_factories"]``
after importing the factories, too late for pytest to rewrite this module's asserts; PYTEST_DONT_REWRITE
says so (the assert helpers below carry their own messages).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from django.test import Client

from llm_gateway.models import Deployment, EndUser, Membership, Team, VirtualKey
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.end_users import end_user_create
from llm_gateway.services.keys import virtual_key_create
from llm_gateway.services.teams import membership_add, team_create
from llm_gateway.services.users import user_create

MASTER_KEY = "sk-master-test"
UPSTREAM_SECRET = "sk-upstream-secret-do-not-leak"

_sequence = itertools.count(1)


@dataclass(frozen=True)
class IssuedKey:
    """A key and its secret, as /key/generate hands them out."""

    key: VirtualKey
    secret: str

    @property
    def token(self) -> str:
        return str(self.key.token)


def team_make(**fields: Any) -> Team:
    """Create a team (alias ``team-<n>`` unless given)."""
    fields.setdefault("team_alias", f"team-{next(_sequence)}")
    return team_create(**fields)


def user_make(*, username: str | None = None, password: str | None = None, is_admin: bool = False, **fields):
    """Create a user (no key)."""
    user, _key, _secret = user_create(
        username=username or f"user-{next(_sequence)}", password=password, is_admin=is_admin, **fields
    )
    return user


def member_make(*, team: Team, user=None, role: str = Membership.Role.MEMBER) -> Membership:
    """Add a user (a new one unless given) to a team."""
    return membership_add(team=team, user=user or user_make(), role=role)


def key_make(**fields: Any) -> IssuedKey:
    """Create a key and keep its secret."""
    key, secret = virtual_key_create(**fields)
    return IssuedKey(key, secret)


def end_user_make(**fields: Any) -> EndUser:
    """Create an end user (LiteLLM's customer)."""
    fields.setdefault("user_id", f"customer-{next(_sequence)}")
    return end_user_create(**fields)


def deployment_make(**fields: Any) -> Deployment:
    """Create an OpenAI deployment of gpt-4o with a stored credential, unless told otherwise."""
    fields = {
        "model_name": "gpt-4o",
        "provider": "openai",
        "model": "gpt-4o",
        "api_key": UPSTREAM_SECRET,
    } | fields
    return deployment_create(**fields)


class Api:
    """A test client speaking JSON to the management API with a bearer key."""

    def __init__(self, client: Client, default_key: str | None) -> None:
        self.client = client
        self.default_key = default_key

    def _headers(self, key: str | None) -> dict[str, str]:
        key = self.default_key if key is None else key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def post(self, path: str, body: Any = None, *, key: str | None = None, raw: bytes | None = None):
        """POST ``body`` as JSON (or ``raw`` bytes); ``key=""`` sends no credential."""
        data = raw if raw is not None else orjson.dumps(body if body is not None else {})
        return self.client.post(path, data, content_type="application/json", headers=self._headers(key))

    def get(self, path: str, params: dict | None = None, *, key: str | None = None):
        """GET with query ``params``; ``key=""`` sends no credential."""
        return self.client.get(path, params or {}, headers=self._headers(key))


def assert_openai_error(response, status: int, error_type: str, param: str | None = None) -> dict:
    """Assert an error response in OpenAI's shape and return its ``error`` object."""
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["type"] == error_type and body["error"]["message"], body
    assert param is None or body["error"]["param"] == param, body
    return body["error"]


@pytest.fixture
def master_key(settings) -> str:
    """Turn master-key access on with a known key."""
    settings.GATEWAY = {**settings.GATEWAY, "MASTER_KEY": MASTER_KEY}
    return MASTER_KEY


@pytest.fixture
def api(db, master_key: str, client: Client) -> Api:
    """Return a JSON client that calls with the master key unless told another key."""
    return Api(client, master_key)


@pytest.fixture
def team_a(db) -> Team:
    return team_make(team_alias="team-a")


@pytest.fixture
def team_b(db) -> Team:
    return team_make(team_alias="team-b")


@pytest.fixture
def team_a_manager(team_a: Team) -> IssuedKey:
    """A management key of team A: a team admin of A."""
    return key_make(team=team_a, key_type=VirtualKey.KeyType.MANAGEMENT, key_alias="a-manager")


@pytest.fixture
def team_a_key(team_a: Team) -> IssuedKey:
    """A plain (inference) key of team A."""
    return key_make(team=team_a, key_alias="a-plain")


@pytest.fixture
def team_b_key(team_b: Team) -> IssuedKey:
    """A plain key of team B."""
    return key_make(team=team_b, key_alias="b-plain")


@pytest.fixture
def team_a_admin_client(team_a: Team) -> Api:
    """A client logged in (session) as a user who is a team admin of A only."""
    user = user_make(username="alice")
    member_make(team=team_a, user=user, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return Api(client, default_key="")


@pytest.fixture
def superuser_client(db) -> Api:
    """A client logged in (session) as a superuser."""
    client = Client()
    client.force_login(user_make(username="root", is_admin=True))
    return Api(client, default_key="")
