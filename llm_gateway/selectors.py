"""Read the gateway's nouns: who administers which team, which keys a user may see."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from llm_gateway.models import Membership, Team, VirtualKey


def team_ids_administered(*, user: AbstractBaseUser) -> set:
    """Return the ids of the teams ``user`` is a team admin of."""
    return set(
        Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values_list("team_id", flat=True)
    )


def team_list_visible(*, user: AbstractBaseUser) -> QuerySet[Team]:
    """Return the teams a user may see: all for superusers, else the teams they belong to."""
    if user.is_superuser:
        return Team.objects.all()
    return Team.objects.filter(memberships__user=user).distinct()


def virtual_key_list_manageable(*, user: AbstractBaseUser) -> QuerySet[VirtualKey]:
    """Return the keys a user may manage: all for superusers, else their admin teams' keys."""
    keys = VirtualKey.objects.select_related("team", "user")
    if user.is_superuser:
        return keys
    return keys.filter(team_id__in=team_ids_administered(user=user))
