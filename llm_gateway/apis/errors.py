"""Render every error the way OpenAI does: ``{"error": {"message", "type", "param", "code"}}``.

The status is the one the official SDKs map to the right exception class (401 AuthenticationError,
403 PermissionDeniedError, 404 NotFoundError, 429 RateLimitError, ...). Django's error views
(``handler400``, ``handler403``, ``handler404``, ``handler500`` in the root URLconf) answer in the same
shape on every path, the admin's included: a bug is a JSON 500 carrying a request id, logged with its
traceback under that id, never an HTML page or a traceback for the client.
"""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus

import orjson
from django.http import HttpRequest, HttpResponse

from providers.exceptions import APIError, parse_retry_after

logger = logging.getLogger(__name__)
JSON = "application/json"
_STATUS_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}


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


def _error(status: int, message: str, error_type: str, code: str) -> HttpResponse:
    return HttpResponse(openai_error_body(message, error_type, code=code), status=status, content_type=JSON)


def status_response(status: int, message: str | None = None, code: str | None = None) -> HttpResponse:
    """Return a 4xx in OpenAI's shape for a status the request path answers before any view runs."""
    error_type = _STATUS_TYPES.get(status, "invalid_request_error")
    return _error(status, message or HTTPStatus(status).phrase, error_type, code or error_type)


def internal_error_response(where: str) -> HttpResponse:
    """Log the exception being handled under a new request id; return the JSON 500 that names the id.

    Call it from an ``except`` block (or Django's ``handler500``, which runs in one).
    """
    request_id = f"req-{uuid.uuid4().hex}"
    logger.error("Internal server error on %s (request id %s)", where, request_id, exc_info=True)
    body = {
        "error": {
            "message": "Internal server error",
            "type": "internal_server_error",
            "param": None,
            "code": "internal_server_error",
            "request_id": request_id,
        }
    }
    response = HttpResponse(orjson.dumps(body), status=500, content_type=JSON)
    response["x-request-id"] = request_id
    return response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Answer Django's 400 (a suspicious operation, such as a Host header not in ALLOWED_HOSTS)."""
    return _error(400, "Bad request.", "invalid_request_error", "bad_request")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Answer Django's 403."""
    return _error(403, "You may not do this.", "permission_error", "permission_denied")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Answer Django's 404: no route for this path (or an object the view did not find)."""
    return _error(404, f"Not found: {request.path}", "not_found_error", "not_found")


def server_error(request: HttpRequest) -> HttpResponse:
    """Answer Django's 500: log the exception with a request id and answer it in OpenAI's shape."""
    response = internal_error_response(request.path)
    # Logged above with the request id; Django's own "Internal Server Error" line would repeat the
    # traceback without it (django.utils.log.log_response skips a response marked as logged).
    response._has_been_logged = True
    return response
