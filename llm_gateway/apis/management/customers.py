"""The /customer endpoints (end users): new, info, update, delete, list, block, unblock.

A customer is named by the ``user`` field its team's keys send, so it belongs to that team
(llm_gateway.end_user_scopes): team admins manage their own team's customers only, and a team
outside theirs is refused with 403 whether it exists or not. Gateway admins name a team with
``team_id``, or none for the gateway's own customers (the ones the master key's requests name).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from llm_gateway.apis.management.permissions import IsTeamAdmin
from llm_gateway.apis.management.serializers.base import ERROR_RESPONSES
from llm_gateway.apis.management.serializers.customers import (
    CustomerBlockResponse,
    CustomerDeleteResponse,
    CustomerIdsRequest,
    CustomerInfoQuery,
    CustomerListQuery,
    CustomerNewRequest,
    CustomerSerializer,
    CustomerUnblockResponse,
    CustomerUpdateRequest,
)
from llm_gateway.apis.management.views import ManagementView
from llm_gateway.end_user_scopes import GATEWAY_SCOPE, EndUserScope
from llm_gateway.models import EndUser
from llm_gateway.selectors import end_user_get, end_user_list, team_get
from llm_gateway.services.end_users import end_user_block, end_user_create, end_user_delete, end_user_update

TAGS = ["customer management"]


class CustomerView(ManagementView):
    permission_classes = [IsTeamAdmin]

    def customer_scope(self, fields: dict[str, Any]) -> EndUserScope:
        """Return the scope a request acts in: the team it names (403 outside the caller's), else
        a team admin's only team, else (gateway admins) the gateway's own customers."""
        team_id = fields.pop("team_id", None)
        if team_id is None and not self.caller.is_admin:
            if len(self.caller.team_ids) != 1:
                raise ValidationError({"team_id": ["You administer several teams: name one."]})
            (team_id,) = self.caller.team_ids
        if team_id is None:
            return GATEWAY_SCOPE
        team = self.target(team_get(team_id=team_id), f"Team {team_id}")
        return EndUserScope(team_id=str(team.team_id))

    def customer_found(self, scope: EndUserScope, user_id: str) -> EndUser:
        return self.found(end_user_get(scope=scope, user_id=user_id), f"Customer {user_id!r}")

    def customers_found(self, scope: EndUserScope, user_ids: list[str]) -> list[EndUser]:
        """Return the scope's customers with these ids, or answer 404 naming every missing one."""
        customers = {customer.user_id: customer for customer in end_user_list(scope=scope, user_ids=user_ids)}
        missing = [user_id for user_id in user_ids if user_id not in customers]
        if missing:
            raise NotFound(f"Customers not found: {', '.join(missing)}.")
        return [customers[user_id] for user_id in dict.fromkeys(user_ids)]


class CustomerNewView(CustomerView):
    @extend_schema(
        operation_id="customer_new",
        tags=TAGS,
        summary="Create a customer",
        request=CustomerNewRequest,
        responses={200: CustomerSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = dict(self.body(CustomerNewRequest).validated_data)
        scope = self.customer_scope(fields)
        return Response(CustomerSerializer(end_user_create(scope=scope, **fields)).data)


class CustomerInfoView(CustomerView):
    @extend_schema(
        operation_id="customer_info",
        tags=TAGS,
        summary="Read a customer",
        parameters=[CustomerInfoQuery],
        responses={200: CustomerSerializer, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        query = dict(self.query(CustomerInfoQuery))
        scope = self.customer_scope(query)
        return Response(CustomerSerializer(self.customer_found(scope, query["end_user_id"])).data)


class CustomerUpdateView(CustomerView):
    @extend_schema(
        operation_id="customer_update",
        tags=TAGS,
        summary="Change a customer",
        description="Absent fields stay as they are; null clears a field.",
        request=CustomerUpdateRequest,
        responses={200: CustomerSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = dict(self.body(CustomerUpdateRequest).validated_data)
        scope = self.customer_scope(fields)
        end_user = end_user_update(end_user=self.customer_found(scope, fields.pop("user_id")), **fields)
        return Response(CustomerSerializer(end_user).data)


class CustomerDeleteView(CustomerView):
    @extend_schema(
        operation_id="customer_delete",
        tags=TAGS,
        summary="Delete customers",
        description="All of them, or none when one does not exist.",
        request=CustomerIdsRequest,
        responses={200: CustomerDeleteResponse, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = dict(self.body(CustomerIdsRequest).validated_data)
        customers = self.customers_found(self.customer_scope(fields), fields["user_ids"])
        deleted = end_user_delete(end_users=customers)
        return Response(
            {"deleted_customers": len(deleted), "message": f"Deleted customers: {', '.join(deleted)}."}
        )


class CustomerListView(CustomerView):
    @extend_schema(
        operation_id="customer_list",
        tags=TAGS,
        summary="List customers",
        description="A team's customers with `team_id`; else every customer you manage (gateway admins: "
        "all of them, whatever their team).",
        parameters=[CustomerListQuery],
        responses={200: CustomerSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        query = dict(self.query(CustomerListQuery))
        if "team_id" in query:
            customers = end_user_list(scope=self.customer_scope(query))
        else:
            team_ids = None if self.caller.is_admin else self.caller.team_ids
            customers = end_user_list(scope=None, team_ids=team_ids)
        return Response(CustomerSerializer(customers, many=True).data)


class CustomerBlockView(CustomerView):
    @extend_schema(
        operation_id="customer_block",
        tags=TAGS,
        summary="Block customers",
        description="Requests naming a blocked customer in `user` are refused. Customers not seen yet "
        "are created blocked.",
        request=CustomerIdsRequest,
        responses={200: CustomerBlockResponse, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = dict(self.body(CustomerIdsRequest).validated_data)
        scope = self.customer_scope(fields)
        blocked = end_user_block(user_ids=list(dict.fromkeys(fields["user_ids"])), blocked=True, scope=scope)
        return Response({"blocked_users": CustomerSerializer(blocked, many=True).data})


class CustomerUnblockView(CustomerView):
    @extend_schema(
        operation_id="customer_unblock",
        tags=TAGS,
        summary="Unblock customers",
        request=CustomerIdsRequest,
        responses={200: CustomerUnblockResponse, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = dict(self.body(CustomerIdsRequest).validated_data)
        scope = self.customer_scope(fields)
        customers = self.customers_found(scope, fields["user_ids"])
        unblocked = end_user_block(
            user_ids=[customer.user_id for customer in customers], blocked=False, scope=scope
        )
        return Response({"unblocked_users": CustomerSerializer(unblocked, many=True).data})
