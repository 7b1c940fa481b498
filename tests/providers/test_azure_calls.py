"""Azure OpenAI end to end: deployment paths, api-version, the api-key header."""

import openai.types
import openai.types.chat
import pytest

from llm_gateway import acompletion, completion, embedding, image_generation
from llm_gateway.exceptions import BadRequestError
from providers.adapters.azure import DEFAULT_API_VERSION

MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def azure_call(upstream):
    return {
        "model": "azure/my-gpt4o",
        "api_base": upstream.url,
        "api_key": "azure-key",
        "api_version": "2024-06-01",
    }


def test_it_calls_the_deployment_path_with_api_version_and_api_key(upstream, azure_call):
    response = completion(messages=MESSAGES, temperature=0.5, **azure_call)

    request = upstream.last
    assert request.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert request.query == {"api-version": "2024-06-01"}
    assert request.headers["api-key"] == "azure-key"
    assert "Authorization" not in request.headers
    assert request.json == {"messages": MESSAGES, "temperature": 0.5}
    openai.types.chat.ChatCompletion.model_validate(response.model_dump())


def test_it_accepts_an_endpoint_that_already_ends_in_openai(upstream, azure_call):
    completion(messages=MESSAGES, **{**azure_call, "api_base": upstream.url + "/openai/"})

    assert upstream.last.path == "/openai/deployments/my-gpt4o/chat/completions"


def test_it_uses_the_default_api_version_and_the_environment(upstream, monkeypatch):
    monkeypatch.setenv("AZURE_API_KEY", "env-azure-key")
    monkeypatch.setenv("AZURE_API_BASE", upstream.url)
    monkeypatch.delenv("AZURE_API_VERSION", raising=False)
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)

    completion(model="azure/dep", messages=MESSAGES)

    assert upstream.last.query == {"api-version": DEFAULT_API_VERSION}
    assert upstream.last.headers["api-key"] == "env-azure-key"


async def test_it_streams_from_azure(upstream, azure_call):
    stream = await acompletion(messages=MESSAGES, stream=True, **azure_call)
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])

    assert text == "Hello from the fake upstream"
    assert upstream.last.json["stream"] is True


def test_it_embeds_through_azure(upstream, azure_call):
    response = embedding(input=["x"], **{**azure_call, "model": "azure/embed-small"})

    assert upstream.last.path == "/openai/deployments/embed-small/embeddings"
    openai.types.CreateEmbeddingResponse.model_validate(response.model_dump())


def test_it_generates_images_through_azure(upstream, azure_call):
    response = image_generation(
        prompt="a boat", n=1, size="1024x1024", **{**azure_call, "model": "azure/dalle3"}
    )

    assert upstream.last.path == "/openai/deployments/dalle3/images/generations"
    assert upstream.last.json == {"prompt": "a boat", "n": 1, "size": "1024x1024"}
    assert response.data[0].url


def test_it_requires_an_endpoint(monkeypatch):
    monkeypatch.delenv("AZURE_API_BASE", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)

    with pytest.raises(BadRequestError, match="api_base"):
        completion(model="azure/dep", messages=MESSAGES, api_key="k")
