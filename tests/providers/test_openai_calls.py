"""OpenAI end to end over loopback: what is sent, and what comes back in OpenAI's own types."""

import base64
import struct
from decimal import Decimal

import openai.types
import openai.types.chat
import pytest

from llm_gateway import (
    acompletion,
    aembedding,
    aimage_generation,
    atext_completion,
    completion,
    completion_cost,
    embedding,
    image_generation,
    text_completion,
    token_counter,
)
from tests.fakes.openai_responses import CONTENT, USAGE, chat_chunk, chat_completion
from tests.fakes.upstream import Reply, sse_json

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


@pytest.fixture
def openai_call(upstream):
    return {"model": "openai/gpt-4o-mini", "api_base": upstream.url, "api_key": "sk-test-openai"}


def test_it_sends_the_chat_request_to_openai_with_bearer_auth(upstream, openai_call):
    completion(messages=MESSAGES, **openai_call)

    request = upstream.last
    assert request.path == "/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test-openai"
    assert request.json == {"model": "gpt-4o-mini", "messages": MESSAGES}


def test_it_passes_every_openai_parameter_through_untouched(upstream, openai_call):
    params = {
        "temperature": 0.2,
        "top_p": 0.9,
        "n": 2,
        "stop": ["\n\n"],
        "max_tokens": 50,
        "max_completion_tokens": 60,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logit_bias": {"50256": -100},
        "user": "end-user-1",
        "seed": 42,
        "response_format": {"type": "json_object"},
        "tools": TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "logprobs": True,
        "top_logprobs": 2,
        "reasoning_effort": "low",
        "custom_vendor_field": {"kept": True},
    }
    completion(messages=MESSAGES, **params, **openai_call)

    assert upstream.last.json == {"model": "gpt-4o-mini", "messages": MESSAGES, **params}


def test_it_returns_a_response_that_validates_as_openais_chat_completion(openai_call):
    response = completion(messages=MESSAGES, **openai_call)

    assert response.choices[0].message.content == CONTENT
    assert response.usage.total_tokens == USAGE["total_tokens"]
    assert response["choices"][0].finish_reason == "stop"
    assert response.model_dump() == chat_completion("gpt-4o-mini")
    assert response.to_dict() == response.model_dump()
    openai.types.chat.ChatCompletion.model_validate(response.model_dump())


def test_it_returns_tool_calls_as_objects(upstream, openai_call):
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    }
    body = chat_completion("gpt-4o-mini")
    body["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
    body["choices"][0]["finish_reason"] = "tool_calls"
    upstream.enqueue(Reply(json=body))

    response = completion(messages=MESSAGES, tools=TOOLS, **openai_call)

    call = response.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_1",
        "get_weather",
        '{"city":"Oslo"}',
    )
    openai.types.chat.ChatCompletion.model_validate(response.model_dump())


def test_it_streams_chunks_and_the_upstreams_usage_when_asked(upstream, openai_call):
    chunks = list(
        completion(messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **openai_call)
    )

    assert upstream.last.json["stream_options"] == {"include_usage": True}
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Hello from the fake upstream"
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == USAGE
    for chunk in chunks:
        openai.types.chat.ChatCompletionChunk.model_validate(chunk.model_dump())


def test_it_counts_usage_with_the_bundled_tokenizer_when_the_upstream_reports_none(upstream, openai_call):
    words = ["Hello", " there", ",", " friend"]
    events = [sse_json(chat_chunk("gpt-4o-mini", {"content": word})) for word in words]
    upstream.enqueue(Reply(sse=[*events, sse_json(chat_chunk("gpt-4o-mini", {}, "stop")), "[DONE]"]))

    stream = completion(messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **openai_call)
    chunks = list(stream)

    expected_prompt = token_counter(model="gpt-4o-mini", messages=MESSAGES)
    expected_completion = token_counter(model="gpt-4o-mini", text="Hello there, friend")
    assert chunks[-1].usage.prompt_tokens == expected_prompt
    assert chunks[-1].usage.completion_tokens == expected_completion
    assert stream.reported_usage is False


def test_it_does_not_add_a_usage_chunk_unless_asked(openai_call):
    chunks = list(completion(messages=MESSAGES, stream=True, **openai_call))

    assert all(chunk.choices for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_it_streams_tool_call_deltas(upstream, openai_call):
    first = {
        "index": 0,
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    events = [
        sse_json(chat_chunk("gpt-4o-mini", {"role": "assistant", "content": None, "tool_calls": [first]})),
        sse_json(
            chat_chunk("gpt-4o-mini", {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]})
        ),
        sse_json(
            chat_chunk("gpt-4o-mini", {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]})
        ),
        sse_json(chat_chunk("gpt-4o-mini", {}, "tool_calls")),
        "[DONE]",
    ]
    upstream.enqueue(Reply(sse=events))

    chunks = list(completion(messages=MESSAGES, tools=TOOLS, stream=True, **openai_call))

    deltas = [call for chunk in chunks for call in chunk.choices[0].delta.tool_calls or ()]
    assert deltas[0].id == "call_9" and deltas[0].function.name == "get_weather"
    assert "".join(delta.function.arguments for delta in deltas) == '{"city":"Oslo"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_it_streams_asynchronously(openai_call):
    stream = await acompletion(
        messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **openai_call
    )
    chunks = [chunk async for chunk in stream]

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Hello from the fake upstream"
    assert chunks[-1].usage.total_tokens == USAGE["total_tokens"]


async def test_it_answers_asynchronously(upstream, openai_call):
    response = await acompletion(messages=MESSAGES, temperature=0, **openai_call)

    assert response.choices[0].message.content == CONTENT
    assert upstream.last.json["temperature"] == 0


def test_closing_a_stream_early_stops_reading(upstream, openai_call):
    events = [sse_json(chat_chunk("gpt-4o-mini", {"content": str(number)})) for number in range(50)]
    upstream.enqueue(Reply(sse=[*events, "[DONE]"], event_delay=0.01))

    with completion(messages=MESSAGES, stream=True, **openai_call) as stream:
        first = next(iter(stream))

    assert first.choices[0].delta.content == "0"
    with pytest.raises(StopIteration):
        next(stream)


def test_it_calls_legacy_completions(upstream, openai_call):
    response = text_completion(
        prompt="Hello", max_tokens=5, **{**openai_call, "model": "openai/gpt-3.5-turbo-instruct"}
    )

    assert upstream.last.path == "/completions"
    assert upstream.last.json == {"model": "gpt-3.5-turbo-instruct", "prompt": "Hello", "max_tokens": 5}
    assert response.choices[0].text == " world"
    openai.types.Completion.model_validate(response.model_dump())


async def test_it_calls_legacy_completions_asynchronously(openai_call):
    response = await atext_completion(prompt="Hello", **openai_call)

    assert response.choices[0].text == " world"


def test_it_embeds_with_dimensions(upstream, openai_call):
    response = embedding(
        input=["a", "b"], dimensions=3, **{**openai_call, "model": "openai/text-embedding-3-small"}
    )

    assert upstream.last.path == "/embeddings"
    assert upstream.last.json == {"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 3}
    assert [len(item.embedding) for item in response.data] == [3, 3]
    openai.types.CreateEmbeddingResponse.model_validate(response.model_dump())


async def test_it_embeds_as_base64_when_asked(upstream, openai_call):
    response = await aembedding(input="a", dimensions=2, encoding_format="base64", **openai_call)

    assert upstream.last.json["encoding_format"] == "base64"
    decoded = struct.unpack("<2f", base64.b64decode(response.data[0].embedding))
    assert decoded == pytest.approx((0.001, 0.002))


def test_it_generates_images_with_every_option(upstream, openai_call):
    options = {"n": 2, "size": "1024x1024", "quality": "hd", "style": "vivid", "response_format": "b64_json"}
    response = image_generation(prompt="a cat", **{**openai_call, "model": "openai/dall-e-3"}, **options)

    assert upstream.last.path == "/images/generations"
    assert upstream.last.json == {"model": "dall-e-3", "prompt": "a cat", **options}
    assert len(response.data) == 2 and response.data[0].b64_json
    openai.types.ImagesResponse.model_validate(response.model_dump())


async def test_it_generates_images_asynchronously(openai_call):
    response = await aimage_generation(prompt="a dog", **openai_call)

    assert response.data[0].url == "https://images.example/fake.png"


def test_it_reads_the_api_key_and_base_from_the_environment(upstream, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.url)

    completion(model="gpt-4o-mini", messages=MESSAGES)

    assert upstream.last.headers["Authorization"] == "Bearer sk-from-env"


def test_it_sends_extra_headers(upstream, openai_call):
    completion(messages=MESSAGES, extra_headers={"OpenAI-Organization": "org-1"}, **openai_call)

    assert upstream.last.headers["OpenAI-Organization"] == "org-1"


def test_completion_cost_prices_the_response_from_the_bundled_table(openai_call):
    response = completion(messages=MESSAGES, **openai_call)

    # gpt-4o-mini: $0.15 / 1M input, $0.60 / 1M output (shared price table).
    expected = Decimal("11") * Decimal("0.00000015") + Decimal("6") * Decimal("0.0000006")
    assert completion_cost(response) == expected


def test_completion_cost_uses_per_call_custom_pricing(openai_call):
    prices = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
    response = completion(messages=MESSAGES, **prices, **openai_call)

    assert completion_cost(response) == Decimal("0.011") + Decimal("0.012")
