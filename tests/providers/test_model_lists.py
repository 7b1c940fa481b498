"""The model list (engine.alist_models): each provider's request, and its answer in OpenAI's shape."""

import pytest

from providers import engine
from providers.exceptions import AuthenticationError
from providers.registry import PROVIDERS
from providers.upstream import ResolvedDeployment
from tests.fakes.openai_responses import model_list, openai_error
from tests.fakes.upstream import Reply

ANTHROPIC_MODELS = {
    "data": [
        {
            "type": "model",
            "id": "claude-3-5-haiku-20241022",
            "display_name": "Claude Haiku 3.5",
            "created_at": "2024-10-22T00:00:00Z",
        }
    ],
    "has_more": False,
    "first_id": "claude-3-5-haiku-20241022",
    "last_id": "claude-3-5-haiku-20241022",
}


async def test_an_openai_compatible_provider_lists_models_with_its_key_and_headers(upstream):
    deployment = ResolvedDeployment(
        provider="groq",
        model="llama-3.1-8b-instant",
        api_base=upstream.url + "/openai/v1/",
        api_key="gsk-test",
        extra_headers={"X-Team": "blue"},
    )

    models = await engine.alist_models(deployment, PROVIDERS["groq"])

    request = upstream.last
    assert (request.method, request.path, request.body) == ("GET", "/openai/v1/models", b"")
    assert request.headers["Authorization"] == "Bearer gsk-test"
    assert request.headers["X-Team"] == "blue"
    assert models == model_list("gpt-4o", "dall-e-3", "text-embedding-3-small")


async def test_azure_lists_the_resource_models_with_api_version_and_api_key(upstream):
    deployment = ResolvedDeployment(
        provider="azure",
        model="my-dalle",
        api_base=upstream.url,
        api_key="azure-key",
        api_version="2024-06-01",
    )

    await engine.alist_models(deployment, PROVIDERS["azure"])

    request = upstream.last
    assert (request.method, request.path, request.query) == (
        "GET",
        "/openai/models",
        {"api-version": "2024-06-01"},
    )
    assert request.headers["api-key"] == "azure-key"
    assert "Authorization" not in request.headers


async def test_anthropic_models_come_back_in_openai_shape(upstream):
    upstream.enqueue(Reply(json=ANTHROPIC_MODELS))
    deployment = ResolvedDeployment(
        provider="anthropic",
        model="claude-3-5-haiku-20241022",
        api_base=upstream.url + "/v1",
        api_key="sk-ant-x",
    )

    models = await engine.alist_models(deployment, PROVIDERS["anthropic"])

    request = upstream.last
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["x-api-key"] == "sk-ant-x"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert models == {
        "object": "list",
        "data": [
            {
                "id": "claude-3-5-haiku-20241022",
                "object": "model",
                "created": 1729555200,
                "owned_by": "anthropic",
            }
        ],
    }


async def test_the_mock_provider_lists_its_model_without_a_request(upstream):
    deployment = ResolvedDeployment(provider="mock", model="demo")

    models = await engine.alist_models(deployment, PROVIDERS["mock"])

    assert models == {
        "object": "list",
        "data": [{"id": "demo", "object": "model", "created": 0, "owned_by": "mock"}],
    }
    assert upstream.requests == []


async def test_a_refused_key_raises_authentication_error_with_the_key_masked(upstream):
    key = "sk-proj-abcdefghijklmnop1234"
    upstream.enqueue(openai_error(401, f"Incorrect API key provided: {key}.", "invalid_request_error"))
    deployment = ResolvedDeployment(provider="openai", model="dall-e-3", api_base=upstream.url, api_key=key)

    with pytest.raises(AuthenticationError) as raised:
        await engine.alist_models(deployment, PROVIDERS["openai"])

    assert raised.value.status_code == 401
    assert key not in str(raised.value)
    assert "sk-...1234" in str(raised.value)
