"""What the management serializers share: strict request bodies, money, limits, durations, errors."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from llm_gateway.budget_durations import validate_budget_duration

# Values a LiteLLM client sends for a field it does not mean to set.
UNSET_VALUES = (None, "", [], {})
# Limits are stored in PostgreSQL integer columns.
MAX_LIMIT = 2_147_483_647
# Page numbers beyond this would overflow the database's OFFSET.
MAX_PAGE = 1_000_000
# Longer periods overflow date arithmetic; nobody budgets per century.
MAX_DURATION_SECONDS = 100 * 365 * 86400
_DURATION = re.compile(r"^(\d+)(s|m|h|d|w|mo)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 31 * 86400}


class RequestSerializer(serializers.Serializer):
    """A request body that refuses what it cannot store (400) instead of dropping it silently.

    LiteLLM's clients send many optional fields, null or empty when unset: those pass. A field this
    gateway has no home for that carries a value is an error naming the field. ``null_means`` maps
    fields to what an explicit null stores (``"key_alias": ""``), since the model columns are not
    nullable; on updates an absent field is left unchanged while a null clears it.
    """

    null_means: ClassVar[dict[str, Any]] = {}

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, Mapping):
            unsupported = sorted(
                name for name, value in data.items() if name not in self.fields and value not in UNSET_VALUES
            )
            if unsupported:
                raise serializers.ValidationError(
                    {name: ["This gateway does not support this field."] for name in unsupported}
                )
        return super().to_internal_value(data)

    def validate(self, attrs: dict) -> dict:
        for name, empty in self.null_means.items():
            if name in attrs and attrs[name] is None:
                attrs[name] = copy.copy(empty)
        return attrs


def duration_bound_validate(value: str | None) -> None:
    """Refuse periods longer than a century (they overflow date arithmetic)."""
    match = _DURATION.match(value or "")
    if match and int(match.group(1)) * _UNIT_SECONDS[match.group(2)] > MAX_DURATION_SECONDS:
        raise serializers.ValidationError("This period is too long; use at most 100 years.")


def json_text_validate(value: Any) -> None:
    """Refuse NUL characters anywhere in a JSON value: PostgreSQL cannot store them."""
    if isinstance(value, dict):
        for name, item in value.items():
            json_text_validate(name)
            json_text_validate(item)
    elif isinstance(value, list):
        for item in value:
            json_text_validate(item)
    elif isinstance(value, str) and "\x00" in value:
        raise serializers.ValidationError("Null characters are not allowed.")


def money_field(**options: Any) -> serializers.DecimalField:
    """Return an optional amount in USD (stored exactly, as a Decimal)."""
    return serializers.DecimalField(
        max_digits=20, decimal_places=10, min_value=Decimal(0), allow_null=True, required=False, **options
    )


def limit_field(**options: Any) -> serializers.IntegerField:
    """Return an optional non-negative limit (requests, tokens, parallel requests)."""
    return serializers.IntegerField(
        min_value=0, max_value=MAX_LIMIT, allow_null=True, required=False, **options
    )


def duration_field(**options: Any) -> serializers.CharField:
    """Return an optional period in LiteLLM's notation: 30s, 10m, 1h, 1d, 1w, 1mo."""
    return serializers.CharField(
        max_length=16,
        allow_blank=True,
        allow_null=True,
        required=False,
        validators=[validate_budget_duration, duration_bound_validate],
        **options,
    )


def models_field(**options: Any) -> serializers.ListField:
    """Return an optional list of model names; empty allows every model."""
    return serializers.ListField(
        child=serializers.CharField(max_length=300), allow_null=True, required=False, **options
    )


def metadata_field(**options: Any) -> serializers.DictField:
    """Return an optional JSON object of free-form metadata."""
    return serializers.DictField(allow_null=True, required=False, validators=[json_text_validate], **options)


def id_list_field(**options: Any) -> serializers.ListField:
    """Return a required, non-empty list of ids."""
    return serializers.ListField(
        child=serializers.CharField(max_length=200), min_length=1, max_length=1000, **options
    )


class OptionalTextField(serializers.CharField):
    """Text rendered as null when empty, as LiteLLM renders unset strings."""

    def to_representation(self, value: Any) -> str | None:
        return value or None


def money_output(**options: Any) -> serializers.DecimalField:
    """Return an amount in USD rendered as a JSON number, as LiteLLM does."""
    return serializers.DecimalField(
        max_digits=20, decimal_places=10, coerce_to_string=False, allow_null=True, **options
    )


def page_field() -> serializers.IntegerField:
    """Return a page number, counting from 1."""
    return serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)


class BudgetOutput(serializers.Serializer):
    """The spend, budget and rate limits of a key or team (their shared BudgetFields)."""

    spend = money_output()
    max_budget = money_output()
    soft_budget = money_output()
    budget_duration = OptionalTextField(allow_null=True)
    budget_reset_at = serializers.DateTimeField(allow_null=True)
    rpm_limit = serializers.IntegerField(allow_null=True)
    tpm_limit = serializers.IntegerField(allow_null=True)
    max_parallel_requests = serializers.IntegerField(allow_null=True)
    blocked = serializers.BooleanField()


class OpenAIErrorBody(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    param = serializers.CharField(allow_null=True)
    code = serializers.CharField(allow_null=True)


class OpenAIError(serializers.Serializer):
    """OpenAI's error shape, used for every error of this API."""

    error = OpenAIErrorBody()


ERROR_RESPONSES = {
    400: OpenApiResponse(OpenAIError, description="Invalid request (invalid_request_error)."),
    401: OpenApiResponse(OpenAIError, description="Missing or invalid credential (authentication_error)."),
    403: OpenApiResponse(OpenAIError, description="Not allowed for this caller (permission_error)."),
    404: OpenApiResponse(OpenAIError, description="No such object (not_found_error)."),
}
