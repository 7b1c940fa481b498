"""The base of every management view: who may call, how bodies and queries are read, how targets are found."""

from __future__ import annotations

import math
from typing import Any, TypeVar

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from llm_gateway.apis.management.authentication import (
    AdminSessionAuthentication,
    GatewayKeyAuthentication,
    ManagementCaller,
)
from llm_gateway.apis.management.permissions import IsGatewayAdmin

Target = TypeVar("Target")


class ManagementView(APIView):
    """A management endpoint: keys, the master key or an admin session; gateway admins only by default."""

    authentication_classes = [GatewayKeyAuthentication, AdminSessionAuthentication]
    permission_classes = [IsGatewayAdmin]

    @property
    def caller(self) -> ManagementCaller:
        return self.request.user

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
