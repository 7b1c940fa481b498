"""Serializers of the /key endpoints, with LiteLLM's JSON names.

The secret of a key is in the response of /key/generate and /key/regenerate only. Everywhere else a
key is named by its ``token`` (its id, a UUID) and shown by its ``key_name`` (``sk-...wxYz``, no more
than 4 characters of the secret).
Where LiteLLM echoes the key a caller passed (``/key/info``'s ``key``, ``/key/delete``'s
``deleted_keys``), this API answers with tokens, so a secret is never sent back.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from llm_gateway.apis.management.serializers.base import (
    BudgetOutput,
    OptionalTextField,
    RequestSerializer,
    duration_field,
    json_text_validate,
    limit_field,
    metadata_field,
    models_field,
    money_field,
    page_field,
)
from llm_gateway.budget_durations import next_reset
from llm_gateway.conf import gateway_setting
from llm_gateway.crypto import custom_secret_problem, secrets_equal
from llm_gateway.model_access import aliases_outside, aliases_outside_message
from llm_gateway.models import Team, VirtualKey
from llm_gateway.selectors import virtual_key_get_by_secret

# LiteLLM's key types -> ours. A "default" key calls models; management rights need "management".
# LiteLLM's "read_only" has no counterpart and is refused.
KEY_TYPES = {
    "llm_api": VirtualKey.KeyType.LLM_API,
    "default": VirtualKey.KeyType.LLM_API,
    "management": VirtualKey.KeyType.MANAGEMENT,
}


@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "minimum": 0},
            {
                "type": "object",
                "properties": {"budget_limit": {"type": "number"}, "time_period": {"type": "string"}},
                "required": ["budget_limit"],
            },
        ]
    }
)
class ModelBudgetField(serializers.Field):
    """A per-model budget: a USD amount, or LiteLLM's ``{"budget_limit": 1.0, "time_period": "30d"}``."""

    default_error_messages = {
        # Braces doubled: DRF formats error messages with str.format().
        "invalid": 'Give a USD amount or {{"budget_limit": <USD>, "time_period": "<duration>"}}.',
    }

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int | float):
            if data < 0:
                self.fail("invalid")
            return data
        if isinstance(data, dict) and set(data) <= {"budget_limit", "time_period"} and "budget_limit" in data:
            limit = data["budget_limit"]
            if isinstance(limit, bool) or not isinstance(limit, int | float) or limit < 0:
                self.fail("invalid")
            duration_field().run_validation(data.get("time_period"))
            return data
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


class KeyFieldsRequest(RequestSerializer):
    """The settings of a key, all optional (LiteLLM's /key/generate and /key/update fields)."""

    key_alias = serializers.CharField(max_length=200, allow_blank=True, allow_null=True, required=False)
    team_id = serializers.CharField(max_length=64, allow_null=True, required=False)
    user_id = serializers.CharField(max_length=150, allow_null=True, required=False)
    key_type = serializers.ChoiceField(choices=sorted(KEY_TYPES), allow_null=True, required=False)
    models = models_field()
    aliases = serializers.DictField(
        child=serializers.CharField(max_length=300),
        allow_null=True,
        required=False,
        validators=[json_text_validate],
    )
    max_budget = money_field()
    soft_budget = money_field()
    budget_duration = duration_field()
    rpm_limit = limit_field()
    tpm_limit = limit_field()
    max_parallel_requests = limit_field()
    model_max_budget = serializers.DictField(
        child=ModelBudgetField(), allow_null=True, required=False, validators=[json_text_validate]
    )
    allowed_cache_controls = serializers.ListField(
        child=serializers.ChoiceField(choices=["no-cache", "no-store", "ttl", "namespace"]),
        allow_null=True,
        required=False,
        help_text="Cache controls the key's requests may use; empty allows all.",
    )
    duration = duration_field(help_text="Time to live, e.g. 30d; sets `expires`. Null: never expires.")
    expires = serializers.DateTimeField(allow_null=True, required=False)
    blocked = serializers.BooleanField(allow_null=True, required=False)
    metadata = metadata_field()

    null_means = {
        "blocked": False,
        "key_alias": "",
        "key_type": "llm_api",
        "models": [],
        "aliases": {},
        "budget_duration": "",
        "model_max_budget": {},
        "allowed_cache_controls": [],
        "metadata": {},
    }

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        if attrs.get("duration") and attrs.get("expires"):
            raise serializers.ValidationError({"duration": "Give either duration or expires, not both."})
        now = timezone.now()
        duration = attrs.pop("duration", None)
        if duration:  # as in LiteLLM, a null duration changes nothing; "expires": null clears expiry
            attrs["expires"] = next_reset(duration, now)
        if "key_type" in attrs:
            attrs["key_type"] = KEY_TYPES[attrs["key_type"]]
        if "budget_duration" in attrs:
            # A budget period starts when it is set (LiteLLM does the same).
            attrs["budget_reset_at"] = next_reset(attrs["budget_duration"], now)
        return attrs


def _custom_secret_validate(value: str) -> str:
    problem = custom_secret_problem(value)
    if problem is not None:
        raise serializers.ValidationError(problem)
    master = gateway_setting("MASTER_KEY")
    if (master and secrets_equal(value, master)) or virtual_key_get_by_secret(secret=value) is not None:
        raise serializers.ValidationError("This key is already in use; choose another.")
    return value


class KeyGenerateRequest(KeyFieldsRequest):
    key = serializers.CharField(
        max_length=200,
        required=False,
        allow_null=True,
        help_text="A custom secret ('sk-...'); by default one is generated.",
    )

    def validate_key(self, value: str | None) -> str | None:
        return _custom_secret_validate(value) if value else None


class KeyUpdateRequest(KeyFieldsRequest):
    key = serializers.CharField(max_length=200, help_text="The key to change: its secret or its token.")


class KeyRegenerateRequest(RequestSerializer):
    key = serializers.CharField(
        max_length=200, required=False, help_text="The key: its secret or its token (or give it in the path)."
    )
    new_key = serializers.CharField(
        max_length=200, required=False, allow_null=True, help_text="A custom new secret ('sk-...')."
    )

    def validate_new_key(self, value: str | None) -> str | None:
        return _custom_secret_validate(value) if value else None


class KeyRequest(RequestSerializer):
    key = serializers.CharField(max_length=200, help_text="The key: its secret or its token.")


class KeyDeleteRequest(RequestSerializer):
    keys = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        max_length=1000,
        help_text="Keys to delete: secrets or tokens.",
    )
    key_aliases = serializers.ListField(child=serializers.CharField(max_length=200), required=False)

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("keys") and not attrs.get("key_aliases"):
            raise serializers.ValidationError({"keys": "Give the keys (or key_aliases) to delete."})
        return attrs


class KeyInfoQuery(serializers.Serializer):
    key = serializers.CharField(
        max_length=200,
        required=False,
        help_text="The key: its secret or its token. Default: the caller's key.",
    )


class KeyListQuery(serializers.Serializer):
    page = page_field()
    size = serializers.IntegerField(min_value=1, max_value=100, default=10)
    team_id = serializers.CharField(max_length=64, required=False)
    user_id = serializers.CharField(max_length=150, required=False)
    key_alias = serializers.CharField(max_length=200, required=False)
    return_full_object = serializers.BooleanField(default=False)


class KeySerializer(BudgetOutput):
    """A key's settings and spend, never its secret."""

    token = serializers.UUIDField(help_text="The key's id.")
    key_name = serializers.CharField(source="key_prefix", help_text="The key's display form.")
    key_alias = OptionalTextField(allow_null=True)
    key_type = serializers.CharField()
    team_id = serializers.UUIDField(allow_null=True)
    user_id = serializers.CharField(source="user.username", allow_null=True, default=None)
    models = serializers.ListField(child=serializers.CharField())
    aliases = serializers.DictField(child=serializers.CharField())
    model_max_budget = serializers.DictField()
    allowed_cache_controls = serializers.ListField(child=serializers.CharField())
    expires = serializers.DateTimeField(allow_null=True)
    metadata = serializers.DictField()
    admin_locked = serializers.ListField(
        child=serializers.CharField(),
        help_text="Limits a gateway admin set: the key's team admins may tighten them, not lift them.",
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class KeySecretSerializer(KeySerializer):
    """A key with its secret: the answer of /key/generate and /key/regenerate, shown this once."""

    key = serializers.SerializerMethodField(help_text="The secret. Store it: it is never shown again.")

    @extend_schema_field(serializers.CharField())
    def get_key(self, _key: VirtualKey) -> str:
        return self.context["secret"]


class KeyInfoResponse(serializers.Serializer):
    key = serializers.UUIDField(source="token", help_text="The key's token (never its secret).")
    info = KeySerializer(source="*")


class KeyListResponse(serializers.Serializer):
    keys = serializers.ListField(
        child=serializers.JSONField(),
        help_text="Tokens, or key objects with return_full_object=true.",
    )
    total_count = serializers.IntegerField()
    current_page = serializers.IntegerField()
    total_pages = serializers.IntegerField()


class KeyDeleteResponse(serializers.Serializer):
    deleted_keys = serializers.ListField(child=serializers.UUIDField(), help_text="Tokens of deleted keys.")


def key_models_check(*, models: list[str], aliases: dict[str, str], team: Team | None) -> None:
    """Refuse models a key's team does not allow (a key may narrow its team's models, not widen
    them), and aliases pointing at a model group the key or its team may not use."""
    if team is not None and team.models and "*" not in team.models and models:
        outside = sorted(set(models) - set(team.models))
        if outside:
            raise serializers.ValidationError(
                {"models": f"Team '{team.team_alias}' does not allow {', '.join(outside)}."}
            )
    outside = aliases_outside(aliases, models, team.models if team is not None else ())
    if outside:
        raise serializers.ValidationError({"aliases": aliases_outside_message(aliases, outside, "this key")})
