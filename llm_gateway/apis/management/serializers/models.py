"""Serializers of the /model endpoints: deployments in LiteLLM's ``model_list`` shape.

``{"model_name", "litellm_params": {"model": "openai/gpt-4o", "api_key", ...}, "model_info": {"id"}}``.
``litellm_params.model`` is split into our provider and the provider's model id; LiteLLM parameters
without a column (``temperature``, ``drop_params``, ``extra_headers``...) go to ``extra_params`` and
come back as they were. ``api_key`` is stored encrypted and never returned: responses show null, or
the ``os.environ/NAME`` reference when the key is read from the environment. Other credentials
(``aws_secret_access_key``, an ``Authorization`` header...) cannot be stored in clear, so they are
refused unless given as ``os.environ/NAME`` references. A reference may name only a variable a
deployment may read (``llm_gateway.env_references``); any other is refused with 400 naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from llm_gateway.apis.management.serializers.base import (
    MAX_LIMIT,
    RequestSerializer,
    json_text_validate,
    limit_field,
)
from llm_gateway.env_references import env_reference_refusal, env_references_refused
from llm_gateway.models import Deployment
from llm_gateway.selectors import deployment_get
from providers.credentials import ENV_REFERENCE_PREFIX
from providers.exceptions import BadRequestError
from providers.registry import model_resolve

# Parameter and header names that hold credentials (aws_session_token, azure_ad_token, vertex_credentials;
# not the prices input_cost_per_token and the like).
SECRET_PARAM = re.compile(
    r"secret|password|credential|(?<!per)_token$|_key$|access_key|api_key|authorization", re.I
)
SECRET_HEADER = re.compile(r"authorization|api-key|token|secret|cookie", re.I)


def _is_env_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(ENV_REFERENCE_PREFIX)


class LitellmParamsRequest(RequestSerializer):
    """LiteLLM's ``litellm_params``: known ones to columns, the others kept in ``extra_params``."""

    model = serializers.CharField(
        max_length=300, required=False, help_text="'provider/model', e.g. openai/gpt-4o."
    )
    custom_llm_provider = serializers.CharField(max_length=64, required=False, allow_null=True)
    api_key = serializers.CharField(
        max_length=4000,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="Stored encrypted, never returned; or 'os.environ/NAME'. Null keeps the stored one.",
    )
    api_base = serializers.CharField(max_length=500, required=False, allow_null=True, allow_blank=True)
    api_version = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    rpm = limit_field()
    tpm = limit_field()
    timeout = serializers.FloatField(min_value=0, required=False, allow_null=True)
    weight = serializers.FloatField(min_value=0, required=False, allow_null=True)
    order = serializers.IntegerField(min_value=0, max_value=MAX_LIMIT, required=False, allow_null=True)

    null_means = {"api_base": "", "api_version": "", "weight": 1.0, "order": 1}

    def to_internal_value(self, data: Any) -> dict:
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)
        known = {name: value for name, value in data.items() if name in self.fields}
        extra = {name: value for name, value in data.items() if name not in self.fields}
        errors = {}
        for name, value in data.items():
            refused = env_references_refused(value)
            if refused:
                errors[name] = [env_reference_refusal(refused)]
        for name, value in extra.items():
            if name in errors:
                continue
            if SECRET_PARAM.search(name) and value is not None and not _is_env_reference(value):
                errors[name] = [
                    "Credentials other than api_key are not stored in clear; use 'os.environ/NAME'."
                ]
        headers = extra.get("extra_headers")
        if headers is not None and not isinstance(headers, dict):
            errors["extra_headers"] = ["Expected an object of header names to values."]
        elif headers and "extra_headers" not in errors:
            secret = [name for name, value in headers.items() if SECRET_HEADER.search(name)]
            if secret and not all(_is_env_reference(headers[name]) for name in secret):
                errors["extra_headers"] = [
                    f"Credential headers ({', '.join(secret)}) are not stored in clear."
                ]
        if errors:
            raise serializers.ValidationError(errors)
        validated = super().to_internal_value(known)
        try:
            json_text_validate(extra)
        except serializers.ValidationError as error:
            raise serializers.ValidationError({"extra_params": error.detail}) from None
        validated["extra_params"] = extra
        return validated


class ModelInfoRequest(serializers.Serializer):
    """LiteLLM's ``model_info``: ``id`` and ``mode`` to columns, the rest kept as given."""

    id = serializers.CharField(max_length=200, required=False, allow_null=True)
    mode = serializers.ChoiceField(choices=Deployment.Mode.values, required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> dict:
        validated = super().to_internal_value(data)
        validated["model_info"] = {name: value for name, value in data.items() if name not in self.fields}
        json_text_validate(validated["model_info"])
        return validated


def _provider_split(model: str, custom_llm_provider: str | None) -> dict[str, str]:
    try:
        spec, provider_model = model_resolve(model, custom_llm_provider)
    except BadRequestError as error:
        raise serializers.ValidationError({"litellm_params": {"model": [error.message]}}) from None
    return {"provider": spec.name, "model": provider_model}


def _service_fields(params: dict, model_info: dict | None) -> dict[str, Any]:
    """Return the deployment fields of validated ``litellm_params`` and ``model_info`` (without extras)."""
    fields = {
        name: params[name] for name in ("api_base", "api_version", "rpm", "tpm", "timeout") if name in params
    }
    fields |= {name: params[name] for name in ("weight", "order") if name in params}
    if "model" in params:
        fields |= _provider_split(params["model"], params.get("custom_llm_provider"))
    if model_info:
        if model_info.get("id"):
            fields["model_id"] = model_info["id"]
        if model_info.get("mode"):
            fields["mode"] = model_info["mode"]
    return fields


class ModelNewRequest(RequestSerializer):
    model_name = serializers.CharField(max_length=200, help_text="The name clients ask for.")
    litellm_params = LitellmParamsRequest()
    model_info = ModelInfoRequest(required=False, allow_null=True)

    def validate(self, attrs: dict) -> dict:
        params, model_info = attrs["litellm_params"], attrs.get("model_info") or {}
        if not params.get("model"):
            raise serializers.ValidationError({"litellm_params": {"model": ["This field is required."]}})
        if model_info.get("id") and deployment_get(model_id=model_info["id"]) is not None:
            raise serializers.ValidationError({"model_info": {"id": ["A deployment with this id exists."]}})
        fields = _service_fields(params, model_info)
        fields |= {"model_name": attrs["model_name"], "extra_params": params["extra_params"]}
        fields["model_info"] = model_info.get("model_info", {})
        return {"api_key": params.get("api_key"), **fields}


class ModelUpdateRequest(RequestSerializer):
    model_name = serializers.CharField(max_length=200, required=False)
    litellm_params = LitellmParamsRequest(required=False)
    model_info = ModelInfoRequest(help_text="Must hold the deployment's id.")

    def validate(self, attrs: dict) -> dict:
        if not attrs["model_info"].get("id"):
            raise serializers.ValidationError({"model_info": {"id": ["This field is required."]}})
        return attrs

    def service_fields(self, deployment: Deployment) -> dict[str, Any]:
        """Return the changes to ``deployment``: given extras are merged into its own, null removes one."""
        params, model_info = (
            self.validated_data.get("litellm_params") or {},
            self.validated_data["model_info"],
        )
        fields = _service_fields(params, {"mode": model_info.get("mode")})
        if "model_name" in self.validated_data:
            fields["model_name"] = self.validated_data["model_name"]
        if params.get("extra_params"):
            merged = {**deployment.extra_params, **params["extra_params"]}
            fields["extra_params"] = {name: value for name, value in merged.items() if value is not None}
        if model_info.get("model_info"):
            merged = {**deployment.model_info, **model_info["model_info"]}
            fields["model_info"] = {name: value for name, value in merged.items() if value is not None}
        return {"api_key": params.get("api_key"), **fields}


class ModelDeleteRequest(RequestSerializer):
    id = serializers.CharField(max_length=200, help_text="The deployment's model_info.id.")


class ModelInfoQuery(serializers.Serializer):
    litellm_model_id = serializers.CharField(
        max_length=200, required=False, help_text="Only this deployment."
    )


class LitellmParamsResponse(serializers.Serializer):
    model = serializers.CharField()
    api_base = serializers.CharField(allow_null=True)
    api_version = serializers.CharField(allow_null=True)
    api_key = serializers.CharField(allow_null=True, help_text="Null, or an 'os.environ/NAME' reference.")
    rpm = serializers.IntegerField(allow_null=True)
    tpm = serializers.IntegerField(allow_null=True)
    timeout = serializers.FloatField(allow_null=True)
    weight = serializers.FloatField()
    order = serializers.IntegerField()


class ModelInfoResponse(serializers.Serializer):
    id = serializers.CharField()
    mode = serializers.CharField()


class DeploymentSerializer(serializers.Serializer):
    model_name = serializers.CharField()
    litellm_params = serializers.SerializerMethodField()
    model_info = serializers.SerializerMethodField()

    @extend_schema_field(LitellmParamsResponse)
    def get_litellm_params(self, deployment: Deployment) -> dict:
        api_key = f"{ENV_REFERENCE_PREFIX}{deployment.credential_env}" if deployment.credential_env else None
        return {
            **deployment.extra_params,
            "model": f"{deployment.provider}/{deployment.model}",
            "api_base": deployment.api_base or None,
            "api_version": deployment.api_version or None,
            "api_key": api_key,
            "rpm": deployment.rpm,
            "tpm": deployment.tpm,
            "timeout": deployment.timeout,
            "weight": deployment.weight,
            "order": deployment.order,
        }

    @extend_schema_field(ModelInfoResponse)
    def get_model_info(self, deployment: Deployment) -> dict:
        return {**deployment.model_info, "id": deployment.model_id, "mode": deployment.mode}


class ModelListResponse(serializers.Serializer):
    data = DeploymentSerializer(many=True)


class ModelDeleteResponse(serializers.Serializer):
    message = serializers.CharField()
