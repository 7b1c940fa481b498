"""Serializers of the /customer endpoints (end users), with LiteLLM's JSON names.

LiteLLM keeps a customer's budget in a linked budget row; responses here carry the budget both as
top-level fields and, for LiteLLM's clients, as ``litellm_budget_table``. Customer rate limits,
regions and default models have no home here: sending them is a 400 naming the field.
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


class CustomerFieldsRequest(RequestSerializer):
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
    user_ids = id_list_field()


class CustomerInfoQuery(serializers.Serializer):
    end_user_id = serializers.CharField(max_length=200)


class BudgetSerializer(serializers.Serializer):
    max_budget = money_output()
    budget_duration = OptionalTextField(allow_null=True)
    budget_reset_at = serializers.DateTimeField(allow_null=True)


class CustomerSerializer(serializers.Serializer):
    user_id = serializers.CharField()
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
