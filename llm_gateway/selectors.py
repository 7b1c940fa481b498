"""Read the gateway's nouns: who administers which team, which keys a user may see, deployments' health."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from llm_gateway.crypto import virtual_key_hash
from llm_gateway.end_user_scopes import EndUserScope
from llm_gateway.models import Deployment, DeploymentHealthCheck, EndUser, Membership, Team, VirtualKey


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


def _uuid_or_none(value: str | uuid.UUID | None) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def virtual_key_get_by_secret(*, secret: str) -> VirtualKey | None:
    """Return the key whose secret this is, with its team, or None."""
    keys = VirtualKey.objects.select_related("team", "user__budget")
    return keys.filter(key_hash=virtual_key_hash(secret)).first()


def virtual_key_get(*, key: str) -> VirtualKey | None:
    """Return a key named by its secret (``sk-...``) or by its id (``token``), or None."""
    token = _uuid_or_none(key)
    if token is None:
        return virtual_key_get_by_secret(secret=key)
    return VirtualKey.objects.select_related("team", "user").filter(token=token).first()


def virtual_key_list(
    *,
    team_ids: Iterable | None = None,
    team_id: str | None = None,
    user_id: str | None = None,
    key_alias: str | None = None,
) -> QuerySet[VirtualKey]:
    """Return keys, newest first: within ``team_ids`` when given, filtered by team, owner and alias."""
    keys = VirtualKey.objects.select_related("team", "user").order_by("-created_at", "token")
    if team_ids is not None:
        keys = keys.filter(team_id__in=list(team_ids))
    if team_id is not None:
        team_uuid = _uuid_or_none(team_id)
        keys = keys.filter(team_id=team_uuid) if team_uuid else keys.none()
    if user_id is not None:
        keys = keys.filter(user__username=user_id)
    if key_alias is not None:
        keys = keys.filter(key_alias=key_alias)
    return keys


def team_get(*, team_id: str | uuid.UUID) -> Team | None:
    """Return the team with this id, or None (also for a malformed id)."""
    team_uuid = _uuid_or_none(team_id)
    return Team.objects.filter(team_id=team_uuid).first() if team_uuid else None


def team_list(*, team_ids: Iterable | None = None, user_id: str | None = None) -> QuerySet[Team]:
    """Return teams by alias: within ``team_ids`` when given, and those ``user_id`` belongs to."""
    teams = Team.objects.prefetch_related("memberships__user").order_by("team_alias")
    if team_ids is not None:
        teams = teams.filter(team_id__in=list(team_ids))
    if user_id is not None:
        teams = teams.filter(memberships__user__username=user_id).distinct()
    return teams


def membership_get(*, team: Team, user: AbstractBaseUser) -> Membership | None:
    """Return ``user``'s membership of ``team``, or None."""
    return Membership.objects.select_related("team", "user").filter(team=team, user=user).first()


def user_get(*, user_id: str | None = None, user_email: str | None = None) -> AbstractBaseUser | None:
    """Return the user named by ``user_id`` (the username) or else by ``user_email``, or None."""
    users = get_user_model().objects.all()
    if user_id:
        return users.filter(username=user_id).first()
    if user_email:
        return users.filter(email__iexact=user_email).order_by("pk").first()
    return None


def user_list(*, user_ids: Iterable[str] | None = None, role: str | None = None) -> QuerySet:
    """Return users by username, optionally only these usernames or only (non-)superusers."""
    users = get_user_model().objects.prefetch_related("memberships").order_by("username")
    if user_ids is not None:
        users = users.filter(username__in=list(user_ids))
    if role is not None:
        users = users.filter(is_superuser=role == "proxy_admin")
    return users


def end_user_get(*, scope: EndUserScope, user_id: str) -> EndUser | None:
    """Return ``scope``'s end user (LiteLLM's customer) with this id, or None."""
    return EndUser.objects.select_related("team", "owner").filter(**scope.filters, user_id=user_id).first()


def end_user_list(
    *, scope: EndUserScope | None, team_ids: Iterable | None = None, user_ids: Iterable[str] | None = None
) -> QuerySet[EndUser]:
    """Return ``scope``'s end users (every scope's for None) by id: only those of ``team_ids`` and
    only these ``user_ids`` when given."""
    end_users = EndUser.objects.select_related("team", "owner").order_by("user_id", "id")
    if scope is not None:
        end_users = end_users.filter(**scope.filters)
    if team_ids is not None:
        end_users = end_users.filter(team_id__in=list(team_ids))
    if user_ids is not None:
        end_users = end_users.filter(user_id__in=list(user_ids))
    return end_users


def deployment_get(*, model_id: str) -> Deployment | None:
    """Return the deployment with this ``model_info.id``, or None."""
    return Deployment.objects.filter(model_id=model_id).first()


def deployment_list(*, model_id: str | None = None) -> QuerySet[Deployment]:
    """Return deployments by model name and priority, optionally only the one with ``model_id``."""
    deployments = Deployment.objects.all()
    if model_id is not None:
        deployments = deployments.filter(model_id=model_id)
    return deployments


def deployment_health_list(*, model_name: str | None = None) -> QuerySet[Deployment]:
    """Return the enabled deployments with their latest health check, optionally of one model group."""
    deployments = Deployment.objects.filter(enabled=True).order_by("model_name", "order", "model_id")
    if model_name is not None:
        deployments = deployments.filter(model_name=model_name)
    return deployments


def deployment_health_history(*, deployment_id: int, limit: int) -> QuerySet[DeploymentHealthCheck]:
    """Return a deployment's latest ``limit`` health checks, newest first.

    The queryset is not sliced, so callers may filter it further (the admin's inline formset does).
    """
    latest = DeploymentHealthCheck.objects.filter(deployment_id=deployment_id).order_by("-checked_at")
    return DeploymentHealthCheck.objects.filter(
        pk__in=list(latest.values_list("pk", flat=True)[:limit])
    ).order_by("-checked_at")
