"""Render every error the way OpenAI does: ``{"error": {"message", "type", "param", "code"}}``.

The status is the one the official SDKs map to the right exception class (401 AuthenticationError,
403 PermissionDeniedError, 404 NotFoundError, 429 RateLimitError, ...).
"""

from __future__ import annotations

import orjson
from django.http import HttpResponse

from providers.exceptions import APIError, parse_retry_after


def _limit_headers(error: APIError) -> dict[str, str]:
    """Return the gateway's own rate-limit headers of an error (an upstream's are not passed on)."""
    if error.provider is not None:
        return {}
    return {
        name: value
        for name, value in error.headers.items()
        if name.lower().startswith("x-ratelimit-") or name.lower() == "x-should-retry"
    }


def error_response(
    error: APIError, status: int | None = None, headers: dict[str, str] | None = None
) -> HttpResponse:
    """Return the HTTP response for an error, in OpenAI's shape (with the request's own headers)."""
    response = HttpResponse(
        orjson.dumps(error.to_openai_error()),
        status=status or error.status_code,
        content_type="application/json",
        headers={**_limit_headers(error), **(headers or {})},
    )
    retry_after = error.retry_after if error.retry_after is not None else parse_retry_after(error.headers)
    if retry_after is not None:
        response["Retry-After"] = str(max(int(retry_after + 0.999), 0))
    return response


def openai_error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> bytes:
    """Return an OpenAI-shaped error body for errors that are not exceptions of the hierarchy."""
    return orjson.dumps({"error": {"message": message, "type": error_type, "param": param, "code": code}})
