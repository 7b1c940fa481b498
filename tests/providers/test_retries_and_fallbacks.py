"""Retries of transient failures and fallbacks to other models, through completion() and acompletion().

Upstream failures are scripted on the fake upstream and every attempt is a real loopback request, so
the recorded requests say how many attempts were made and which model each one asked for. Scripted
429s carry ``retry-after: 0`` so that no test waits on a real backoff.
"""

import pytest

from llm_gateway import acompletion, completion
from llm_gateway.exceptions import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
    RateLimitError,
    ServiceUnavailableError,
)
from providers import transport
from providers.resilience import (
    INITIAL_BACKOFF,
    MAX_BACKOFF,
    MAX_RETRY_AFTER,
    awith_retries,
    backoff_delay,
    with_retries,
)
from tests.fakes.openai_responses import CONTENT, chat_stream_events, openai_error
from tests.fakes.upstream import Reply

MODEL = "openai/gpt-4o-mini"
API_KEY = "sk-test"
MESSAGES = [{"role": "user", "content": "Hi"}]


def _rate_limited(message: str = "Rate limit reached", retry_after: str = "0") -> Reply:
    return Reply(
        status=429,
        json={
            "error": {"message": message, "type": "requests", "param": None, "code": "rate_limit_exceeded"}
        },
        headers={"retry-after": retry_after},
    )


def _server_error(message: str = "The server had an error while processing your request.") -> Reply:
    return openai_error(500, message, "server_error")


def _context_window_error() -> Reply:
    return openai_error(
        400,
        "This model's maximum context length is 128000 tokens. Please reduce the length of the messages.",
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    )


def _content_policy_error() -> Reply:
    return openai_error(
        400,
        "Your request was rejected as a result of our safety system.",
        "invalid_request_error",
        "content_policy_violation",
    )


def _requested_models(upstream) -> list[str]:
    return [request.json["model"] for request in upstream.requests]


def _defaults(upstream) -> dict:
    return {"model": MODEL, "messages": MESSAGES, "api_key": API_KEY, "api_base": upstream.url}


@pytest.fixture
def call(upstream):
    """Call completion() against the fake upstream with the usual model and credentials."""

    def complete(**params):
        params = {
            "model": MODEL,
            "messages": MESSAGES,
            "api_key": API_KEY,
            "api_base": upstream.url,
            **params,
        }
        return completion(**params)

    return complete


@pytest.fixture
async def acall(upstream):
    """Call acompletion() against the fake upstream; close the loop's HTTP session afterwards."""

    async def complete(**params):
        params = {
            "model": MODEL,
            "messages": MESSAGES,
            "api_key": API_KEY,
            "api_base": upstream.url,
            **params,
        }
        return await acompletion(**params)

    yield complete
    await transport.aclose()


def test_it_retries_a_429_and_succeeds(upstream, call):
    upstream.enqueue(_rate_limited())

    response = call(num_retries=2)

    assert response.choices[0].message.content == CONTENT
    assert len(upstream.requests) == 2


def test_it_honours_max_retries_as_an_alias_of_num_retries(upstream, call):
    upstream.enqueue(_rate_limited())

    response = call(max_retries=1)

    assert response.choices[0].message.content == CONTENT
    assert len(upstream.requests) == 2


def test_it_does_not_retry_without_num_retries(upstream, call):
    upstream.enqueue(_rate_limited())

    with pytest.raises(RateLimitError):
        call()

    assert len(upstream.requests) == 1


def test_it_does_not_retry_a_400(upstream, call):
    upstream.enqueue(openai_error(400, "Invalid value for 'temperature'", "invalid_request_error"))

    with pytest.raises(BadRequestError):
        call(num_retries=3)

    assert len(upstream.requests) == 1


def test_it_raises_the_last_error_once_retries_are_exhausted(upstream, call):
    upstream.enqueue(
        _rate_limited("first attempt"),
        Reply(
            status=503,
            json={"error": {"message": "second attempt", "type": "server_error"}},
            headers={"retry-after": "0"},
        ),
    )

    with pytest.raises(ServiceUnavailableError) as caught:
        call(num_retries=1)

    assert "second attempt" in caught.value.message
    assert len(upstream.requests) == 2


def test_it_rejects_a_negative_num_retries(upstream, call):
    with pytest.raises(BadRequestError) as caught:
        call(num_retries=-1)

    assert caught.value.param == "num_retries"
    assert upstream.requests == []


def test_backoff_delay_honours_retry_after():
    assert backoff_delay(0, 7.0, rng=lambda: 0.0) == 7.0
    assert backoff_delay(3, 0.0, rng=lambda: 1.0) == 0.0


def test_backoff_delay_caps_retry_after():
    assert backoff_delay(0, 3600.0) == MAX_RETRY_AFTER


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(0, INITIAL_BACKOFF), (1, INITIAL_BACKOFF * 2), (2, INITIAL_BACKOFF * 4), (10, MAX_BACKOFF)],
)
def test_backoff_delay_grows_exponentially_up_to_its_ceiling(attempt, ceiling):
    assert backoff_delay(attempt, None, rng=lambda: 1.0) == ceiling


@pytest.mark.parametrize("attempt", [0, 1, 2, 3, 4, 10])
@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999])
def test_backoff_delay_jitters_between_half_the_ceiling_and_the_ceiling(attempt, draw):
    ceiling = min(INITIAL_BACKOFF * 2**attempt, MAX_BACKOFF)

    delay = backoff_delay(attempt, None, rng=lambda: draw)

    assert ceiling / 2 <= delay <= ceiling
    assert delay == pytest.approx(ceiling * (0.5 + draw / 2))


class Attempts:
    """An attempt function that raises the given errors in turn, then returns "done"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_with_retries_sleeps_for_each_retry_after():
    attempts = Attempts(
        RateLimitError("slow down", retry_after=3), RateLimitError("slow down", retry_after=1.5)
    )
    slept: list[float] = []

    result = with_retries(attempts, num_retries=2, sleep=slept.append)

    assert result == "done"
    assert slept == [3, 1.5]
    assert attempts.calls == 3


def test_with_retries_backs_off_exponentially_without_retry_after():
    attempts = Attempts(InternalServerError("a"), InternalServerError("b"), InternalServerError("c"))
    slept: list[float] = []

    result = with_retries(attempts, num_retries=3, sleep=slept.append, rng=lambda: 1.0)

    assert result == "done"
    assert slept == [INITIAL_BACKOFF, INITIAL_BACKOFF * 2, INITIAL_BACKOFF * 4]


def test_with_retries_does_not_sleep_before_raising_the_last_error():
    last = RateLimitError("still limited", retry_after=2)
    attempts = Attempts(RateLimitError("limited", retry_after=1), last)
    slept: list[float] = []

    with pytest.raises(RateLimitError) as caught:
        with_retries(attempts, num_retries=1, sleep=slept.append)

    assert caught.value is last
    assert slept == [1]


def test_with_retries_does_not_sleep_on_an_error_it_will_not_retry():
    attempts = Attempts(AuthenticationError("bad key"))
    slept: list[float] = []

    with pytest.raises(AuthenticationError):
        with_retries(attempts, num_retries=5, sleep=slept.append)

    assert slept == []
    assert attempts.calls == 1


async def test_awith_retries_sleeps_for_each_retry_after():
    errors = [RateLimitError("slow down", retry_after=4), ServiceUnavailableError("busy", retry_after=2)]
    slept: list[float] = []

    async def attempt() -> str:
        if errors:
            raise errors.pop(0)
        return "done"

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    assert await awith_retries(attempt, num_retries=2, sleep=sleep) == "done"
    assert slept == [4, 2]


def test_it_falls_back_to_another_model_on_a_500(upstream, call):
    upstream.enqueue(_server_error())

    response = call(fallbacks=[{"model": "openai/gpt-4o", "api_base": upstream.url, "api_key": API_KEY}])

    assert response.choices[0].message.content == CONTENT
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4o"]
    assert response.model == "gpt-4o"
    assert response._hidden_params["model"] == "gpt-4o"


def test_a_fallback_dict_can_override_the_api_key(upstream, call):
    upstream.enqueue(openai_error(401, "Incorrect API key provided.", "invalid_request_error"))

    response = call(fallbacks=[{"model": "openai/gpt-4o", "api_key": "sk-other"}])

    assert response.choices[0].message.content == CONTENT
    assert [request.headers["Authorization"] for request in upstream.requests] == [
        f"Bearer {API_KEY}",
        "Bearer sk-other",
    ]


def test_it_falls_back_to_a_model_given_as_a_string(upstream, call):
    upstream.enqueue(_server_error())

    response = call(fallbacks=["openai/gpt-4o"])

    assert response.choices[0].message.content == CONTENT
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4o"]


def test_it_retries_each_candidate_before_falling_back(upstream, call):
    upstream.enqueue(_rate_limited(), _rate_limited())

    response = call(num_retries=1, fallbacks=["openai/gpt-4o"])

    assert response.choices[0].message.content == CONTENT
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]


def test_it_tries_context_window_fallbacks_on_a_context_window_error(upstream, call):
    upstream.enqueue(_context_window_error())

    response = call(context_window_fallbacks=["openai/gpt-4.1"], fallbacks=["openai/gpt-4o"])

    assert response.choices[0].message.content == CONTENT
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4.1"]


def test_it_tries_context_window_fallbacks_before_general_fallbacks(upstream, call):
    upstream.enqueue(_context_window_error(), _server_error())

    response = call(context_window_fallbacks=["openai/gpt-4.1"], fallbacks=["openai/gpt-4o"])

    assert response.choices[0].message.content == CONTENT
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4.1", "gpt-4o"]


def test_it_skips_context_window_fallbacks_on_other_errors(upstream, call):
    upstream.enqueue(_server_error())

    response = call(context_window_fallbacks=["openai/gpt-4.1"], fallbacks=["openai/gpt-4o"])

    assert response.choices[0].message.content == CONTENT
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4o"]


def test_it_tries_content_policy_fallbacks_before_general_fallbacks(upstream, call):
    upstream.enqueue(_content_policy_error(), _server_error())

    response = call(content_policy_fallbacks=["openai/gpt-4.1"], fallbacks=["openai/gpt-4o"])

    assert response.choices[0].message.content == CONTENT
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4.1", "gpt-4o"]


def test_it_tries_content_policy_fallbacks_on_a_content_policy_error(upstream, call):
    upstream.enqueue(_content_policy_error())

    response = call(content_policy_fallbacks=["openai/gpt-4.1"], fallbacks=["openai/gpt-4o"])

    assert response.choices[0].message.content == CONTENT
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4.1"]


def test_it_raises_the_last_error_when_every_candidate_fails(upstream, call):
    upstream.enqueue(
        _server_error(),
        openai_error(401, "Incorrect API key provided.", "invalid_request_error"),
    )

    with pytest.raises(AuthenticationError) as caught:
        call(fallbacks=["openai/gpt-4o"])

    assert caught.value.model == "gpt-4o"
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4o"]


def test_it_raises_the_last_error_after_specific_and_general_fallbacks_fail(upstream, call):
    upstream.enqueue(_context_window_error(), _context_window_error(), _server_error("the last one"))

    with pytest.raises(InternalServerError) as caught:
        call(context_window_fallbacks=["openai/gpt-4.1"], fallbacks=["openai/gpt-4o"])

    assert "the last one" in caught.value.message
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4.1", "gpt-4o"]


async def test_acompletion_retries_a_429_and_succeeds(upstream, acall):
    upstream.enqueue(_rate_limited())

    response = await acall(num_retries=2)

    assert response.choices[0].message.content == CONTENT
    assert len(upstream.requests) == 2


async def test_acompletion_does_not_retry_a_400(upstream, acall):
    upstream.enqueue(openai_error(400, "Invalid value for 'temperature'", "invalid_request_error"))

    with pytest.raises(BadRequestError):
        await acall(num_retries=3)

    assert len(upstream.requests) == 1


async def test_acompletion_falls_back_to_another_model_on_a_500(upstream, acall):
    upstream.enqueue(_server_error())

    response = await acall(
        fallbacks=[{"model": "openai/gpt-4o", "api_base": upstream.url, "api_key": API_KEY}]
    )

    assert response.choices[0].message.content == CONTENT
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4o"]


async def test_acompletion_tries_context_window_fallbacks_before_general_fallbacks(upstream, acall):
    upstream.enqueue(_context_window_error(), _server_error())

    response = await acall(context_window_fallbacks=["openai/gpt-4.1"], fallbacks=["openai/gpt-4o"])

    assert response.choices[0].message.content == CONTENT
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4.1", "gpt-4o"]


async def test_acompletion_raises_the_last_error_when_every_candidate_fails(upstream, acall):
    upstream.enqueue(_server_error(), _content_policy_error())

    with pytest.raises(ContentPolicyViolationError) as caught:
        await acall(fallbacks=["openai/gpt-4o"])

    assert caught.value.model == "gpt-4o"
    assert len(upstream.requests) == 2


def _content(chunks) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


def _dropping_stream() -> Reply:
    events = chat_stream_events("gpt-4o-mini", ["Hello", " there", " friend"], include_usage=False)
    return Reply(sse=events, drop_after=2)


def test_a_stream_is_retried_when_its_opening_is_rate_limited(upstream, call):
    upstream.enqueue(_rate_limited())

    chunks = list(call(stream=True, num_retries=1))

    assert _content(chunks) == CONTENT
    assert len(upstream.requests) == 2
    assert all(request.json["stream"] is True for request in upstream.requests)


def test_a_stream_falls_back_when_its_opening_fails(upstream, call):
    upstream.enqueue(_server_error())

    chunks = list(call(stream=True, fallbacks=["openai/gpt-4o"]))

    assert _content(chunks) == CONTENT
    assert _requested_models(upstream) == ["gpt-4o-mini", "gpt-4o"]


def test_a_stream_that_drops_after_its_first_chunk_is_not_retried(upstream, call):
    upstream.enqueue(_dropping_stream())
    stream = call(stream=True, num_retries=2, fallbacks=["openai/gpt-4o"])
    received = []

    with pytest.raises(APIConnectionError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)

    assert received == ["", "Hello"]
    assert len(upstream.requests) == 1


async def test_an_async_stream_is_retried_when_its_opening_is_rate_limited(upstream, acall):
    upstream.enqueue(_rate_limited())

    stream = await acall(stream=True, num_retries=1)
    chunks = [chunk async for chunk in stream]

    assert _content(chunks) == CONTENT
    assert len(upstream.requests) == 2


async def test_an_async_stream_that_drops_after_its_first_chunk_is_not_retried(upstream, acall):
    upstream.enqueue(_dropping_stream())
    stream = await acall(stream=True, num_retries=2, fallbacks=["openai/gpt-4o"])
    received = []

    with pytest.raises(APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content)

    assert received == ["", "Hello"]
    assert len(upstream.requests) == 1


def test_context_window_errors_are_not_retried(upstream, call):
    upstream.enqueue(_context_window_error())

    with pytest.raises(ContextWindowExceededError):
        call(num_retries=3)

    assert len(upstream.requests) == 1
