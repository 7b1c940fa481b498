"""The base of every management view: who may call, how bodies and queries are read, how targets are found.

Every answer carries ``Cache-Control: no-store``: some hold a key's secret (/key/generate,
/key/regenerate, /user/new), all hold one caller's view of the gateway, and none may be kept by a
browser or a proxy.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.utils.cache import add_never_cache_headers
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from llm_gateway.apis.management.authentication import (
    AdminSessionAuthentication,
    GatewayKeyAuthentication,
    ManagementCaller,
)
from llm_gateway.apis.management.permissions import IsGatewayAdmin, team_admin_may_manage
from llm_gateway.selectors import user_get

Target = TypeVar("Target")

# The one answer a team admin gets for any user outside their teams, whether the user exists or not.
USER_OUTSIDE_TEAMS = "You may only name users who are members of a team you administer."


class ManagementView(APIView):
    """A management endpoint: keys, the master key or an admin session; gateway admins only by default."""

    authentication_classes = [GatewayKeyAuthentication, AdminSessionAuthentication]
    permission_classes = [IsGatewayAdmin]

    @property
    def caller(self) -> ManagementCaller:
        return self.request.user

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    def body(self, serializer_class: type[serializers.Serializer], **context: Any) -> serializers.Serializer:
        """Return the request body validated by ``serializer_class`` (400 when it is invalid)."""
        serializer = serializer_class(data=self.request.data, context={"request": self.request, **context})
        serializer.is_valid(raise_exception=True)
        return serializer

    def query(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        """Return the query parameters validated by ``serializer_class`` (400 when they are invalid)."""
        serializer = serializer_class(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def target(self, obj: Target | None, description: str) -> Target:
        """Return the object a request acts on, after the permission classes allowed it.

        A missing object is a 404 for gateway admins; others get the same 403 as for an object of
        another team, so they cannot tell the two apart.
        """
        if obj is None and self.caller.is_admin:
            raise NotFound(f"{description} not found.")
        self.check_object_permissions(self.request, obj)
        if obj is None:
            raise NotFound(f"{description} not found.")
        return obj

    def user_target(self, *, user_id: str | None = None, user_email: str | None = None):
        """Return the user named by ``user_id`` (username) or else ``user_email``.

        Gateway admins may name anyone (404 when there is no such user). A team admin may name only
        members of the teams they administer: anyone else, another team's user, a superuser or
        nobody at all, is the same 403, so the answer tells nothing about who exists.
        """
        user = user_get(user_id=user_id, user_email=user_email)
        if self.caller.is_admin:
            return self.found(user, f"User {user_id or user_email!r}")
        if user is None or not team_admin_may_manage(self.caller, user):
            raise PermissionDenied(USER_OUTSIDE_TEAMS)
        return user

    @staticmethod
    def found(obj: Target | None, description: str) -> Target:
        """Return ``obj``, or answer 404 when there is none (for lookups with no permission of their own)."""
        if obj is None:
            raise NotFound(f"{description} not found.")
        return obj


def paginate(items: QuerySet, *, page: int, size: int) -> tuple[list, int, int]:
    """Return one page of ``items`` (pages count from 1), the total count and the number of pages."""
    total = items.count()
    return list(items[(page - 1) * size : page * size]), total, math.ceil(total / size)
