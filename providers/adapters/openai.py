"""OpenAI, and every OpenAI-compatible provider declared in the registry.

OpenAI's wire format is the library's own, so requests pass through with only the provider's model
id set and its rejected parameters removed, and responses come back untouched.
Reference: https://platform.openai.com/docs/api-reference
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers.exceptions import APIError, BadRequestError, error_from_upstream
from providers.params import UNSUPPORTED, ParamSpec, translate_params
from providers.registry import ProviderSpec
from providers.upstream import Operation, ResolvedDeployment, SSEEvent, StreamState, UpstreamRequest

PATHS: dict[str, str] = {
    "chat": "/chat/completions",
    "text_completion": "/completions",
    "embedding": "/embeddings",
    "image_generation": "/images/generations",
}

DONE = "[DONE]"


def params_table(spec: ProviderSpec) -> dict[str, ParamSpec]:
    """Return the parameter table: every OpenAI parameter passes, except the provider's exclusions."""
    return dict.fromkeys(spec.excluded_params, UNSUPPORTED)


def auth_headers(spec: ProviderSpec, api_key: str | None) -> dict[str, str]:
    """Return the authentication header the provider expects, if a key is given."""
    if not api_key or spec.auth == "none":
        return {}
    if spec.auth == "api-key":
        return {"api-key": api_key}
    if spec.auth == "x-api-key":
        return {"x-api-key": api_key}
    return {"Authorization": f"Bearer {api_key}"}


def request_body(
    operation: Operation, body: Mapping[str, Any], deployment: ResolvedDeployment, spec: ProviderSpec
) -> dict[str, Any]:
    """Return the JSON body to send: the caller's parameters for the provider's model id."""
    params = translate_params(
        body,
        params_table(spec),
        provider=spec.name,
        model=deployment.model,
        drop_params=deployment.drop_params,
    )
    if not params.get("stream"):
        params.pop("stream_options", None)  # OpenAI rejects stream_options on non-streaming calls.
    return {"model": deployment.model, **params}


def _api_base(deployment: ResolvedDeployment, spec: ProviderSpec) -> str:
    if not deployment.api_base:
        raise BadRequestError(
            f"{spec.name} needs an api_base (pass api_base= or set {' / '.join(spec.api_base_env) or 'it'}).",
            provider=spec.name,
            model=deployment.model,
            param="api_base",
        )
    return deployment.api_base.rstrip("/")


def build_request(
    operation: Operation, body: Mapping[str, Any], deployment: ResolvedDeployment, spec: ProviderSpec
) -> UpstreamRequest:
    """Return the HTTP request for an OpenAI-format call."""
    api_base = _api_base(deployment, spec)
    payload = request_body(operation, body, deployment, spec)
    headers = {
        "Content-Type": "application/json",
        **auth_headers(spec, deployment.api_key),
        **deployment.extra_headers,
    }
    return UpstreamRequest(
        method="POST",
        url=api_base + PATHS[operation],
        headers=headers,
        body=orjson.dumps(payload),
        stream=bool(payload.get("stream")),
    )


def build_models_request(deployment: ResolvedDeployment, spec: ProviderSpec) -> UpstreamRequest:
    """Return the request listing the models the key may use: ``GET {api_base}/models``."""
    headers = {**auth_headers(spec, deployment.api_key), **deployment.extra_headers}
    return UpstreamRequest(method="GET", url=_api_base(deployment, spec) + "/models", headers=headers)


def parse_models_response(payload: Any, deployment: ResolvedDeployment) -> dict[str, Any]:
    """Return the model list as is: it is already in OpenAI's format."""
    return payload


def parse_response(operation: Operation, payload: Any, deployment: ResolvedDeployment) -> dict[str, Any]:
    """Return the response as is: it is already in OpenAI's format."""
    return payload


def parse_stream_event(operation: Operation, state: StreamState, event: SSEEvent) -> list[dict[str, Any]]:
    """Return the chunk an SSE event carries; keep usage on the state instead of emitting it."""
    if event.data == DONE:
        state.finished = True
        return []
    chunk = orjson.loads(event.data)
    if chunk.get("error"):
        raise map_error(500, chunk, event.data, {}, state.deployment)
    usage = chunk.pop("usage", None)
    if usage:
        state.usage = usage
    state.id = chunk.get("id") or state.id
    state.model = chunk.get("model") or state.model
    state.created = chunk.get("created") or state.created
    return [chunk] if chunk.get("choices") else []


def map_error(
    status: int, payload: Any, text: str, headers: Mapping[str, str], deployment: ResolvedDeployment
) -> APIError:
    """Return the exception for an OpenAI-format error body (or any body an OpenAI-like server sends)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or text)
        code, error_type, param = error.get("code"), error.get("type"), error.get("param")
    else:
        # vLLM and FastAPI servers answer {"detail": ...} or {"message": ...}; some send plain text.
        detail = payload.get("detail") or payload.get("message") if isinstance(payload, dict) else None
        message = str(error or detail or text or f"HTTP {status}")
        code = error_type = param = None
    return error_from_upstream(
        status,
        message,
        provider=deployment.provider,
        model=deployment.model,
        code=str(code) if code is not None else None,
        error_type=error_type,
        param=param,
        headers=headers,
        body=payload,
    )
