"""Anthropic's errors -> the library's exception hierarchy.

Anthropic answers ``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``,
and may send the same ``error`` object as an event in the middle of a 200 stream.
Reference: https://docs.anthropic.com/en/api/errors
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.exceptions import APIError, error_from_upstream
from providers.upstream import ResolvedDeployment

# The HTTP status each documented error type goes with, to map an error event received mid-stream
# (the stream itself answered 200). https://docs.anthropic.com/en/api/errors#http-errors
ERROR_STATUSES: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def map_error(
    status: int, payload: Any, text: str, headers: Mapping[str, str], deployment: ResolvedDeployment
) -> APIError:
    """Return the exception for an Anthropic error answer (or a proxy's non-JSON one)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or text or f"HTTP {status}")
        error_type = error.get("type")
    else:
        # A 413 comes from Cloudflare before the request reaches the API: the body may not be JSON.
        message = str(error or text or f"HTTP {status}")
        error_type = None
    return error_from_upstream(
        status,
        message,
        provider=deployment.provider,
        model=deployment.model,
        error_type=error_type,
        headers=headers,
        body=payload,
    )


def stream_error(payload: Mapping[str, Any], text: str, deployment: ResolvedDeployment) -> APIError:
    """Return the exception for an ``error`` event, with the status its type would have had."""
    error = payload.get("error")
    error_type = error.get("type") if isinstance(error, dict) else None
    return map_error(ERROR_STATUSES.get(str(error_type), 500), payload, text, {}, deployment)
