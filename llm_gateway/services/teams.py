"""Write teams and their memberships."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from llm_gateway.budget_durations import next_reset
from llm_gateway.models import Membership, Team
from llm_gateway.services.fields import BUDGET_SETTINGS, fields_check

# Fields a caller may set on a team (LiteLLM's /team/new names).
TEAM_FIELDS = frozenset({"team_alias", "models", "model_aliases"}) | BUDGET_SETTINGS


def _budget_reset_schedule(team: Team, *, duration_changed: bool) -> None:
    """Start the budget period now when a duration is set or changed (LiteLLM does the same)."""
    if duration_changed:
        team.budget_reset_at = next_reset(team.budget_duration, timezone.now())


@transaction.atomic
def team_create(
    *,
    team_id: uuid.UUID | None = None,
    members: Sequence[tuple[AbstractBaseUser, str]] = (),
    **fields: Any,
) -> Team:
    """Create a team, with its first members as ``(user, role)`` pairs."""
    fields_check(fields, allowed=TEAM_FIELDS, entity="team")
    team = Team(**fields) if team_id is None else Team(team_id=team_id, **fields)
    if team_id is not None and Team.objects.filter(team_id=team_id).exists():
        raise ValidationError({"team_id": f"A team with id {team_id} already exists."})
    _budget_reset_schedule(team, duration_changed=bool(team.budget_duration))
    team.full_clean()
    team.save(force_insert=True)
    memberships_add(team=team, members=members)
    return team


@transaction.atomic
def team_update(*, team: Team, **fields: Any) -> Team:
    """Change a team's settings (members change through ``membership_*``)."""
    fields_check(fields, allowed=TEAM_FIELDS, entity="team")
    duration_changed = "budget_duration" in fields and fields["budget_duration"] != team.budget_duration
    for name, value in fields.items():
        setattr(team, name, value)
    _budget_reset_schedule(team, duration_changed=duration_changed)
    team.full_clean()
    team.save()
    return team


@transaction.atomic
def team_delete(*, teams: Iterable[Team]) -> list[str]:
    """Delete teams with their keys and memberships; return the deleted team ids."""
    deleted = []
    for team in teams:
        deleted.append(str(team.team_id))
        team.delete()
    return deleted


def team_block(*, team: Team, blocked: bool = True) -> Team:
    """Block (or unblock) a team: every key of a blocked team is refused with 401."""
    team.blocked = blocked
    team.save(update_fields=["blocked", "updated_at"])
    return team


@transaction.atomic
def membership_add(*, team: Team, user: AbstractBaseUser, role: str = Membership.Role.MEMBER) -> Membership:
    """Make ``user`` a member of ``team`` with ``role``."""
    if Membership.objects.filter(team=team, user=user).exists():
        raise ValidationError({"member": f"User {user.get_username()!r} is already a member of this team."})
    membership = Membership(team=team, user=user, role=role)
    membership.full_clean()
    membership.save()
    return membership


@transaction.atomic
def memberships_add(*, team: Team, members: Sequence[tuple[AbstractBaseUser, str]]) -> list[Membership]:
    """Add several ``(user, role)`` members to ``team``: all of them, or none when one fails."""
    return [membership_add(team=team, user=user, role=role) for user, role in members]


def membership_update(*, membership: Membership, role: str) -> Membership:
    """Give a member another role in their team."""
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role"])
    return membership


def membership_delete(*, membership: Membership) -> None:
    """Remove a member from their team (their keys in the team stay, owned by the team)."""
    membership.delete()
