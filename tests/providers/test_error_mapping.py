"""Upstream failures reach callers of completion() and acompletion() as the library's exceptions.

Every case goes over real loopback HTTP to the fake upstream, which answers with the scripted fault.
"""

import asyncio
import socket

import pytest

from llm_gateway import acompletion, completion
from llm_gateway.exceptions import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
    UnprocessableEntityError,
)
from providers import transport
from tests.fakes.openai_responses import chat_stream_events, openai_error
from tests.fakes.upstream import Reply

MODEL = "openai/gpt-4o-mini"
API_KEY = "sk-test"
MESSAGES = [{"role": "user", "content": "Hi"}]
CONTEXT_MESSAGE = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted in "
    "130000 tokens. Please reduce the length of the messages."
)
AZURE_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry."
)
AZURE_FILTER_BODY = {
    "error": {
        "code": "content_filter",
        "message": AZURE_FILTER_MESSAGE,
        "param": "prompt",
        "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation"},
    }
}


def _complete_sync(**params):
    return completion(**params)


async def _acompletion_then_close(**params):
    try:
        return await acompletion(**params)
    finally:
        await transport.aclose()  # this loop ends with asyncio.run: release its HTTP session


def _complete_async(**params):
    return asyncio.run(_acompletion_then_close(**params))


@pytest.fixture(params=[_complete_sync, _complete_async], ids=["completion", "acompletion"])
def complete(request):
    """Call completion() or acompletion() with the usual model, messages and credentials."""

    def call(**params):
        params = {"model": MODEL, "messages": MESSAGES, "api_key": API_KEY, **params}
        return request.param(**params)

    return call


@pytest.fixture
async def http_session():
    """Close the async HTTP session of the test's event loop when the test ends."""
    yield
    await transport.aclose()


@pytest.fixture
def closed_port_url() -> str:
    """Return the URL of a loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


STATUS_CASES = [
    pytest.param(
        openai_error(400, CONTEXT_MESSAGE, "invalid_request_error", "context_length_exceeded", "messages"),
        ContextWindowExceededError,
        400,
        CONTEXT_MESSAGE,
        id="400-context_length_exceeded",
    ),
    pytest.param(
        openai_error(
            400,
            "Your request was rejected as a result of our safety system.",
            "invalid_request_error",
            "content_policy_violation",
        ),
        ContentPolicyViolationError,
        400,
        "Your request was rejected as a result of our safety system.",
        id="400-content_policy_violation",
    ),
    pytest.param(
        openai_error(400, "Unrecognized request argument supplied: foo", "invalid_request_error"),
        BadRequestError,
        400,
        "Unrecognized request argument supplied: foo",
        id="400-plain",
    ),
    pytest.param(
        openai_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
        AuthenticationError,
        401,
        "Incorrect API key provided.",
        id="401",
    ),
    pytest.param(
        openai_error(403, "You are not allowed to sample from this model", "invalid_request_error"),
        PermissionDeniedError,
        403,
        "You are not allowed to sample from this model",
        id="403",
    ),
    pytest.param(
        openai_error(
            404, "The model `gpt-4o-mini` does not exist", "invalid_request_error", "model_not_found"
        ),
        NotFoundError,
        404,
        "The model `gpt-4o-mini` does not exist",
        id="404",
    ),
    pytest.param(
        openai_error(422, "Unprocessable entity: messages[0].role", "invalid_request_error"),
        UnprocessableEntityError,
        422,
        "Unprocessable entity: messages[0].role",
        id="422",
    ),
    pytest.param(
        openai_error(500, "The server had an error while processing your request.", "server_error"),
        InternalServerError,
        500,
        "The server had an error while processing your request.",
        id="500",
    ),
    pytest.param(
        openai_error(503, "The engine is currently overloaded, please try again later", "server_error"),
        ServiceUnavailableError,
        503,
        "The engine is currently overloaded, please try again later",
        id="503",
    ),
    pytest.param(
        Reply(status=400, json={"detail": "max_tokens must be at least 1, got -3."}),
        BadRequestError,
        400,
        "max_tokens must be at least 1, got -3.",
        id="vllm-detail-body",
    ),
    pytest.param(
        Reply(
            status=502,
            body=b"upstream connect error or disconnect/reset before headers",
            headers={"Content-Type": "text/plain"},
        ),
        InternalServerError,
        502,
        "upstream connect error or disconnect/reset before headers",
        id="plain-text-body",
    ),
]


@pytest.mark.parametrize(("reply", "error_class", "status_code", "upstream_message"), STATUS_CASES)
def test_it_maps_an_upstream_error_status_to_its_exception(
    upstream, complete, reply, error_class, status_code, upstream_message
):
    upstream.enqueue(reply)

    with pytest.raises(error_class) as caught:
        complete(api_base=upstream.url)

    error = caught.value
    assert type(error) is error_class
    assert error.status_code == status_code
    assert error.provider == "openai"
    assert error.model == "gpt-4o-mini"
    assert upstream_message in error.message
    assert upstream_message in str(error)
    assert len(upstream.requests) == 1


def test_a_context_window_error_is_a_bad_request(upstream, complete):
    upstream.enqueue(
        openai_error(400, CONTEXT_MESSAGE, "invalid_request_error", "context_length_exceeded", "messages")
    )

    with pytest.raises(BadRequestError) as caught:
        complete(api_base=upstream.url)

    assert isinstance(caught.value, ContextWindowExceededError)
    assert caught.value.retryable is False
    assert caught.value.param == "messages"
    assert caught.value.code == "context_length_exceeded"


def test_it_maps_azure_content_filter_to_a_content_policy_violation(upstream, complete):
    upstream.enqueue(Reply(status=400, json=AZURE_FILTER_BODY))

    with pytest.raises(ContentPolicyViolationError) as caught:
        complete(model="azure/my-deployment", api_base=upstream.url, api_version="2024-10-21")

    error = caught.value
    assert error.status_code == 400
    assert error.provider == "azure"
    assert error.model == "my-deployment"
    assert error.message == AZURE_FILTER_MESSAGE
    assert error.code == "content_filter"
    assert error.param == "prompt"
    request = upstream.last
    assert request.path == "/openai/deployments/my-deployment/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}


def test_a_rate_limit_carries_retry_after_and_is_retryable(upstream, complete):
    upstream.enqueue(
        Reply(
            status=429,
            json={"error": {"message": "Rate limit reached for requests", "type": "requests", "code": None}},
            headers={"retry-after": "7"},
        )
    )

    with pytest.raises(RateLimitError) as caught:
        complete(api_base=upstream.url)

    error = caught.value
    assert error.status_code == 429
    assert error.retry_after == 7
    assert error.retryable is True
    assert "Rate limit reached for requests" in error.message
    assert len(upstream.requests) == 1  # num_retries defaults to 0


@pytest.mark.parametrize(
    ("error_class", "retryable"),
    [
        (InternalServerError, True),
        (ServiceUnavailableError, True),
        (RateLimitError, True),
        (Timeout, True),
        (APIConnectionError, True),
        (BadRequestError, False),
        (AuthenticationError, False),
        (NotFoundError, False),
    ],
)
def test_only_transient_errors_are_retryable(error_class, retryable):
    assert error_class("boom").retryable is retryable


def test_a_malformed_success_body_is_a_bad_gateway_error(upstream, complete):
    upstream.enqueue(Reply(body=b"{not json"))

    with pytest.raises(BadGatewayError) as caught:
        complete(api_base=upstream.url)

    error = caught.value
    assert error.status_code == 502
    assert error.provider == "openai"
    assert error.model == "gpt-4o-mini"
    assert "{not json" in error.message


def test_a_reply_slower_than_the_timeout_raises_timeout(upstream, complete):
    upstream.enqueue(Reply(delay=2))

    with pytest.raises(Timeout) as caught:
        complete(api_base=upstream.url, timeout=0.3)

    error = caught.value
    assert error.retryable is True
    assert error.provider == "openai"
    assert error.model == "gpt-4o-mini"
    assert len(upstream.requests) == 1


def test_a_refused_connection_raises_api_connection_error(complete, closed_port_url):
    with pytest.raises(APIConnectionError) as caught:
        complete(api_base=closed_port_url)

    error = caught.value
    assert error.retryable is True
    assert error.provider == "openai"
    assert error.model == "gpt-4o-mini"


def _dropping_stream() -> Reply:
    events = chat_stream_events("gpt-4o-mini", ["Hello", " there", " friend"], include_usage=False)
    return Reply(sse=events, drop_after=2)


def test_a_stream_dropped_midway_raises_api_connection_error_while_iterating(upstream):
    upstream.enqueue(_dropping_stream())
    stream = completion(model=MODEL, messages=MESSAGES, api_key=API_KEY, api_base=upstream.url, stream=True)
    received = []

    with pytest.raises(APIConnectionError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)

    assert received == ["", "Hello"]
    assert caught.value.provider == "openai"
    assert caught.value.model == "gpt-4o-mini"


async def test_an_async_stream_dropped_midway_raises_api_connection_error_while_iterating(
    upstream, http_session
):
    upstream.enqueue(_dropping_stream())
    stream = await acompletion(
        model=MODEL, messages=MESSAGES, api_key=API_KEY, api_base=upstream.url, stream=True
    )
    received = []

    with pytest.raises(APIConnectionError) as caught:
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content)

    assert received == ["", "Hello"]
    assert caught.value.provider == "openai"


SECRET_KEY = "sk-test-4f9a1c7e2b8d0a6f"


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(openai_error(401, "Incorrect API key provided.", "invalid_request_error"), id="401"),
        pytest.param(openai_error(500, "The server had an error.", "server_error"), id="500"),
        pytest.param(Reply(body=b"{not json"), id="malformed"),
        pytest.param(Reply(delay=2), id="timeout"),
    ],
)
def test_the_api_key_never_appears_in_an_error(upstream, complete, reply):
    upstream.enqueue(reply)

    with pytest.raises(APIError) as caught:
        complete(api_base=upstream.url, api_key=SECRET_KEY, timeout=0.3)

    error = caught.value
    assert upstream.last.headers["Authorization"] == f"Bearer {SECRET_KEY}"  # it was sent, and only there
    assert SECRET_KEY not in str(error)
    assert SECRET_KEY not in error.message
    assert SECRET_KEY not in str(error.to_openai_error())


def test_the_api_key_never_appears_in_a_connection_error(complete, closed_port_url):
    with pytest.raises(APIConnectionError) as caught:
        complete(api_base=closed_port_url, api_key=SECRET_KEY)

    assert SECRET_KEY not in str(caught.value)
    assert SECRET_KEY not in caught.value.message


def test_an_api_key_echoed_by_the_upstream_is_redacted_from_the_error(upstream, complete):
    upstream.enqueue(
        openai_error(
            401,
            f"Incorrect API key provided: {SECRET_KEY}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )
    )

    with pytest.raises(AuthenticationError) as caught:
        complete(api_base=upstream.url, api_key=SECRET_KEY)

    assert "Incorrect API key provided" in caught.value.message
    assert SECRET_KEY not in str(caught.value)
    assert SECRET_KEY not in caught.value.message


def test_to_openai_error_renders_openai_error_shape(upstream, complete):
    upstream.enqueue(
        openai_error(400, CONTEXT_MESSAGE, "invalid_request_error", "context_length_exceeded", "messages")
    )

    with pytest.raises(ContextWindowExceededError) as caught:
        complete(api_base=upstream.url)

    assert caught.value.to_openai_error() == {
        "error": {
            "message": f"openai/gpt-4o-mini: {CONTEXT_MESSAGE}",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }


def test_to_openai_error_of_a_rate_limit_has_its_type(upstream, complete):
    upstream.enqueue(
        Reply(
            status=429,
            json={"error": {"message": "Slow down", "type": "requests", "param": None, "code": "rate_limit"}},
            headers={"retry-after": "1"},
        )
    )

    with pytest.raises(RateLimitError) as caught:
        complete(api_base=upstream.url)

    body = caught.value.to_openai_error()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["code"] == "rate_limit"
    assert "Slow down" in body["error"]["message"]
