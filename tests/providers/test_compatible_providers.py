"""OpenAI-compatible providers: each is a few declared lines, and each really works end to end."""

import pytest

from llm_gateway import completion, embedding
from llm_gateway.exceptions import AuthenticationError, BadRequestError, UnsupportedParamsError
from providers.registry import PROVIDERS, model_resolve

COMPATIBLE = sorted(
    name
    for name, spec in PROVIDERS.items()
    if spec.adapter_module == "providers.adapters.openai" and name != "openai"
)
MESSAGES = [{"role": "user", "content": "Hi"}]


def test_the_registry_declares_at_least_twenty_compatible_providers():
    assert len(COMPATIBLE) >= 20
    for name in (
        "groq",
        "together_ai",
        "fireworks_ai",
        "deepseek",
        "mistral",
        "xai",
        "openrouter",
        "perplexity",
        "deepinfra",
        "cerebras",
        "nvidia_nim",
        "sambanova",
        "hosted_vllm",
        "lm_studio",
    ):
        assert name in COMPATIBLE


@pytest.mark.parametrize("provider", COMPATIBLE)
def test_each_compatible_provider_answers_a_chat_call(upstream, provider):
    response = completion(
        model=f"{provider}/some-model", messages=MESSAGES, api_base=upstream.url, api_key="k-1"
    )

    assert upstream.last.path == "/chat/completions"
    assert upstream.last.headers["Authorization"] == "Bearer k-1"
    assert upstream.last.json == {"model": "some-model", "messages": MESSAGES}
    assert response.choices[0].message.content


@pytest.mark.parametrize("provider", COMPATIBLE)
def test_each_compatible_provider_streams(upstream, provider):
    chunks = list(
        completion(model=f"{provider}/m", messages=MESSAGES, stream=True, api_base=upstream.url, api_key="k")
    )

    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "Hello from the fake upstream"


def test_a_provider_with_an_org_path_keeps_the_model_id_whole(upstream):
    completion(
        model="together_ai/meta-llama/Llama-3-70b", messages=MESSAGES, api_base=upstream.url, api_key="k"
    )

    assert upstream.last.json["model"] == "meta-llama/Llama-3-70b"


def test_an_excluded_parameter_raises_unless_dropped(upstream):
    with pytest.raises(UnsupportedParamsError, match="logit_bias") as raised:
        completion(
            model="groq/llama-3.1-8b-instant",
            messages=MESSAGES,
            logit_bias={"1": 2},
            api_base=upstream.url,
            api_key="k",
        )
    assert raised.value.status_code == 400 and raised.value.param == "logit_bias"
    assert upstream.requests == []

    completion(
        model="groq/llama-3.1-8b-instant",
        messages=MESSAGES,
        logit_bias={"1": 2},
        drop_params=True,
        api_base=upstream.url,
        api_key="k",
    )
    assert "logit_bias" not in upstream.last.json


def test_it_reads_the_providers_own_key_variable(upstream, monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk-env")

    completion(model="groq/llama", messages=MESSAGES, api_base=upstream.url)

    assert upstream.last.headers["Authorization"] == "Bearer gsk-env"


def test_a_missing_key_names_the_variable_to_set(monkeypatch):
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)

    with pytest.raises(AuthenticationError, match="DEEPSEEK_API_KEY"):
        completion(model="deepseek/deepseek-chat", messages=MESSAGES)


def test_local_servers_need_no_key(upstream):
    completion(model="hosted_vllm/qwen", messages=MESSAGES, api_base=upstream.url)

    assert "Authorization" not in upstream.last.headers


def test_a_chat_only_provider_refuses_embeddings(upstream):
    with pytest.raises(BadRequestError, match="does not support embedding"):
        embedding(model="groq/some-embedder", input="x", api_base=upstream.url, api_key="k")


@pytest.mark.parametrize(
    ("model", "provider", "model_id"),
    [
        ("gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("o3-mini", "openai", "o3-mini"),
        ("text-embedding-3-small", "openai", "text-embedding-3-small"),
        ("dall-e-3", "openai", "dall-e-3"),
        ("gpt-image-1", "openai", "gpt-image-1"),
        ("claude-3-5-haiku-20241022", "anthropic", "claude-3-5-haiku-20241022"),
        ("anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
        ("azure/my-deployment", "azure", "my-deployment"),
        ("mock/anything", "mock", "anything"),
        ("openrouter/anthropic/claude-3.5-sonnet", "openrouter", "anthropic/claude-3.5-sonnet"),
    ],
)
def test_it_resolves_model_names_to_providers(model, provider, model_id):
    spec, resolved = model_resolve(model)

    assert (spec.name, resolved) == (provider, model_id)


def test_an_unknown_bare_model_asks_for_a_provider_prefix():
    with pytest.raises(BadRequestError, match="provider/model"):
        model_resolve("llama-3-70b")
