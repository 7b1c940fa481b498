"""Whose spend a caller of the spend APIs may read, and the filters that narrow it.

The management API's credentials apply (billing reuses its authentication and permission classes):

- gateway admins (the master key, a superuser's admin session) read everything;
- team admins (a team's management key, a user with the admin role) read their teams' rows;
- a plain virtual key reads its own rows only; a logged-in user without an admin role, their own.

A filter naming a team or key outside the caller's scope is refused with 403, whether it exists or
not, as the management API does; a filter that merely matches nothing of theirs gives no rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError

from billing.selectors import user_ledger_id
from llm_gateway.apis.management.authentication import ManagementCaller
from llm_gateway.apis.management.permissions import IsTeamAdmin
from llm_gateway.apis.management.views import ManagementView
from llm_gateway.selectors import virtual_key_get


@dataclass(frozen=True)
class SpendScope:
    """The ledger and rollup rows a caller may read: all of them, some teams', one key's, one user's."""

    team_ids: frozenset[str] | None = None  # None: every team
    key_token: str | None = None
    user_id: str | None = None  # the ledger's user id

    def selector_filters(self) -> dict[str, Any]:
        """Return the scope as keyword arguments of the billing selectors."""
        filters: dict[str, Any] = {"team_ids": self.team_ids}
        if self.key_token is not None:
            filters["key_token"] = self.key_token
        if self.user_id is not None:
            filters["user_id"] = self.user_id
        return filters


def spend_scope(caller: ManagementCaller) -> SpendScope:
    """Return what ``caller`` may read."""
    if caller.is_admin:
        return SpendScope()
    if caller.team_ids:
        return SpendScope(team_ids=frozenset(str(team_id) for team_id in caller.team_ids))
    if caller.key is not None:
        return SpendScope(key_token=str(caller.key.token))
    return SpendScope(user_id=str(caller.user.pk))


class SpendView(ManagementView):
    """A spend endpoint: the caller's scope, and filters by key, team and user checked against it."""

    @property
    def scope(self) -> SpendScope:
        return spend_scope(self.caller)

    def key_token_filter(self, key: str) -> str:
        """Return the token of the key named by its secret or token, if the caller may read its rows."""
        found = virtual_key_get(key=key)
        if found is not None:
            self.check_object_permissions(self.request, found)
            return str(found.token)
        token = _uuid_text(key)
        if self.caller.is_admin and token is not None:
            return token  # a deleted key: its ledger rows and rollups outlive it
        if self.caller.is_admin:
            raise NotFound("Key not found.")
        raise PermissionDenied(IsTeamAdmin.object_message)

    def team_ids_filter(self, team_ids: list[str], param: str = "team_id") -> frozenset[str]:
        """Return the named teams' ids, if the caller administers them all (gateway admins: any id)."""
        parsed = set()
        for team_id in team_ids:
            text = _uuid_text(team_id)
            if text is None:
                raise ValidationError({param: f"{team_id!r} is not a team id."})
            if not self.caller.is_admin and uuid.UUID(text) not in self.caller.team_ids:
                raise PermissionDenied(IsTeamAdmin.object_message)
            parsed.add(text)
        return frozenset(parsed)

    def user_id_filter(self, username: str) -> str:
        """Return the ledger's id of the user ``username``; others than admins and team admins may
        only name themselves (the owner of their key, or the logged-in user)."""
        caller = self.caller
        if not caller.is_admin and not caller.team_ids:
            own = caller.key.user if caller.key is not None else caller.user
            if own is None or own.get_username() != username:
                raise PermissionDenied("You may only read your own spend.")
        user_id = user_ledger_id(username=username)
        if user_id is None:
            if caller.is_admin:
                raise NotFound(f"User {username!r} not found.")
            raise PermissionDenied("You may only read the spend of your teams' members.")
        return user_id


def _uuid_text(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
