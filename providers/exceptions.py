"""The one exception hierarchy of the provider layer.

Every upstream failure becomes one of these classes, chosen by HTTP status and the provider's error
type. Each carries what a caller needs to decide what to do next: the status to answer with, the
OpenAI error ``type`` to render, whether a retry can help, and which provider and model failed.

Class names follow LiteLLM's so its users can keep their ``except`` clauses; ``Timeout`` keeps that
name (not ``...Error``) for the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping


class APIError(Exception):
    """Base class: an LLM call failed."""

    status_code: int = 500
    type: str = "api_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        if status_code is not None:
            self.status_code = status_code
        self.code = code
        self.param = param
        self.retry_after = retry_after
        self.body = body
        self.headers = dict(headers or {})

    @property
    def upstream_status(self) -> int:
        """Return the HTTP status the upstream answered with (or the one we chose for it)."""
        return self.status_code

    def __str__(self) -> str:
        where = "/".join(part for part in (self.provider, self.model) if part)
        return f"{where}: {self.message}" if where else self.message

    def redact(self, secret: str | None) -> APIError:
        """Remove a credential the upstream echoed back (OpenAI's 401 quotes the key it was given)."""
        if secret and len(secret) >= 8:
            masked = f"{secret[:3]}...{secret[-4:]}"
            self.message = self.message.replace(secret, masked)
            self.args = (self.message,)
            self.body = None  # the raw body may quote it too; the message keeps what callers need
        return self

    def to_openai_error(self) -> dict:
        """Return the error as OpenAI's JSON body: ``{"error": {message, type, param, code}}``."""
        return {"error": {"message": str(self), "type": self.type, "param": self.param, "code": self.code}}


class BadRequestError(APIError):
    status_code = 400
    type = "invalid_request_error"


class ContextWindowExceededError(BadRequestError):
    """The prompt (plus requested output) does not fit the model's context window."""


class ContentPolicyViolationError(BadRequestError):
    """The provider refused the input or output under its content policy."""


class UnsupportedParamsError(BadRequestError):
    """A parameter was given that the provider cannot take (and ``drop_params`` was not set)."""


class AuthenticationError(APIError):
    status_code = 401
    type = "authentication_error"


class PermissionDeniedError(APIError):
    status_code = 403
    type = "permission_error"


class NotFoundError(APIError):
    status_code = 404
    type = "not_found_error"


class Timeout(APIError):
    status_code = 408
    type = "timeout"
    retryable = True


class UnprocessableEntityError(APIError):
    status_code = 422
    type = "invalid_request_error"


class RateLimitError(APIError):
    status_code = 429
    type = "rate_limit_error"
    retryable = True


class BudgetExceededError(RateLimitError):
    """A hard budget would be exceeded: not retryable until the budget resets or is raised."""

    type = "budget_exceeded"
    retryable = False


class InternalServerError(APIError):
    status_code = 500
    type = "api_error"
    retryable = True


class BadGatewayError(InternalServerError):
    """The upstream answered with something that is not a valid response (malformed body)."""

    status_code = 502


class ServiceUnavailableError(APIError):
    status_code = 503
    type = "service_unavailable"
    retryable = True


class APIConnectionError(APIError):
    """The upstream could not be reached, or the connection broke mid-response."""

    status_code = 500
    type = "api_connection_error"
    retryable = True


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: Timeout,
    409: InternalServerError,  # OpenAI documents 409 as a retryable conflict.
    413: ContextWindowExceededError,  # Anthropic: request_too_large.
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: InternalServerError,
    502: InternalServerError,
    503: ServiceUnavailableError,
    504: Timeout,
    529: ServiceUnavailableError,  # Anthropic: overloaded_error.
}


def error_class_for_status(status: int) -> type[APIError]:
    """Return the exception class for an upstream HTTP status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return InternalServerError
    if status >= 400:
        return BadRequestError
    return APIError


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Return the seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds), if present."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(float(lowered["retry-after-ms"]) / 1000, 0.0)
        if "retry-after" in lowered:
            return max(float(lowered["retry-after"]), 0.0)
    except ValueError:
        return None  # An HTTP date: rare from LLM providers; fall back to our own backoff.
    return None


# Phrases providers use for an over-long prompt or a policy refusal, when no error code says so.
# OpenAI: code "context_length_exceeded"; Anthropic: "prompt is too long"; vLLM/others vary.
_CONTEXT_WINDOW_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_CONTEXT_WINDOW_PHRASES = (
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "input is too long",
    "exceeds the context",
    "reduce the length",
)
_CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "content_filter", "content_filtered"})
_CONTENT_POLICY_PHRASES = ("content management policy", "content policy", "safety system")


def error_from_upstream(
    status: int,
    message: str,
    *,
    provider: str | None,
    model: str | None,
    code: str | None = None,
    error_type: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: object = None,
) -> APIError:
    """Return the exception for an upstream error by its status, code and message."""
    lowered = message.lower()
    cls: type[APIError]
    if status in (400, 413, 422) and (
        code in _CONTEXT_WINDOW_CODES or any(phrase in lowered for phrase in _CONTEXT_WINDOW_PHRASES)
    ):
        cls = ContextWindowExceededError
    elif status == 400 and (
        code in _CONTENT_POLICY_CODES or any(phrase in lowered for phrase in _CONTENT_POLICY_PHRASES)
    ):
        cls = ContentPolicyViolationError
    else:
        cls = error_class_for_status(status)
    error = cls(
        message,
        provider=provider,
        model=model,
        status_code=status if cls is error_class_for_status(status) else None,
        code=code or error_type,
        param=param,
        retry_after=parse_retry_after(headers or {}),
        body=body,
        headers=headers,
    )
    return error
