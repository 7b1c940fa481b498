"""The /customer endpoints (end users): new, info, update, delete, list, block, unblock.

Gateway admins only: a customer is named by the ``user`` field any caller may send, so it belongs to
no team.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from llm_gateway.apis.management.serializers.base import ERROR_RESPONSES
from llm_gateway.apis.management.serializers.customers import (
    CustomerBlockResponse,
    CustomerDeleteResponse,
    CustomerIdsRequest,
    CustomerInfoQuery,
    CustomerNewRequest,
    CustomerSerializer,
    CustomerUnblockResponse,
    CustomerUpdateRequest,
)
from llm_gateway.apis.management.views import ManagementView
from llm_gateway.models import EndUser
from llm_gateway.selectors import end_user_get, end_user_list
from llm_gateway.services.end_users import end_user_block, end_user_create, end_user_delete, end_user_update

TAGS = ["customer management"]


class CustomerView(ManagementView):
    def customer_found(self, user_id: str) -> EndUser:
        return self.found(end_user_get(user_id=user_id), f"Customer {user_id!r}")

    def customers_found(self, user_ids: list[str]) -> list[EndUser]:
        """Return the customers with these ids, or answer 404 naming every missing one."""
        customers = {customer.user_id: customer for customer in end_user_list(user_ids=user_ids)}
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
        return Response(
            CustomerSerializer(end_user_create(**self.body(CustomerNewRequest).validated_data)).data
        )


class CustomerInfoView(CustomerView):
    @extend_schema(
        operation_id="customer_info",
        tags=TAGS,
        summary="Read a customer",
        parameters=[CustomerInfoQuery],
        responses={200: CustomerSerializer, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        return Response(
            CustomerSerializer(self.customer_found(self.query(CustomerInfoQuery)["end_user_id"])).data
        )


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
        end_user = end_user_update(end_user=self.customer_found(fields.pop("user_id")), **fields)
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
        customers = self.customers_found(self.body(CustomerIdsRequest).validated_data["user_ids"])
        deleted = end_user_delete(end_users=customers)
        return Response(
            {"deleted_customers": len(deleted), "message": f"Deleted customers: {', '.join(deleted)}."}
        )


class CustomerListView(CustomerView):
    @extend_schema(
        operation_id="customer_list",
        tags=TAGS,
        summary="List customers",
        responses={200: CustomerSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        return Response(CustomerSerializer(end_user_list(), many=True).data)


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
        user_ids = self.body(CustomerIdsRequest).validated_data["user_ids"]
        blocked = end_user_block(user_ids=list(dict.fromkeys(user_ids)), blocked=True)
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
        customers = self.customers_found(self.body(CustomerIdsRequest).validated_data["user_ids"])
        unblocked = end_user_block(user_ids=[customer.user_id for customer in customers], blocked=False)
        return Response({"unblocked_users": CustomerSerializer(unblocked, many=True).data})
