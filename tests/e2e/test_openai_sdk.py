"""The official openai SDK against a real gateway process, whose deployments call the fake upstream.

Every test goes over real HTTP twice: SDK -> gateway (uvicorn, its own process and database) and
gateway -> fake upstream (loopback, in this process). Assertions look at both ends: what the SDK
parsed, and what the upstream was sent (path, the provider's credential, the provider's model id).
"""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest
from openai.types import Completion, CreateEmbeddingResponse, ImagesResponse, Model
from openai.types.chat import ChatCompletion

from tests.fakes.anthropic_responses import MODEL as ANTHROPIC_MODEL
from tests.fakes.openai_responses import (
    CONTENT,
    chat_completion,
    chat_stream_events,
    embedding_vector,
    openai_error,
)
from tests.fakes.upstream import RecordedRequest, Reply

OPENAI_CREDENTIAL = "sk-upstream-openai-credential-0001"
ANTHROPIC_CREDENTIAL = "sk-ant-upstream-credential-0002"
AZURE_CREDENTIAL = "azure-upstream-credential-0003"
GROQ_CREDENTIAL = "gsk-upstream-credential-0004"

OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
AZURE_DEPLOYMENT = "gpt4o-prod-eastus"
AZURE_API_VERSION = "2024-10-21"
GROQ_MODEL = "llama-3.1-8b-instant"
EMBEDDING_MODEL = "text-embedding-3-small"
IMAGE_MODEL = "dall-e-3"
MOCK_REPLY = "This is a mock response from the LLM Gateway."  # providers.adapters.mock.DEFAULT_RESPONSE

ALL_MODELS = ["azure-gpt", "claude", "dall-e", "demo", "embed", "gpt-4o-mini", "groq-llama"]
USER_MESSAGES = [{"role": "user", "content": "Say hello"}]


@dataclass(frozen=True)
class Cast:
    """The secrets of the keys seeded for this module."""

    all_models: str
    demo_only: str
    blocked: str
    expired: str


@pytest.fixture(scope="module")
def cast(gateway, _upstream_server) -> Cast:
    """Seed the deployments (all pointing at the fake upstream) and the keys, once for the module."""
    base = _upstream_server.url
    secrets = gateway.run_python(
        f"""
import json
from datetime import timedelta
from django.utils import timezone
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create

deployment_create(model_name="gpt-4o-mini", provider="openai", model={OPENAI_MODEL!r},
                  api_base={base!r}, api_key={OPENAI_CREDENTIAL!r})
deployment_create(model_name="claude", provider="anthropic", model={ANTHROPIC_MODEL!r},
                  api_base={base!r}, api_key={ANTHROPIC_CREDENTIAL!r})
deployment_create(model_name="azure-gpt", provider="azure", model={AZURE_DEPLOYMENT!r},
                  api_base={base!r}, api_version={AZURE_API_VERSION!r}, api_key={AZURE_CREDENTIAL!r})
deployment_create(model_name="groq-llama", provider="groq", model={GROQ_MODEL!r},
                  api_base={base!r}, api_key={GROQ_CREDENTIAL!r})
deployment_create(model_name="embed", provider="openai", model={EMBEDDING_MODEL!r}, mode="embedding",
                  api_base={base!r}, api_key={OPENAI_CREDENTIAL!r})
deployment_create(model_name="dall-e", provider="openai", model={IMAGE_MODEL!r}, mode="image_generation",
                  api_base={base!r}, api_key={OPENAI_CREDENTIAL!r})
deployment_create(model_name="demo", provider="mock", model="demo")

_, all_models = virtual_key_create(key_alias="all", models={ALL_MODELS!r})
_, demo_only = virtual_key_create(key_alias="demo-only", models=["demo"])
_, blocked = virtual_key_create(key_alias="blocked", blocked=True)
_, expired = virtual_key_create(key_alias="expired", expires=timezone.now() - timedelta(minutes=1))
print(json.dumps(dict(all_models=all_models, demo_only=demo_only, blocked=blocked, expired=expired)))
"""
    )
    return Cast(**json.loads(secrets))


@pytest.fixture
def client(gateway, cast) -> Iterator[openai.OpenAI]:
    """An SDK client with the key allowed every model (no retries: each call is one request)."""
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=cast.all_models, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
async def async_client(gateway, cast) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=cast.all_models, max_retries=0
    ) as sdk:
        yield sdk


def header(recorded: RecordedRequest, name: str) -> str | None:
    """Return a header the upstream received, whatever its case."""
    return {key.lower(): value for key, value in recorded.headers.items()}.get(name.lower())


def assert_virtual_key_not_forwarded(recorded: RecordedRequest, cast: Cast) -> None:
    sent = " ".join(recorded.headers.values()) + recorded.body.decode()
    assert cast.all_models not in sent
    assert cast.demo_only not in sent


def test_chat_returns_a_parsed_completion_and_calls_upstream_with_the_provider_credential(
    client, upstream, cast
):
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=USER_MESSAGES)

    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == CONTENT
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 6)
    [recorded] = upstream.requests
    assert (recorded.method, recorded.path) == ("POST", "/chat/completions")
    assert header(recorded, "Authorization") == f"Bearer {OPENAI_CREDENTIAL}"
    assert recorded.json["model"] == OPENAI_MODEL
    assert recorded.json["messages"] == USER_MESSAGES
    assert_virtual_key_not_forwarded(recorded, cast)


def test_chat_stream_assembles_the_text_and_ends_with_a_usage_chunk(client, upstream):
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER_MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == CONTENT
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 6)
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert upstream.last.json["stream"] is True
    assert upstream.last.json["stream_options"] == {"include_usage": True}


def test_chat_with_tools_returns_the_tool_calls(client, upstream):
    tool_call = {
        "id": "call_fake1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    body = chat_completion(OPENAI_MODEL, content=None)
    body["choices"][0]["message"]["tool_calls"] = [tool_call]
    body["choices"][0]["finish_reason"] = "tool_calls"
    upstream.enqueue(Reply(json=body))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]

    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=USER_MESSAGES, tools=tools, tool_choice="auto"
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name) == ("call_fake1", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert upstream.last.json["tools"] == tools
    assert upstream.last.json["tool_choice"] == "auto"


def test_an_anthropic_deployment_is_translated_both_ways(client, upstream, cast):
    completion = client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, *USER_MESSAGES],
        max_tokens=64,
    )

    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == CONTENT
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 6)
    assert completion.usage.total_tokens == 17
    [recorded] = upstream.requests
    assert recorded.path == "/v1/messages"
    assert header(recorded, "x-api-key") == ANTHROPIC_CREDENTIAL
    assert header(recorded, "anthropic-version")
    assert header(recorded, "Authorization") is None
    assert recorded.json["model"] == ANTHROPIC_MODEL
    assert recorded.json["system"] == "Be brief."
    assert [message["role"] for message in recorded.json["messages"]] == ["user"]
    assert recorded.json["max_tokens"] == 64
    assert_virtual_key_not_forwarded(recorded, cast)


async def test_an_anthropic_deployment_streams_through_the_async_sdk(async_client, upstream):
    stream = await async_client.chat.completions.create(
        model="claude", messages=USER_MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == CONTENT
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 6)
    assert upstream.last.path == "/v1/messages"
    assert upstream.last.json["stream"] is True


def test_an_azure_deployment_is_called_on_its_deployment_path(client, upstream):
    completion = client.chat.completions.create(model="azure-gpt", messages=USER_MESSAGES)

    assert completion.choices[0].message.content == CONTENT
    [recorded] = upstream.requests
    assert recorded.path == f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions"
    assert recorded.query == {"api-version": AZURE_API_VERSION}
    assert header(recorded, "api-key") == AZURE_CREDENTIAL
    assert header(recorded, "Authorization") is None
    assert "model" not in recorded.json


def test_a_groq_deployment_is_called_with_its_own_credential(client, upstream):
    completion = client.chat.completions.create(model="groq-llama", messages=USER_MESSAGES)

    assert completion.choices[0].message.content == CONTENT
    [recorded] = upstream.requests
    assert recorded.path == "/chat/completions"
    assert header(recorded, "Authorization") == f"Bearer {GROQ_CREDENTIAL}"
    assert recorded.json["model"] == GROQ_MODEL


def test_legacy_completions(client, upstream):
    completion = client.completions.create(model="gpt-4o-mini", prompt="Hello")

    assert isinstance(completion, Completion)
    assert completion.choices[0].text == " world"
    assert completion.usage.total_tokens == 3
    assert upstream.last.path == "/completions"
    assert upstream.last.json == {"model": OPENAI_MODEL, "prompt": "Hello"}


def test_embeddings_as_floats(client, upstream):
    response = client.embeddings.create(model="embed", input=["one", "two"], encoding_format="float")

    assert isinstance(response, CreateEmbeddingResponse)
    assert [item.embedding for item in response.data] == [embedding_vector(0, 4), embedding_vector(1, 4)]
    assert response.usage.prompt_tokens == 6
    assert upstream.last.path == "/embeddings"
    assert upstream.last.json["model"] == EMBEDDING_MODEL


def test_embeddings_in_base64_are_decoded_by_the_sdk(client, upstream):
    # Without encoding_format the SDK asks for base64 and decodes it into floats itself.
    response = client.embeddings.create(model="embed", input="one")

    assert upstream.last.json["encoding_format"] == "base64"
    float32 = struct.unpack("<4f", struct.pack("<4f", *embedding_vector(0, 4)))
    assert response.data[0].embedding == list(float32)


def test_embeddings_in_base64_asked_explicitly_come_back_as_base64(client, upstream):
    response = client.embeddings.create(model="embed", input="one", encoding_format="base64")

    assert upstream.last.json["encoding_format"] == "base64"
    decoded = struct.unpack("<4f", base64.b64decode(response.data[0].embedding))
    assert decoded == struct.unpack("<4f", struct.pack("<4f", *embedding_vector(0, 4)))


def test_images(client, upstream):
    response = client.images.generate(model="dall-e", prompt="a lighthouse", n=2)

    assert isinstance(response, ImagesResponse)
    assert [image.url for image in response.data] == ["https://images.example/fake.png"] * 2
    assert upstream.last.path == "/images/generations"
    assert upstream.last.json == {"model": IMAGE_MODEL, "prompt": "a lighthouse", "n": 2}


def test_models_list_returns_only_what_the_key_may_use(gateway, client, cast):
    assert sorted(model.id for model in client.models.list()) == ALL_MODELS
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=cast.demo_only, max_retries=0) as demo:
        assert [model.id for model in demo.models.list()] == ["demo"]
        with pytest.raises(openai.NotFoundError):
            demo.models.retrieve("gpt-4o-mini")


def test_models_retrieve(client):
    model = client.models.retrieve("demo")

    assert isinstance(model, Model)
    assert (model.id, model.object) == ("demo", "model")


def test_the_mock_deployment_answers_without_an_upstream(client, upstream):
    completion = client.chat.completions.create(model="demo", messages=USER_MESSAGES)

    assert completion.choices[0].message.content == MOCK_REPLY
    assert upstream.requests == []


def test_a_wrong_key_is_an_authentication_error(gateway, upstream):
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-not-a-key", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as raised,
    ):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=USER_MESSAGES)
    assert raised.value.status_code == 401
    assert upstream.requests == []


@pytest.mark.parametrize("key", ["blocked", "expired"])
def test_a_blocked_or_expired_key_is_refused_with_401(gateway, cast, upstream, key):
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=getattr(cast, key), max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as raised,
    ):
        sdk.chat.completions.create(model="demo", messages=USER_MESSAGES)
    assert raised.value.status_code == 401
    assert key in raised.value.message


def test_a_model_the_key_may_not_use_is_a_permission_error(gateway, cast, upstream):
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=cast.demo_only, max_retries=0) as sdk,
        pytest.raises(openai.PermissionDeniedError) as raised,
    ):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=USER_MESSAGES)
    assert raised.value.status_code == 403
    assert upstream.requests == []


def test_an_unknown_model_is_a_not_found_error(gateway, master_key):
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=master_key, max_retries=0) as sdk,
        pytest.raises(openai.NotFoundError) as raised,
    ):
        sdk.chat.completions.create(model="no-such-model", messages=USER_MESSAGES)
    assert raised.value.code == "model_not_found"


def test_missing_messages_is_a_bad_request_naming_the_field(client, upstream):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert raised.value.param == "messages"
    assert upstream.requests == []


def test_a_body_that_is_not_json_is_a_bad_request_in_openai_shape(gateway, cast, upstream):
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        content=b'{"model": "gpt-4o-mini", ',
        headers={"Authorization": f"Bearer {cast.all_models}", "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert upstream.requests == []


def test_an_upstream_429_is_a_rate_limit_error_that_names_the_provider_not_its_key(client, upstream):
    # OpenAI quotes the key it was given in some errors: the gateway must not pass it on.
    refusal = openai_error(
        429, f"Rate limit reached for key {OPENAI_CREDENTIAL}.", "requests", code="rate_limit_exceeded"
    )
    refusal.headers = {"retry-after": "0"}
    upstream.enqueue(refusal)

    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER_MESSAGES)

    error = raised.value
    assert error.status_code == 429
    assert error.body["message"].startswith(f"openai/{OPENAI_MODEL}: Rate limit reached")
    assert OPENAI_CREDENTIAL not in error.response.text
    assert error.response.headers["retry-after"] == "0"
    assert len(upstream.requests) == 1


def test_an_upstream_500_is_an_internal_server_error(client, upstream):
    upstream.enqueue(openai_error(500, "The server had an error.", "server_error"))

    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER_MESSAGES)
    assert raised.value.status_code == 500


@pytest.mark.parametrize("header_name", ["api-key", "x-api-key"])
def test_the_key_may_come_in_the_azure_and_anthropic_headers(gateway, cast, header_name):
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "demo", "messages": USER_MESSAGES},
        headers={header_name: cast.demo_only},
    )

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == MOCK_REPLY


def test_the_endpoints_answer_without_the_v1_prefix(gateway, cast, upstream):
    with openai.OpenAI(base_url=gateway.url, api_key=cast.all_models, max_retries=0) as sdk:
        assert sdk.chat.completions.create(model="gpt-4o-mini", messages=USER_MESSAGES).choices
        assert sdk.completions.create(model="gpt-4o-mini", prompt="Hello").choices[0].text == " world"
        assert len(sdk.embeddings.create(model="embed", input="one").data) == 1
        assert len(sdk.images.generate(model="dall-e", prompt="a lighthouse").data) == 1
        assert sorted(model.id for model in sdk.models.list()) == ALL_MODELS
        assert sdk.models.retrieve("demo").id == "demo"
    assert [recorded.path for recorded in upstream.requests] == [
        "/chat/completions",
        "/completions",
        "/embeddings",
        "/images/generations",
    ]


def test_the_azure_sdk_reaches_the_gateway_on_azure_paths(gateway, cast, upstream):
    with openai.AzureOpenAI(
        azure_endpoint=gateway.url, api_key=cast.all_models, api_version=AZURE_API_VERSION, max_retries=0
    ) as sdk:
        completion = sdk.chat.completions.create(model="azure-gpt", messages=USER_MESSAGES)

    assert completion.choices[0].message.content == CONTENT
    [recorded] = upstream.requests
    assert recorded.path == f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions"
    assert header(recorded, "api-key") == AZURE_CREDENTIAL


def _chat_text(sdk: openai.OpenAI, model: str) -> str:
    return sdk.chat.completions.create(model=model, messages=USER_MESSAGES).choices[0].message.content


# What each model answers when called with the master key.
MASTER_KEY_CALLS = {
    "gpt-4o-mini": lambda sdk: _chat_text(sdk, "gpt-4o-mini") == CONTENT,
    "claude": lambda sdk: _chat_text(sdk, "claude") == CONTENT,
    "azure-gpt": lambda sdk: _chat_text(sdk, "azure-gpt") == CONTENT,
    "groq-llama": lambda sdk: _chat_text(sdk, "groq-llama") == CONTENT,
    "demo": lambda sdk: _chat_text(sdk, "demo") == MOCK_REPLY,
    "embed": lambda sdk: len(sdk.embeddings.create(model="embed", input="one").data) == 1,
    "dall-e": lambda sdk: len(sdk.images.generate(model="dall-e", prompt="a lighthouse").data) == 1,
}


@pytest.mark.parametrize("model", sorted(MASTER_KEY_CALLS))
def test_the_master_key_may_call_every_model(gateway, cast, master_key, upstream, model):
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=master_key, max_retries=0) as sdk:
        assert MASTER_KEY_CALLS[model](sdk)
    for recorded in upstream.requests:
        assert master_key not in " ".join(recorded.headers.values())


def test_the_master_key_lists_every_model(gateway, cast, master_key):
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=master_key, max_retries=0) as sdk:
        assert sorted(model.id for model in sdk.models.list()) == ALL_MODELS


def test_a_stream_reaches_the_client_before_the_upstream_has_finished_it(client, upstream):
    words = [f" w{index}" for index in range(7)]
    events = chat_stream_events(OPENAI_MODEL, words, include_usage=False)
    assert len(events) == 10
    reply = Reply(sse=events, event_delay=0.3)
    upstream.enqueue(reply)

    stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER_MESSAGES, stream=True)
    sent_when_received = []
    text = ""
    for chunk in stream:
        sent_when_received.append(reply.sent)
        text += chunk.choices[0].delta.content or ""

    # Order, not speed: the first chunk was in the client's hands while the upstream still had
    # events to write; a gateway that buffered the stream would deliver it only after the last one.
    assert sent_when_received[0] < len(events)
    assert text == "".join(words)
    assert reply.sent == len(events)


def test_a_client_that_goes_away_cancels_the_upstream_stream(gateway, cast, upstream):
    events = chat_stream_events(OPENAI_MODEL, [f" w{index}" for index in range(27)], include_usage=False)
    reply = Reply(sse=events, event_delay=0.2)
    upstream.enqueue(reply)

    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": USER_MESSAGES, "stream": True},
        headers={"Authorization": f"Bearer {cast.all_models}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        received = 0
        for line in response.iter_lines():
            received += line.startswith("data: ")
            if received == 2:
                break
    [recorded] = upstream.requests
    deadline = time.monotonic() + len(events) * reply.event_delay + 5
    while not recorded.client_disconnected and reply.sent < len(events) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert recorded.client_disconnected, f"the upstream wrote all {reply.sent} events"
    assert reply.sent < len(events)
