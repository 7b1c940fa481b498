"""Serializers of the /team endpoints, with LiteLLM's JSON names.

LiteLLM's member roles are ``admin`` and ``user``; ours are ``admin``, ``member`` and ``viewer``.
Requests take ``user`` or ``member`` for a member; responses say ``user``, as LiteLLM does.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from llm_gateway.apis.management.serializers.base import (
    BudgetOutput,
    OptionalTextField,
    RequestSerializer,
    duration_field,
    id_list_field,
    limit_field,
    metadata_field,
    models_field,
    money_field,
)
from llm_gateway.apis.management.serializers.keys import KeySerializer
from llm_gateway.model_access import aliases_outside, aliases_outside_message
from llm_gateway.models import Membership

ROLES_IN = {
    "admin": Membership.Role.ADMIN,
    "user": Membership.Role.MEMBER,
    "member": Membership.Role.MEMBER,
    "viewer": Membership.Role.VIEWER,
}
ROLES_OUT = {Membership.Role.ADMIN: "admin", Membership.Role.MEMBER: "user", Membership.Role.VIEWER: "viewer"}


class RoleField(serializers.ChoiceField):
    """A member's role: admin, user (or member), viewer."""

    def __init__(self, **options: Any) -> None:
        super().__init__(choices=list(ROLES_IN), **options)

    def to_internal_value(self, data: Any) -> str:
        return ROLES_IN[super().to_internal_value(data)]

    def to_representation(self, value: str) -> str:
        return ROLES_OUT.get(value, value)


class MemberRequest(RequestSerializer):
    """A user, by ``user_id`` (username) or ``user_email``, and their role in the team."""

    user_id = serializers.CharField(max_length=150, required=False, allow_null=True)
    user_email = serializers.EmailField(max_length=254, required=False, allow_null=True)
    role = RoleField(default=Membership.Role.MEMBER)

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("user_id") and not attrs.get("user_email"):
            raise serializers.ValidationError({"user_id": "Give the member's user_id or user_email."})
        return attrs


class MemberListField(serializers.ListField):
    """One member or a list of members (LiteLLM takes both)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(child=MemberRequest(), min_length=1, max_length=1000, **options)

    def to_internal_value(self, data: Any) -> list:
        return super().to_internal_value([data] if isinstance(data, dict) else data)


class TeamFieldsRequest(RequestSerializer):
    """The settings of a team, all optional (LiteLLM's /team/new and /team/update fields)."""

    team_alias = serializers.CharField(max_length=200, required=False)
    models = models_field()
    model_aliases = serializers.DictField(
        child=serializers.CharField(max_length=300),
        allow_null=True,
        required=False,
        help_text="Requested name -> model group, for every key of the team.",
    )
    max_budget = money_field()
    soft_budget = money_field()
    budget_duration = duration_field()
    rpm_limit = limit_field()
    tpm_limit = limit_field()
    max_parallel_requests = limit_field()
    blocked = serializers.BooleanField(allow_null=True, required=False)
    metadata = metadata_field()

    null_means = {"models": [], "model_aliases": {}, "budget_duration": "", "blocked": False, "metadata": {}}


def team_aliases_check(*, models: list[str], model_aliases: dict[str, str]) -> None:
    """Refuse model aliases pointing at a model group the team may not use."""
    outside = aliases_outside(model_aliases, models)
    if outside:
        raise serializers.ValidationError(
            {"model_aliases": aliases_outside_message(model_aliases, outside, "this team")}
        )


class TeamNewRequest(TeamFieldsRequest):
    team_alias = serializers.CharField(max_length=200)
    team_id = serializers.UUIDField(required=False, allow_null=True, help_text="Default: a new UUID.")
    members_with_roles = serializers.ListField(child=MemberRequest(), required=False, max_length=1000)

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        team_aliases_check(models=attrs.get("models") or [], model_aliases=attrs.get("model_aliases") or {})
        return attrs


class TeamUpdateRequest(TeamFieldsRequest):
    team_id = serializers.CharField(max_length=64)


class TeamRequest(RequestSerializer):
    team_id = serializers.CharField(max_length=64)


class TeamDeleteRequest(RequestSerializer):
    team_ids = id_list_field()


class TeamInfoQuery(serializers.Serializer):
    team_id = serializers.CharField(max_length=64)


class TeamListQuery(serializers.Serializer):
    user_id = serializers.CharField(max_length=150, required=False, help_text="Only this user's teams.")


class TeamMemberAddRequest(RequestSerializer):
    team_id = serializers.CharField(max_length=64)
    member = MemberListField()


class TeamMemberRequest(RequestSerializer):
    team_id = serializers.CharField(max_length=64)
    user_id = serializers.CharField(max_length=150, required=False, allow_null=True)
    user_email = serializers.EmailField(max_length=254, required=False, allow_null=True)

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("user_id") and not attrs.get("user_email"):
            raise serializers.ValidationError({"user_id": "Give the member's user_id or user_email."})
        return attrs


class TeamMemberUpdateRequest(TeamMemberRequest):
    role = RoleField()


class MemberSerializer(serializers.Serializer):
    user_id = serializers.CharField(source="user.username")
    user_email = OptionalTextField(source="user.email", allow_null=True)
    role = RoleField()


class MembershipSerializer(MemberSerializer):
    team_id = serializers.UUIDField()
    created_at = serializers.DateTimeField()


class TeamSerializer(BudgetOutput):
    team_id = serializers.UUIDField()
    team_alias = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())
    model_aliases = serializers.DictField(child=serializers.CharField())
    metadata = serializers.DictField()
    members_with_roles = MemberSerializer(source="memberships.all", many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TeamInfoResponse(serializers.Serializer):
    team_id = serializers.UUIDField()
    team_info = TeamSerializer(source="*")
    keys = KeySerializer(source="keys.all", many=True)
    team_memberships = MembershipSerializer(source="memberships.all", many=True)


class TeamDeleteResponse(serializers.Serializer):
    deleted_teams = serializers.ListField(child=serializers.UUIDField())


class MemberUserSerializer(serializers.Serializer):
    user_id = serializers.CharField(source="username")
    user_email = OptionalTextField(source="email", allow_null=True)


class TeamMemberAddResponse(TeamSerializer):
    """The team, with the users and memberships this call added."""

    updated_users = serializers.SerializerMethodField()
    updated_team_memberships = serializers.SerializerMethodField()

    @extend_schema_field(MemberUserSerializer(many=True))
    def get_updated_users(self, _team: Any) -> list:
        return MemberUserSerializer(
            [membership.user for membership in self.context["memberships"]], many=True
        ).data

    @extend_schema_field(MembershipSerializer(many=True))
    def get_updated_team_memberships(self, _team: Any) -> list:
        return MembershipSerializer(self.context["memberships"], many=True).data
