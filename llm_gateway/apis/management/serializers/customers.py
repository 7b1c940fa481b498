"""Serializers of the /customer endpoints (end users), with LiteLLM's JSON names.

LiteLLM keeps a customer's budget in a linked budget row; responses here carry the budget both as
top-level fields and, for LiteLLM's clients, as ``litellm_budget_table``. Customer rate limits,
regions and default models have no home here: sending them is a 400 naming the field.

Every request may name ``team_id``: the team whose customers it acts on (a team admin's own team by
default; for gateway admins, none means the gateway's own customers, which the master key's requests
name). The same ``user_id`` in two teams is two customers.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from llm_gateway.apis.management.serializers.base import (
    OptionalTextField,
    RequestSerializer,
    duration_field,
    id_list_field,
    metadata_field,
    money_field,
    money_output,
)

TEAM_ID_HELP = "The team whose customers these are; a team admin's own team by default."


def team_id_field() -> serializers.UUIDField:
    return serializers.UUIDField(required=False, allow_null=True, help_text=TEAM_ID_HELP)


class CustomerFieldsRequest(RequestSerializer):
    team_id = team_id_field()
    alias = serializers.CharField(max_length=200, required=False, allow_null=True, allow_blank=True)
    max_budget = money_field()
    budget_duration = duration_field()
    blocked = serializers.BooleanField(required=False, allow_null=True)
    metadata = metadata_field()

    null_means = {"alias": "", "budget_duration": "", "blocked": False, "metadata": {}}


class CustomerNewRequest(CustomerFieldsRequest):
    user_id = serializers.CharField(max_length=200, help_text="The `user` your callers send.")


class CustomerUpdateRequest(CustomerFieldsRequest):
    user_id = serializers.CharField(max_length=200)


class CustomerIdsRequest(RequestSerializer):
    team_id = team_id_field()
    user_ids = id_list_field()


class CustomerListQuery(serializers.Serializer):
    team_id = serializers.UUIDField(
        required=False, help_text="Only this team's customers (default: every customer you manage)."
    )


class CustomerInfoQuery(serializers.Serializer):
    end_user_id = serializers.CharField(max_length=200)
    team_id = serializers.UUIDField(required=False, help_text=TEAM_ID_HELP)


class BudgetSerializer(serializers.Serializer):
    max_budget = money_output()
    budget_duration = OptionalTextField(allow_null=True)
    budget_reset_at = serializers.DateTimeField(allow_null=True)


class CustomerSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    team_id = serializers.UUIDField(allow_null=True, help_text="Null: not a team's customer.")
    owner_user_id = serializers.CharField(
        source="owner.username",
        allow_null=True,
        default=None,
        help_text="For a key owner's customers (keys without a team); null for a team's or the gateway's.",
    )
    alias = OptionalTextField(allow_null=True)
    spend = money_output()
    max_budget = money_output()
    budget_duration = OptionalTextField(allow_null=True)
    budget_reset_at = serializers.DateTimeField(allow_null=True)
    blocked = serializers.BooleanField()
    metadata = serializers.DictField()
    litellm_budget_table = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(BudgetSerializer(allow_null=True))
    def get_litellm_budget_table(self, end_user: Any) -> dict | None:
        if end_user.max_budget is None and not end_user.budget_duration:
            return None
        return BudgetSerializer(end_user).data


class CustomerDeleteResponse(serializers.Serializer):
    deleted_customers = serializers.IntegerField()
    message = serializers.CharField()


class CustomerBlockResponse(serializers.Serializer):
    blocked_users = CustomerSerializer(many=True)


class CustomerUnblockResponse(serializers.Serializer):
    unblocked_users = CustomerSerializer(many=True)
