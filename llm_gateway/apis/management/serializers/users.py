"""Serializers of the /user endpoints, with LiteLLM's JSON names.

A user is a Django account: LiteLLM's ``user_id`` is the username, ``user_email`` the email, and
``user_role`` either ``proxy_admin`` (a superuser, who may use the admin) or ``internal_user``.
LiteLLM's per-user budgets, limits and models have no home here (budgets belong to teams and keys):
sending them is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.validators import UnicodeUsernameValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from llm_gateway.apis.management.serializers.base import (
    OptionalTextField,
    RequestSerializer,
    id_list_field,
    page_field,
)
from llm_gateway.apis.management.serializers.keys import KeySerializer
from llm_gateway.apis.management.serializers.teams import TeamSerializer
from llm_gateway.selectors import team_list, user_get

ADMIN_ROLE = "proxy_admin"
USER_ROLES = (ADMIN_ROLE, "internal_user")


class UserNewRequest(RequestSerializer):
    user_id = serializers.CharField(
        max_length=150,
        required=False,
        allow_null=True,
        validators=[UnicodeUsernameValidator()],
        help_text="The username. Default: a new UUID.",
    )
    user_email = serializers.EmailField(max_length=254, required=False, allow_null=True, allow_blank=True)
    user_role = serializers.ChoiceField(choices=USER_ROLES, default="internal_user")
    teams = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        allow_null=True,
        help_text="Team ids the user joins as a member.",
    )
    password = serializers.CharField(
        max_length=128, required=False, allow_null=True, help_text="For logging in to the admin."
    )
    auto_create_key = serializers.BooleanField(
        default=True, help_text="Also create a key owned by the user (LiteLLM's default)."
    )

    def validate_user_id(self, value: str | None) -> str | None:
        if value and user_get(user_id=value) is not None:
            raise serializers.ValidationError(f"A user {value!r} already exists.")
        return value


class UserUpdateRequest(RequestSerializer):
    user_id = serializers.CharField(max_length=150)
    user_email = serializers.EmailField(max_length=254, required=False, allow_null=True, allow_blank=True)
    user_role = serializers.ChoiceField(choices=USER_ROLES, required=False)
    password = serializers.CharField(max_length=128, required=False, allow_null=True)


class UserDeleteRequest(RequestSerializer):
    user_ids = id_list_field()


class UserInfoQuery(serializers.Serializer):
    user_id = serializers.CharField(max_length=150)


class UserListQuery(serializers.Serializer):
    page = page_field()
    page_size = serializers.IntegerField(min_value=1, max_value=100, default=25)
    role = serializers.ChoiceField(choices=USER_ROLES, required=False)
    user_ids = serializers.CharField(required=False, help_text="Comma-separated user ids.")


class UserSerializer(serializers.Serializer):
    user_id = serializers.CharField(source="username")
    user_email = OptionalTextField(source="email", allow_null=True)
    user_role = serializers.SerializerMethodField()
    teams = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(source="date_joined")

    @extend_schema_field(serializers.ChoiceField(choices=USER_ROLES))
    def get_user_role(self, user: Any) -> str:
        return ADMIN_ROLE if user.is_superuser else "internal_user"

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_teams(self, user: Any) -> list[str]:
        return [str(membership.team_id) for membership in user.memberships.all()]


class UserNewResponse(UserSerializer):
    """The new user, with the secret of their new key (shown this once) when one was made."""

    key = serializers.SerializerMethodField()
    token = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_key(self, _user: Any) -> str | None:
        return self.context.get("secret")

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_token(self, _user: Any) -> str | None:
        key = self.context.get("key")
        return str(key.token) if key is not None else None


class UserInfoResponse(serializers.Serializer):
    user_id = serializers.CharField(source="username")
    user_info = UserSerializer(source="*")
    keys = KeySerializer(source="virtual_keys.all", many=True)
    teams = serializers.SerializerMethodField()

    @extend_schema_field(TeamSerializer(many=True))
    def get_teams(self, user: Any) -> list:
        return TeamSerializer(team_list(user_id=user.username), many=True).data


class UserListResponse(serializers.Serializer):
    users = UserSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    total_pages = serializers.IntegerField()


class UserDeleteResponse(serializers.Serializer):
    deleted_users = serializers.ListField(child=serializers.CharField())
