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
    parse_models_response,
    parse_response,
    parse_stream_event,
    request_body,
)
from providers.exceptions import BadRequestError
from providers.registry import ProviderSpec
from providers.upstream import Operation, ResolvedDeployment, UpstreamRequest

__all__ = [
    "build_models_request",
    "build_request",
    "map_error",
    "parse_models_response",
    "parse_response",
    "parse_stream_event",
]

DEFAULT_API_VERSION = "2024-10-21"  # the latest GA data-plane version when this was written


def _openai_base(deployment: ResolvedDeployment) -> str:
    """Return the resource endpoint with its ``/openai`` path, whether or not api_base had it."""
    if not deployment.api_base:
        raise BadRequestError(
            "Azure needs api_base (your resource endpoint, https://<name>.openai.azure.com): pass api_base= "
            "or set AZURE_API_BASE.",
            provider="azure",
            model=deployment.model,
            param="api_base",
        )
    base = deployment.api_base.rstrip("/")
    return base if base.endswith("/openai") else base + "/openai"


def build_request(
    operation: Operation, body: Mapping[str, Any], deployment: ResolvedDeployment, spec: ProviderSpec
) -> UpstreamRequest:
    """Return the HTTP request for a call to an Azure OpenAI deployment."""
    base = _openai_base(deployment)
    payload = request_body(operation, body, deployment, spec)
    payload.pop("model")  # Azure takes the deployment from the path.
    version = quote(deployment.api_version or DEFAULT_API_VERSION)
    url = f"{base}/deployments/{quote(deployment.model, safe='')}{PATHS[operation]}?api-version={version}"
    headers = {
        "Content-Type": "application/json",
        **auth_headers(spec, deployment.api_key),
        **deployment.extra_headers,
    }
    return UpstreamRequest("POST", url, headers, orjson.dumps(payload), stream=bool(payload.get("stream")))


def build_models_request(deployment: ResolvedDeployment, spec: ProviderSpec) -> UpstreamRequest:
    """Return the request listing the resource's models: ``GET {endpoint}/openai/models?api-version=``.

    Reference: https://learn.microsoft.com/azure/ai-services/openai/reference (Models - List).
    """
    version = quote(deployment.api_version or DEFAULT_API_VERSION)
    headers = {**auth_headers(spec, deployment.api_key), **deployment.extra_headers}
    return UpstreamRequest("GET", f"{_openai_base(deployment)}/models?api-version={version}", headers)
