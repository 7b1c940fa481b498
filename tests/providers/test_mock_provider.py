"""The built-in mock provider: answers every operation locally, in shapes the official SDK accepts.

Responses are checked against the ``openai`` package's own types, so a mock answer is one an
application written against OpenAI's SDK can read.
"""

import base64
import struct

import openai.types
import openai.types.chat
import pytest

from llm_gateway import (
    acompletion,
    aembedding,
    completion,
    embedding,
    image_generation,
    text_completion,
    token_counter,
)
from llm_gateway.exceptions import AuthenticationError, RateLimitError, Timeout
from providers.adapters.mock import DEFAULT_RESPONSE

MESSAGES = [{"role": "user", "content": "Tell me something true."}]
REPLY = "The quick brown fox jumps over the lazy dog"


@pytest.fixture
def no_openai_credentials(monkeypatch):
    """Make sure no OpenAI key or base URL comes from the environment."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(name, raising=False)


def _content(chunks) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


def test_a_mock_model_answers_chat():
    response = completion(model="mock/anything", messages=MESSAGES)

    assert response.choices[0].message.content == DEFAULT_RESPONSE
    assert response.choices[0].message.role == "assistant"
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "anything"
    assert response._hidden_params["provider"] == "mock"
    openai.types.chat.ChatCompletion.model_validate(response.model_dump())


def test_mock_response_sets_the_answer_of_a_mock_model():
    response = completion(model="mock/anything", messages=MESSAGES, mock_response=REPLY)

    assert response.choices[0].message.content == REPLY


def test_a_mock_chat_usage_is_counted_with_the_tokenizer():
    response = completion(model="mock/anything", messages=MESSAGES, mock_response=REPLY)

    completion_tokens = token_counter(model="gpt-4o", text=REPLY)
    assert response.usage.completion_tokens == completion_tokens
    assert response.usage.prompt_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + completion_tokens


def test_a_mock_chat_prompt_is_counted_as_openai_counts_messages():
    response = completion(model="mock/anything", messages=MESSAGES, mock_response=REPLY)

    assert response.usage.prompt_tokens == token_counter(model="gpt-4o", messages=MESSAGES)


def test_a_mock_model_answers_a_text_completion():
    response = text_completion(model="mock/anything", prompt="Once upon a time", mock_response=REPLY)

    assert response.choices[0].text == REPLY
    assert response.usage.prompt_tokens == token_counter(model="gpt-4o", text="Once upon a time")
    assert response.usage.completion_tokens == token_counter(model="gpt-4o", text=REPLY)
    openai.types.Completion.model_validate(response.model_dump())


def test_a_mock_model_answers_embeddings_as_floats():
    response = embedding(model="mock/anything", input=["Paris", "Rome"])

    assert [item.index for item in response.data] == [0, 1]
    assert all(isinstance(value, float) for item in response.data for value in item.embedding)
    assert response.data[0].embedding != response.data[1].embedding
    assert response.usage.prompt_tokens == token_counter(model="gpt-4o", text="Paris Rome")
    openai.types.CreateEmbeddingResponse.model_validate(response.model_dump())


def test_mock_embeddings_are_deterministic_for_the_same_input():
    first = embedding(model="mock/anything", input="Paris")
    second = embedding(model="mock/other", input=["Paris"])

    assert first.data[0].embedding == second.data[0].embedding


def test_a_mock_model_answers_embeddings_as_base64():
    floats = embedding(model="mock/anything", input="Paris")
    encoded = embedding(model="mock/anything", input="Paris", encoding_format="base64")

    raw = base64.b64decode(encoded.data[0].embedding)
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-6)
    again = embedding(model="mock/anything", input="Paris", encoding_format="base64")
    assert again.data[0].embedding == encoded.data[0].embedding


def test_a_mock_model_generates_image_urls():
    response = image_generation(prompt="A red bicycle", model="mock/anything", n=2)

    assert len(response.data) == 2
    assert all(image.url for image in response.data)
    assert response.data[0].revised_prompt == "A red bicycle"
    openai.types.ImagesResponse.model_validate(response.model_dump())


def test_a_mock_model_generates_base64_images():
    response = image_generation(prompt="A red bicycle", model="mock/anything", response_format="b64_json")

    assert base64.b64decode(response.data[0].b64_json)
    assert response.data[0].url is None
    openai.types.ImagesResponse.model_validate(response.model_dump())


def test_mock_response_answers_a_real_model_without_a_key_or_the_network(upstream, no_openai_credentials):
    response = completion(
        model="openai/gpt-4o-mini", messages=MESSAGES, mock_response=REPLY, api_base=upstream.url
    )

    assert response.choices[0].message.content == REPLY
    assert upstream.requests == []
    openai.types.chat.ChatCompletion.model_validate(response.model_dump())


def test_a_real_model_without_mock_response_still_needs_a_key(upstream, no_openai_credentials):
    with pytest.raises(AuthenticationError):
        completion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=upstream.url)

    assert upstream.requests == []


def test_mock_response_raises_an_exception_instance():
    error = RateLimitError("Too many requests (mocked)", retry_after=3)

    with pytest.raises(RateLimitError) as caught:
        completion(model="openai/gpt-4o-mini", messages=MESSAGES, mock_response=error)

    assert caught.value is error


def test_mock_response_raises_an_exception_class():
    with pytest.raises(RateLimitError) as caught:
        completion(model="mock/anything", messages=MESSAGES, mock_response=RateLimitError)

    assert caught.value.status_code == 429
    assert caught.value.provider == "mock"


async def test_acompletion_raises_a_mocked_exception():
    with pytest.raises(RateLimitError):
        await acompletion(model="mock/anything", messages=MESSAGES, mock_response=RateLimitError)


def test_mock_timeout_raises_timeout_after_the_call_timeout():
    with pytest.raises(Timeout) as caught:
        completion(model="mock/anything", messages=MESSAGES, mock_timeout=True, timeout=0.2)

    assert caught.value.retryable is True


def test_a_mock_stream_yields_the_words_then_usage():
    stream = completion(
        model="mock/anything",
        messages=MESSAGES,
        mock_response=REPLY,
        stream=True,
        stream_options={"include_usage": True},
    )

    chunks = list(stream)

    pieces = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices]
    words = ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog"]
    assert [piece for piece in pieces if piece] == words
    assert _content(chunks) == REPLY
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == token_counter(model="gpt-4o", text=REPLY)
    for chunk in chunks:
        openai.types.chat.ChatCompletionChunk.model_validate(chunk.model_dump())


def test_a_mock_stream_without_include_usage_ends_with_finish_reason():
    chunks = list(completion(model="mock/anything", messages=MESSAGES, mock_response=REPLY, stream=True))

    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)


async def test_an_async_mock_stream_yields_the_words_then_usage():
    stream = await acompletion(
        model="mock/anything",
        messages=MESSAGES,
        mock_response=REPLY,
        stream=True,
        stream_options={"include_usage": True},
    )

    chunks = [chunk async for chunk in stream]

    assert _content(chunks) == REPLY
    assert chunks[-1].usage.completion_tokens == token_counter(model="gpt-4o", text=REPLY)
    for chunk in chunks:
        openai.types.chat.ChatCompletionChunk.model_validate(chunk.model_dump())


def test_a_mock_text_completion_streams():
    chunks = list(
        text_completion(
            model="mock/anything",
            prompt="Once upon a time",
            mock_response=REPLY,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == REPLY
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens == token_counter(model="gpt-4o", text=REPLY)
    # The SDK builds stream chunks without validation (finish_reason is null until the last one),
    # so only the closing chunk is checked against its type.
    openai.types.Completion.model_validate(chunks[-2].model_dump())


async def test_aembedding_answers_like_embedding():
    sync = embedding(model="mock/anything", input="Paris")
    response = await aembedding(model="mock/anything", input="Paris")

    assert response.data[0].embedding == sync.data[0].embedding
