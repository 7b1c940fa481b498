"""Azure OpenAI: OpenAI's wire format under per-deployment paths, ``api-version`` and ``api-key``.

``azure/<deployment>`` names the Azure deployment, which goes in the path; the body carries no model.
Reference: https://learn.microsoft.com/azure/ai-services/openai/reference
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from providers.adapters.openai import (
    PATHS,
    auth_headers,
    map_error,
    parse_response,
    parse_stream_event,
    request_body,
)
from providers.exceptions import BadRequestError
from providers.registry import ProviderSpec
from providers.upstream import Operation, ResolvedDeployment, UpstreamRequest

__all__ = ["build_request", "map_error", "parse_response", "parse_stream_event"]

DEFAULT_API_VERSION = "2024-10-21"  # the latest GA data-plane version when this was written


def build_request(
    operation: Operation, body: Mapping[str, Any], deployment: ResolvedDeployment, spec: ProviderSpec
) -> UpstreamRequest:
    """Return the HTTP request for a call to an Azure OpenAI deployment."""
    if not deployment.api_base:
        raise BadRequestError(
            "Azure needs api_base (your resource endpoint, https://<name>.openai.azure.com): pass api_base= "
            "or set AZURE_API_BASE.",
            provider="azure",
            model=deployment.model,
            param="api_base",
        )
    payload = request_body(operation, body, deployment, spec)
    payload.pop("model")  # Azure takes the deployment from the path.
    base = deployment.api_base.rstrip("/")
    if not base.endswith("/openai"):
        base += "/openai"
    version = quote(deployment.api_version or DEFAULT_API_VERSION)
    url = f"{base}/deployments/{quote(deployment.model, safe='')}{PATHS[operation]}?api-version={version}"
    headers = {
        "Content-Type": "application/json",
        **auth_headers(spec, deployment.api_key),
        **deployment.extra_headers,
    }
    return UpstreamRequest("POST", url, headers, orjson.dumps(payload), stream=bool(payload.get("stream")))
