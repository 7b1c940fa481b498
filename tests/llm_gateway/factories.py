"""Factories for the gateway's nouns, written through the services where the services exist."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser

from llm_gateway.models import Deployment, EndUser, Membership, Team, VirtualKey
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create

PASSWORD = "correct-horse-battery"
_numbers = itertools.count(1)


def user_make(*, username: str | None = None, staff: bool = False, superuser: bool = False) -> AbstractUser:
    """Create a user whose password is PASSWORD."""
    return get_user_model().objects.create_user(
        username=username or f"user{next(_numbers)}",
        password=PASSWORD,
        is_staff=staff or superuser,
        is_superuser=superuser,
    )


def team_make(*, team_alias: str | None = None, **fields: Any) -> Team:
    """Create a team (teams have no service yet: the admin and the API write them directly)."""
    return Team.objects.create(team_alias=team_alias or f"team-{next(_numbers)}", **fields)


def membership_make(*, user: AbstractUser, team: Team, role: str = Membership.Role.MEMBER) -> Membership:
    """Put ``user`` in ``team`` with ``role``."""
    return Membership.objects.create(user=user, team=team, role=role)


def team_admin_make(*, team: Team, username: str | None = None) -> AbstractUser:
    """Create a staff user who is a team admin of ``team`` and holds no model permission."""
    user = user_make(username=username, staff=True)
    membership_make(user=user, team=team, role=Membership.Role.ADMIN)
    return user


def key_make(**fields: Any) -> tuple[VirtualKey, str]:
    """Create a virtual key through the service; return it with its secret."""
    fields.setdefault("key_alias", f"key-{next(_numbers)}")
    return virtual_key_create(**fields)


def deployment_make(**fields: Any) -> Deployment:
    """Create an OpenAI deployment through the service (``api_key=`` is encrypted there)."""
    fields.setdefault("model_name", "gpt-4o")
    fields.setdefault("provider", "openai")
    fields.setdefault("model", "gpt-4o")
    return deployment_create(**fields)


def end_user_make(**fields: Any) -> EndUser:
    """Create an end user (the OpenAI ``user`` field's caller)."""
    fields.setdefault("user_id", f"customer-{next(_numbers)}")
    return EndUser.objects.create(**fields)
