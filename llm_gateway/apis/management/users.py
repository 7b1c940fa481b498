"""The /user endpoints: new, info, update, delete, list (gateway admins only).

Users are the Django accounts of the humans; LiteLLM's ``user_id`` is the username. A user's budget
and limits apply to every key they own.
"""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from llm_gateway.apis.management.serializers.base import ERROR_RESPONSES
from llm_gateway.apis.management.serializers.users import (
    ADMIN_ROLE,
    UserDeleteRequest,
    UserDeleteResponse,
    UserInfoQuery,
    UserInfoResponse,
    UserListQuery,
    UserListResponse,
    UserNewRequest,
    UserNewResponse,
    UserSerializer,
    UserUpdateRequest,
)
from llm_gateway.apis.management.views import ManagementView, paginate
from llm_gateway.selectors import team_get, user_get, user_list
from llm_gateway.services.users import USER_BUDGET_FIELDS, user_create, user_delete, user_update

TAGS = ["user management"]


def _budget_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if name in USER_BUDGET_FIELDS}


class UserView(ManagementView):
    def user_found(self, user_id: str):
        return self.found(user_get(user_id=user_id), f"User {user_id!r}")


class UserNewView(UserView):
    @extend_schema(
        operation_id="user_new",
        tags=TAGS,
        summary="Create a user",
        description="`user_role` proxy_admin makes a superuser. Unless `auto_create_key` is false, a key "
        "owned by the user is created too and its secret returned as `key`, this once; it may call the "
        "`models` given (none without them). The budget and limits apply to every key the user owns.",
        request=UserNewRequest,
        responses={200: UserNewResponse, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = self.body(UserNewRequest).validated_data
        teams = [
            self.found(team_get(team_id=team_id), f"Team {team_id}") for team_id in fields.get("teams") or []
        ]
        user, key, secret = user_create(
            username=fields.get("user_id") or str(uuid.uuid4()),
            email=fields.get("user_email") or "",
            password=fields.get("password"),
            is_admin=fields["user_role"] == ADMIN_ROLE,
            teams=teams,
            key_create=fields["auto_create_key"],
            key_models=fields.get("models") or (),
            **_budget_fields(fields),
        )
        return Response(UserNewResponse(user, context={"key": key, "secret": secret}).data)


class UserInfoView(UserView):
    @extend_schema(
        operation_id="user_info",
        tags=TAGS,
        summary="Read a user with their keys and teams",
        parameters=[UserInfoQuery],
        responses={200: UserInfoResponse, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        return Response(UserInfoResponse(self.user_found(self.query(UserInfoQuery)["user_id"])).data)


class UserUpdateView(UserView):
    @extend_schema(
        operation_id="user_update",
        tags=TAGS,
        summary="Change a user's email, role, password, budget or limits",
        description="Absent fields stay as they are; null clears a budget or limit.",
        request=UserUpdateRequest,
        responses={200: UserSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = self.body(UserUpdateRequest).validated_data
        user = user_update(
            user=self.user_found(fields["user_id"]),
            email=fields["user_email"] or "" if "user_email" in fields else None,
            password=fields.get("password"),
            is_admin=fields["user_role"] == ADMIN_ROLE if "user_role" in fields else None,
            **_budget_fields(fields),
        )
        return Response(UserSerializer(user).data)


class UserDeleteView(UserView):
    @extend_schema(
        operation_id="user_delete",
        tags=TAGS,
        summary="Delete users",
        description="Their memberships go; their keys stay, without an owner.",
        request=UserDeleteRequest,
        responses={200: UserDeleteResponse, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        users = [
            self.user_found(user_id) for user_id in self.body(UserDeleteRequest).validated_data["user_ids"]
        ]
        return Response({"deleted_users": user_delete(users=users)})


class UserListView(UserView):
    @extend_schema(
        operation_id="user_list",
        tags=TAGS,
        summary="List users",
        description="By username, by page (`page` from 1, `page_size` up to 100).",
        parameters=[UserListQuery],
        responses={200: UserListResponse, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        query = self.query(UserListQuery)
        user_ids = (
            [user_id.strip() for user_id in query["user_ids"].split(",")] if "user_ids" in query else None
        )
        # Each row shows the user's budget: read it in the same query.
        users = user_list(user_ids=user_ids, role=query.get("role")).select_related("budget")
        page, total, pages = paginate(users, page=query["page"], size=query["page_size"])
        return Response(
            {
                "users": UserSerializer(page, many=True).data,
                "total": total,
                "page": query["page"],
                "page_size": query["page_size"],
                "total_pages": pages,
            }
        )
