"""Anthropic's model list -> OpenAI's.

Reference: https://docs.anthropic.com/en/api/models-list (``GET /v1/models``: ``data`` items carry
``id``, ``display_name`` and an RFC 3339 ``created_at``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from providers.adapters.anthropic.messages import API_VERSION
from providers.registry import ProviderSpec
from providers.upstream import ResolvedDeployment, UpstreamRequest


def models_url(api_base: str) -> str:
    """Return the model list URL for an api_base given with or without its ``/v1``."""
    return f"{api_base.rstrip('/').removesuffix('/v1')}/v1/models"


def build_models_request(deployment: ResolvedDeployment, spec: ProviderSpec) -> UpstreamRequest:
    """Return the request listing the models the key may use."""
    headers = {"anthropic-version": deployment.api_version or API_VERSION}
    if deployment.api_key:
        headers["x-api-key"] = deployment.api_key
    return UpstreamRequest(
        method="GET",
        url=models_url(deployment.api_base or spec.api_base or ""),
        headers={**headers, **deployment.extra_headers},
    )


def _created(value: Any) -> int:
    """Return an RFC 3339 time as Unix seconds (OpenAI's ``created``); 0 when it is missing."""
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        return 0


def parse_models_response(payload: Any, deployment: ResolvedDeployment) -> dict[str, Any]:
    """Return Anthropic's model list in OpenAI's shape."""
    models = [
        {
            "id": item["id"],
            "object": "model",
            "created": _created(item.get("created_at")),
            "owned_by": "anthropic",
        }
        for item in payload.get("data") or ()
    ]
    return {"object": "list", "data": models}
