"""Serializers of the /user endpoints, with LiteLLM's JSON names.

A user is a Django account: LiteLLM's ``user_id`` is the username, ``user_email`` the email, and
``user_role`` either ``proxy_admin`` (a superuser, who may use the admin) or ``internal_user``.
A user's budget, rate limits, blocked flag and metadata are their ``UserBudget`` row, shown flat as
LiteLLM does. On /user/new, ``models`` are the new key's (none when not given); LiteLLM's other
per-user key defaults have no home here: sending them is a 400 naming the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.validators import UnicodeUsernameValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from llm_gateway.apis.management.serializers.base import (
    OptionalTextField,
    RequestSerializer,
    duration_field,
    id_list_field,
    limit_field,
    metadata_field,
    models_field,
    money_field,
    money_output,
    page_field,
)
from llm_gateway.apis.management.serializers.keys import KeySerializer
from llm_gateway.apis.management.serializers.teams import TeamSerializer
from llm_gateway.selectors import team_list, user_get

ADMIN_ROLE = "proxy_admin"
USER_ROLES = (ADMIN_ROLE, "internal_user")


class UserBudgetFieldsRequest(RequestSerializer):
    """A user's budget and limits, all optional (LiteLLM's /user/new and /user/update fields)."""

    max_budget = money_field(help_text="Hard limit in USD across every key the user owns.")
    soft_budget = money_field(help_text="Alert threshold in USD.")
    budget_duration = duration_field()
    rpm_limit = limit_field()
    tpm_limit = limit_field()
    max_parallel_requests = limit_field()
    blocked = serializers.BooleanField(
        allow_null=True, required=False, help_text="Refuse every key the user owns (401)."
    )
    metadata = metadata_field()

    null_means = {"budget_duration": "", "blocked": False, "metadata": {}}


class UserNewRequest(UserBudgetFieldsRequest):
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
    models = models_field(
        help_text="Models the new key may call (\"*\" for all). Without any, it may call none."
    )

    def validate_user_id(self, value: str | None) -> str | None:
        if value and user_get(user_id=value) is not None:
            raise serializers.ValidationError(f"A user {value!r} already exists.")
        return value


class UserUpdateRequest(UserBudgetFieldsRequest):
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
    spend = money_output(source="budget.spend")
    max_budget = money_output(source="budget.max_budget")
    soft_budget = money_output(source="budget.soft_budget")
    budget_duration = OptionalTextField(source="budget.budget_duration", allow_null=True)
    budget_reset_at = serializers.DateTimeField(source="budget.budget_reset_at", allow_null=True)
    rpm_limit = serializers.IntegerField(source="budget.rpm_limit", allow_null=True)
    tpm_limit = serializers.IntegerField(source="budget.tpm_limit", allow_null=True)
    max_parallel_requests = serializers.IntegerField(source="budget.max_parallel_requests", allow_null=True)
    blocked = serializers.BooleanField(source="budget.blocked")
    metadata = serializers.DictField(source="budget.metadata")
    created_at = serializers.DateTimeField(source="date_joined")

    def to_representation(self, user: Any) -> dict:
        data = super().to_representation(user)
        if not hasattr(user, "budget"):  # no UserBudget row: no limits, nothing spent under one
            spend = self.fields["spend"].to_representation(Decimal("0"))
            data.update(spend=spend, blocked=False, metadata={})
        return data

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
