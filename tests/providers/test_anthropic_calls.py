"""Anthropic end to end over loopback: what is sent to /v1/messages, and what comes back as OpenAI's."""

import openai.types.chat
import orjson
import pytest

from providers.api import acompletion, completion
from providers.exceptions import (
    APIConnectionError,
    AuthenticationError,
    ContextWindowExceededError,
    InternalServerError,
    RateLimitError,
    ServiceUnavailableError,
)
from tests.fakes.anthropic_responses import (
    CONTENT,
    MODEL,
    anthropic_error,
    anthropic_error_event,
    anthropic_message,
    anthropic_stream_events,
    text_block,
    tool_use_block,
)
from tests.fakes.upstream import Reply

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 6,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 0},
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


@pytest.fixture
def anthropic_call(upstream):
    return {"model": f"anthropic/{MODEL}", "api_base": upstream.url, "api_key": "sk-ant-test"}


def test_it_posts_to_the_messages_api_with_anthropic_headers(upstream, anthropic_call):
    completion(messages=MESSAGES, max_tokens=50, temperature=0.2, stop="END", **anthropic_call)

    request = upstream.last
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert request.method == "POST"
    assert request.path == "/v1/messages"
    assert headers["x-api-key"] == "sk-ant-test"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert request.json == {
        "model": MODEL,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": 50,
        "temperature": 0.2,
        "stop_sequences": ["END"],
    }


def test_it_accepts_an_api_base_ending_in_v1(upstream, anthropic_call):
    completion(messages=MESSAGES, **{**anthropic_call, "api_base": f"{upstream.url}/v1"})

    assert upstream.last.path == "/v1/messages"


def test_it_sends_extra_headers_such_as_anthropic_beta(upstream, anthropic_call):
    completion(
        messages=MESSAGES,
        extra_headers={"anthropic-beta": "token-efficient-tools-2025-02-19"},
        **anthropic_call,
    )

    assert upstream.last.headers["anthropic-beta"] == "token-efficient-tools-2025-02-19"


def test_it_returns_an_openai_chat_completion(anthropic_call):
    response = completion(messages=MESSAGES, **anthropic_call)

    assert response.choices[0].message.content == CONTENT
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.prompt_tokens == 11
    assert response.usage.completion_tokens == 6
    dumped = response.model_dump()
    assert dumped["id"] == "msg_01FakeAnthropic"
    assert dumped["model"] == MODEL
    assert dumped["usage"] == USAGE
    assert dumped["created"] > 0  # Anthropic sends no time: the engine stamps it
    openai.types.chat.ChatCompletion.model_validate(dumped)


def test_it_returns_tool_calls(upstream, anthropic_call):
    tool_use = {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
    upstream.enqueue(Reply(json=anthropic_message(content=[tool_use], stop_reason="tool_use")))

    response = completion(messages=MESSAGES, tools=TOOLS, tool_choice="required", **anthropic_call)

    assert upstream.last.json["tool_choice"] == {"type": "any"}
    assert upstream.last.json["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": TOOLS[0]["function"]["parameters"],
        }
    ]
    call = response.choices[0].message.tool_calls[0]
    assert (call.id, call.type, call.function.name) == ("toolu_01", "function", "get_weather")
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    assert response.choices[0].finish_reason == "tool_calls"
    assert response.choices[0].message.content is None


def test_it_streams_text_and_the_usage_anthropic_reports(upstream, anthropic_call):
    chunks = list(
        completion(messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **anthropic_call)
    )

    assert upstream.last.json["stream"] is True
    assert "stream_options" not in upstream.last.json
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == CONTENT
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.model_dump() == USAGE
    for chunk in chunks:
        openai.types.chat.ChatCompletionChunk.model_validate(chunk.model_dump())


def test_it_reassembles_a_streamed_tool_call(upstream, anthropic_call):
    blocks = [
        text_block("Checking."),
        tool_use_block("toolu_01", "get_weather", '{"ci', 'ty": "Pa', 'ris"}'),
        tool_use_block("toolu_02", "get_weather", '{"city": "Rome"}'),
    ]
    upstream.enqueue(Reply(sse=anthropic_stream_events(blocks=blocks, stop_reason="tool_use")))

    chunks = list(completion(messages=MESSAGES, tools=TOOLS, stream=True, **anthropic_call))

    calls: dict[int, dict] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or ():
            call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = delta.id or call["id"]
            call["name"] = delta.function.name or call["name"]
            call["arguments"] += delta.function.arguments or ""
    assert {
        index: {**call, "arguments": orjson.loads(call["arguments"])} for index, call in calls.items()
    } == {
        0: {"id": "toolu_01", "name": "get_weather", "arguments": {"city": "Paris"}},
        1: {"id": "toolu_02", "name": "get_weather", "arguments": {"city": "Rome"}},
    }
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_it_retries_a_rate_limit_after_the_retry_after_delay(upstream, anthropic_call):
    upstream.enqueue(
        anthropic_error(429, "rate_limit_error", "Number of requests exceeded", {"retry-after": "0"})
    )

    response = completion(messages=MESSAGES, num_retries=1, **anthropic_call)

    assert response.choices[0].message.content == CONTENT
    assert len(upstream.requests) == 2


def test_it_raises_a_rate_limit_once_retries_are_used_up(upstream, anthropic_call):
    upstream.enqueue(
        anthropic_error(429, "rate_limit_error", "Number of requests exceeded", {"retry-after": "3"})
    )

    with pytest.raises(RateLimitError) as caught:
        completion(messages=MESSAGES, **anthropic_call)

    assert caught.value.retry_after == 3.0
    assert caught.value.message == "Number of requests exceeded"
    assert len(upstream.requests) == 1


def test_it_maps_overloaded_to_service_unavailable(upstream, anthropic_call):
    upstream.enqueue(anthropic_error(529, "overloaded_error", "Overloaded"))

    with pytest.raises(ServiceUnavailableError) as caught:
        completion(messages=MESSAGES, **anthropic_call)

    assert caught.value.status_code == 529
    assert caught.value.retryable is True
    assert caught.value.provider == "anthropic"
    assert caught.value.message == "Overloaded"


def test_it_maps_an_invalid_key_to_authentication_error(upstream, anthropic_call):
    upstream.enqueue(anthropic_error(401, "authentication_error", "invalid x-api-key"))

    with pytest.raises(AuthenticationError, match="invalid x-api-key"):
        completion(messages=MESSAGES, **anthropic_call)


def test_it_maps_prompt_is_too_long_to_context_window_exceeded(upstream, anthropic_call):
    upstream.enqueue(
        anthropic_error(400, "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum")
    )

    with pytest.raises(ContextWindowExceededError):
        completion(messages=MESSAGES, **anthropic_call)


def test_it_raises_an_error_event_received_mid_stream(upstream, anthropic_call):
    # message_start, content_block_start, ping, the "Hello" delta, then the error.
    events = [*anthropic_stream_events()[:4], anthropic_error_event("overloaded_error", "Overloaded")]
    upstream.enqueue(Reply(sse=events))
    received = []

    with pytest.raises(ServiceUnavailableError, match="Overloaded"):
        for chunk in completion(messages=MESSAGES, stream=True, **anthropic_call):
            received.append(chunk.choices[0].delta.content)

    assert received == ["", "Hello"]


def test_it_raises_a_connection_error_when_the_stream_drops(upstream, anthropic_call):
    upstream.enqueue(Reply(sse=anthropic_stream_events(), drop_after=5))

    with pytest.raises(APIConnectionError):
        list(completion(messages=MESSAGES, stream=True, **anthropic_call))


async def test_it_answers_asynchronously(upstream, anthropic_call):
    response = await acompletion(messages=MESSAGES, **anthropic_call)

    assert response.choices[0].message.content == CONTENT
    assert upstream.last.path == "/v1/messages"


async def test_it_streams_asynchronously_with_usage(anthropic_call):
    stream = await acompletion(
        messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **anthropic_call
    )
    chunks = [chunk async for chunk in stream]

    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == CONTENT
    assert chunks[-1].usage.model_dump() == USAGE


async def test_it_raises_an_error_event_asynchronously(upstream, anthropic_call):
    upstream.enqueue(
        Reply(sse=[*anthropic_stream_events()[:3], anthropic_error_event("api_error", "Internal")])
    )
    stream = await acompletion(messages=MESSAGES, stream=True, **anthropic_call)

    with pytest.raises(InternalServerError, match="Internal") as caught:
        async for _ in stream:
            pass

    assert caught.value.status_code == 500


async def test_it_raises_a_connection_error_when_an_async_stream_drops(upstream, anthropic_call):
    upstream.enqueue(Reply(sse=anthropic_stream_events(), drop_after=5))
    stream = await acompletion(messages=MESSAGES, stream=True, **anthropic_call)

    with pytest.raises(APIConnectionError):
        async for _ in stream:
            pass
