"""Who may do what in the management API.

- Gateway admins (the master key, a superuser logged in to the admin) may do everything.
- Team admins (a ``management`` key that belongs to a team; a logged-in user with the admin role in
  a team) manage their own teams only: the teams' keys (generate, update, delete, regenerate, block,
  info, list), members (add, update, delete) and ``/team/info`` and ``/team/list``; on ``/team/update``
  only the team's alias and metadata; their teams' customers (``/customer/*``). Creating, deleting,
  blocking teams, and users and models are for gateway admins.
- Any valid key may read ``/key/info`` about itself.

Anything outside a caller's teams is refused with 403, whether it exists or not, so a team admin
cannot probe for other teams' ids. Missing or invalid credentials are 401.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from llm_gateway.apis.management.authentication import ManagementCaller
from llm_gateway.models import Membership, Team, VirtualKey


def caller_of(request: Request) -> ManagementCaller | None:
    """Return the management caller of a request, or None when it is not authenticated."""
    return request.user if isinstance(request.user, ManagementCaller) else None


def _team_id_of(obj: object):
    if isinstance(obj, Team):
        return obj.team_id
    if isinstance(obj, VirtualKey | Membership):
        return obj.team_id
    return None


def team_admin_may_manage(caller: ManagementCaller, obj: object) -> bool:
    """Return True if a team admin may act on ``obj``: a team, key or membership of their teams,
    or a user who is a member of one of them."""
    if isinstance(obj, AbstractBaseUser):
        return Membership.objects.filter(user=obj, team_id__in=caller.team_ids).exists()
    team_id = _team_id_of(obj)
    return team_id is not None and team_id in caller.team_ids


class IsGatewayAdmin(BasePermission):
    """Allow the master key and superusers logged in to the admin."""

    message = "This endpoint needs the master key or an admin login."

    def has_permission(self, request: Request, view: APIView) -> bool:
        caller = caller_of(request)
        return caller is not None and caller.is_admin


class IsTeamAdmin(BasePermission):
    """Allow gateway admins, and team admins on what belongs to their own teams."""

    message = "This endpoint needs the master key, an admin login, or a management key of the team."
    object_message = "You can only manage your own team: this belongs to another team."

    def has_permission(self, request: Request, view: APIView) -> bool:
        caller = caller_of(request)
        return caller is not None and (caller.is_admin or bool(caller.team_ids))

    def has_object_permission(self, request: Request, view: APIView, obj: object) -> bool:
        caller = caller_of(request)
        if caller is not None and caller.is_admin:
            return True
        self.message = self.object_message
        return caller is not None and team_admin_may_manage(caller, obj)


class IsTeamAdminForFields(IsTeamAdmin):
    """Like IsTeamAdmin, but a team admin may only send the fields in ``view.team_admin_fields``."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not super().has_permission(request, view):
            return False
        caller = caller_of(request)
        if caller.is_admin or not isinstance(request.data, dict):
            return True
        refused = sorted(set(request.data) - set(view.team_admin_fields))
        if refused:
            self.message = f"Only a gateway admin may change {', '.join(refused)}."
            return False
        return True


class IsKeyHolderOrTeamAdmin(IsTeamAdmin):
    """Allow any valid key to act on itself, plus what IsTeamAdmin allows."""

    object_message = "You may only read your own key, or the keys of a team you administer."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return caller_of(request) is not None

    def has_object_permission(self, request: Request, view: APIView, obj: object) -> bool:
        caller = caller_of(request)
        if caller is not None and caller.key is not None and caller.key.pk == getattr(obj, "pk", None):
            return isinstance(obj, VirtualKey)
        return super().has_object_permission(request, view, obj)
