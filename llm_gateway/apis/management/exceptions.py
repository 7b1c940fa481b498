"""DRF's exception handler, rendering every error in OpenAI's shape.

``{"error": {"message", "type", "param", "code"}}``, with the status the OpenAI SDKs map to the right
exception class: 400 invalid_request_error, 401 authentication_error, 403 permission_error,
404 not_found_error, 429 rate_limit_error. Errors of the provider hierarchy keep their own status and
body. Anything else is a bug and is left to Django (a 500, logged).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import set_rollback

from providers.exceptions import APIError, parse_retry_after

# HTTP status -> OpenAI error type (https://platform.openai.com/docs/guides/error-codes); by status
# rather than by class, because DRF answers NotAuthenticated with 403 when no scheme is advertised.
ERROR_TYPES: dict[int, str] = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def _errors(detail: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(field path, message)`` for every message of a DRF error detail, nested or not."""
    if isinstance(detail, dict):
        for name, value in detail.items():
            name = "" if name in (NON_FIELD_ERRORS, "non_field_errors") else str(name)
            yield from _errors(value, f"{path}.{name}" if path and name else path or name)
    elif isinstance(detail, list):
        for item in detail:
            yield from _errors(item, path)
    else:
        yield path, str(detail)


def _openai_error(message: str, error_type: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _validation_body(detail: Any) -> dict:
    errors = list(_errors(detail))
    message = "; ".join(f"{path}: {text}" if path else text for path, text in errors)
    param = next((path for path, _ in errors if path), None)
    return _openai_error(message or "Invalid request.", "invalid_request_error", param)


def _error_type(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def _code(exc: exceptions.APIException) -> str | None:
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return "invalid_api_key"  # what OpenAI (and the inference API) answer for a bad key
    if isinstance(exc, exceptions.ParseError):
        return "invalid_json"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else None


def _provider_error_response(exc: APIError) -> Response:
    headers = {}
    retry_after = exc.retry_after if exc.retry_after is not None else parse_retry_after(exc.headers)
    if retry_after is not None:
        headers["Retry-After"] = str(max(int(retry_after + 0.999), 0))
    return Response(exc.to_openai_error(), status=exc.status_code, headers=headers)


def openai_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Return the response for an exception raised in a DRF view, in OpenAI's error shape."""
    if isinstance(exc, APIError):
        set_rollback()
        return _provider_error_response(exc)
    # A service's refusal may name the field it refuses (llm_gateway.admin_locks.AdminLockError).
    param = getattr(exc, "param", None)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, DjangoValidationError):
        # A model's full_clean() in a service: the same 400 as a serializer's.
        exc = exceptions.ValidationError(as_serializer_error(exc))
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, exceptions.ValidationError):
        body = _validation_body(exc.detail)
    else:
        body = _openai_error(str(exc.detail), _error_type(exc.status_code), param=param, code=_code(exc))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)
