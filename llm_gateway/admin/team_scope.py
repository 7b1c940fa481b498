"""Team admins: a staff user with an admin membership manages their own teams' rows.

Superusers, and staff users holding Django's model permissions, act on every row as Django's admin
has them do. On top of that, a team admin (any staff user with ``Membership.Role.ADMIN`` in a team)
acts on the rows of the teams they administer, with no model permission at all. The grant lives in
the ModelAdmin hooks (``get_queryset``, ``get_object`` and ``has_*_permission``), so it holds for
every URL and form post, not only for the links the admin happens to show.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RelatedDropdownFilter

from llm_gateway.selectors import team_ids_administered

_CACHE_ATTRIBUTE = "_llm_gateway_administered_team_ids"


def administered_team_ids(request: HttpRequest) -> set:
    """Return the ids of the teams the requesting user administers (looked up once per request)."""
    team_ids = getattr(request, _CACHE_ATTRIBUTE, None)
    if team_ids is None:
        user = request.user
        # unfold builds its sidebar on the login page too, for an anonymous user.
        is_eligible = user.is_authenticated and user.is_active and user.is_staff
        team_ids = team_ids_administered(user=user) if is_eligible else set()
        setattr(request, _CACHE_ATTRIBUTE, team_ids)
    return team_ids


def has_model_permission(request: HttpRequest, model: type[Model], action: str) -> bool:
    """Return True if the user holds Django's ``action`` permission on every row of ``model``."""
    opts = model._meta
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")


class TeamScopedAdmin(ModelAdmin):
    """A ModelAdmin over rows that belong to a team, opened up to that team's admins."""

    # Whether a team admin may create and delete these rows (keys: yes; teams themselves: no).
    team_admin_may_add = True
    team_admin_may_delete = True

    def team_id_of(self, obj: Model) -> Any:
        """Return the id of the team ``obj`` belongs to."""
        raise NotImplementedError

    def team_queryset(self, request: HttpRequest) -> QuerySet:
        """Return the rows of the teams the user administers."""
        raise NotImplementedError

    def is_team_scoped(self, request: HttpRequest) -> bool:
        """Return True if the user reaches these rows only as a team admin, not by model permissions."""
        return not has_model_permission(request, self.model, "change")

    def administers(self, request: HttpRequest, obj: Model | None = None) -> bool:
        """Return True if the user administers ``obj``'s team (any team when ``obj`` is None)."""
        team_ids = administered_team_ids(request)
        if obj is None:
            return bool(team_ids)
        return self.team_id_of(obj) in team_ids

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        if has_model_permission(request, self.model, "view") or has_model_permission(
            request, self.model, "change"
        ):
            return super().get_queryset(request)
        rows = self.team_queryset(request)
        ordering = self.get_ordering(request)
        return rows.order_by(*ordering) if ordering else rows

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Model:
        # Django redirects to the index for a row outside get_queryset(); answer 404 instead, the same
        # for another team's row as for a missing one, so neither a GET nor a POST learns it exists.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with this id.")
        return obj

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or self.administers(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_view_permission(request, obj) or self.administers(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_change_permission(request, obj) or self.administers(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) or (self.team_admin_may_add and self.administers(request))

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_delete_permission(request, obj) or (
            self.team_admin_may_delete and self.administers(request, obj)
        )


class RelatedOnlyDropdownFilter(RelatedDropdownFilter, admin.RelatedOnlyFieldListFilter):
    """Unfold's related dropdown, offering only the related rows in the user's changelist.

    Django's plain related filter lists every team, which would show a team admin the other teams.
    """
