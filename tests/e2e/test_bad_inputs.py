"""Bad inputs against a live gateway: each is a 4xx in OpenAI's shape naming the field, never a 500.

The malformed bodies an outside review sent (each gave an HTML 500), fields out of range (``n``
that allocated until the kernel killed the process, a ``user`` the ledger cannot store), ``n``
without ``max_tokens`` against a nearly spent budget, gateway-only fields that must not reach the
provider, and the handler's own answers (a body over the limit, a Host not in ALLOWED_HOSTS, an
unknown path). With DATABASE_URL/REDIS_URL set the gateway runs on PostgreSQL and Redis.
"""

from __future__ import annotations

import json

import httpx
import pytest

MESSAGES = [{"role": "user", "content": "Hello"}]

SEED = """
import json
from decimal import Decimal
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
base = {base!r}
deployment_create(model_name="demo", provider="mock", model="demo",
                  extra_params={{"mock_response": "deployment reply"}})
deployment_create(model_name="mock-open", provider="mock", model="demo",
                  extra_params={{"mock_response": "deployment reply", "allow_client_mock": True}})
deployment_create(model_name="gpt-4o-mini", provider="openai", model="gpt-4o-mini", api_base=base,
                  api_key="sk-upstream")
models = ["demo", "mock-open", "gpt-4o-mini"]
# A budget, so every request is held: the hold reads n and max_tokens.
_, plain = virtual_key_create(key_alias="bad-inputs", models=models, max_budget=Decimal("100"))
_, nearly_spent = virtual_key_create(key_alias="nearly-spent", models=models, max_budget=Decimal("0.02"))
print(json.dumps({{"plain": plain, "nearly_spent": nearly_spent}}))
"""


@pytest.fixture(scope="module")
def secrets(gateway, _upstream_server) -> dict[str, str]:
    return json.loads(gateway.run_python(SEED.format(base=_upstream_server.url)))


@pytest.fixture(scope="module")
def client(gateway, secrets):
    with httpx.Client(
        base_url=gateway.url, headers={"Authorization": f"Bearer {secrets['plain']}"}, timeout=30
    ) as client:
        yield client


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def chat(extra: bytes) -> bytes:
    return b'{"model": "demo", "messages": [{"role": "user", "content": "Hi"}], ' + extra + b"}"


def assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


# The 13 inputs of the review: each was an HTML 500.
REVIEW_INPUTS = {
    "messages-string": (b'{"model": "demo", "messages": "hello"}', "messages"),
    "messages-strings": (b'{"model": "demo", "messages": ["hello", "there"]}', "messages[0]"),
    "messages-ints": (b'{"model": "demo", "messages": [1, 2]}', "messages[0]"),
    "messages-object": (b'{"model": "demo", "messages": {"role": "user", "content": "hi"}}', "messages"),
    "content-junk-parts": (
        b'{"model": "demo", "messages": [{"role": "user", "content": [1, "x", {"a": 1}]}]}',
        "messages[0].content[0]",
    ),
    "content-part-without-text": (
        b'{"model": "demo", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}',
        "messages[0].content[0].text",
    ),
    "n-string": (chat(b'"n": "abc"'), "n"),
    "n-list": (chat(b'"n": [1]'), "n"),
    "stream-options-string": (chat(b'"stream": true, "stream_options": "x"'), "stream_options"),
    "user-nul": (chat(b'"user": "a\\u0000b"'), "user"),
    "mock-delay-string": (chat(b'"mock_delay": "abc"'), "mock_delay"),
    "nested-255": (chat(b'"x": ' + nested(255)), "body"),
    "nested-1000": (chat(b'"x": ' + nested(1000)), "body"),
}


@pytest.mark.parametrize("name", REVIEW_INPUTS)
def test_each_malformed_body_of_the_review_is_a_400_naming_its_field(client, name):
    body, param = REVIEW_INPUTS[name]

    response = client.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})

    error = assert_openai_error(response, 400, param)
    assert error["type"] == "invalid_request_error"


def test_spend_logs_with_the_last_representable_end_date_is_a_400_naming_it(client):
    response = client.get("/spend/logs", params={"end_date": "9999-12-31"})

    assert_openai_error(response, 400, "end_date")


def test_a_user_longer_than_the_ledger_stores_is_refused_before_the_upstream_is_called(client, upstream):
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "user": "u" * 201}

    response = client.post("/v1/chat/completions", json=body)

    assert_openai_error(response, 400, "user")
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/images/generations", {"model": "demo", "prompt": "x", "n": 11}),
        ("/v1/images/generations", {"model": "demo", "prompt": "x", "n": 10**9}),
        ("/v1/chat/completions", {"model": "demo", "messages": MESSAGES, "n": 129}),
        ("/v1/completions", {"model": "demo", "prompt": "x", "n": 10**6}),
    ],
)
def test_n_beyond_openais_range_is_refused(client, path, body):
    error = assert_openai_error(client.post(path, json=body), 400, "n")

    assert error["code"] == "integer_above_max_value"


def test_ten_images_are_still_served(client):
    response = client.post("/v1/images/generations", json={"model": "demo", "prompt": "x", "n": 10})

    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 10


def test_n_without_max_tokens_is_held_for_every_choice(gateway, secrets, upstream):
    # $0.02 left: one choice of gpt-4o-mini at its full output limit fits, 128 of them do not.
    headers = {"Authorization": f"Bearer {secrets['nearly_spent']}"}
    many = {"model": "gpt-4o-mini", "messages": MESSAGES, "n": 128}
    one = {"model": "gpt-4o-mini", "messages": MESSAGES}

    refused = httpx.post(f"{gateway.url}/v1/chat/completions", json=many, headers=headers, timeout=30)
    assert upstream.requests == []
    served = httpx.post(f"{gateway.url}/v1/chat/completions", json=one, headers=headers, timeout=30)

    error = assert_openai_error(refused, 429)
    assert error["type"] == "budget_exceeded"
    assert served.status_code == 200, served.text


def test_gateway_only_fields_are_not_forwarded_upstream(client, upstream):
    gateway_only = {
        "metadata": {"tags": ["a"]},
        "tags": ["a"],
        "fallbacks": ["demo"],
        "num_retries": 3,
        "context_window_fallback_dict": {"gpt-4o-mini": "demo"},
        "cache": {"no-cache": True},
        "caching": True,
        "guardrails": ["none"],
        "mock_response": "client reply",
        "mock_delay": 1,
        "mock_timeout": False,
        "api_key": "sk-client",
        "api_base": "http://attacker.example",
        "base_url": "http://attacker.example",
        "timeout": 10,
    }
    provider_fields = {"temperature": 0.3, "seed": 7, "unknown_to_the_gateway": {"a": [1]}}

    response = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES, **gateway_only, **provider_fields},
    )

    assert response.status_code == 200, response.text
    sent = upstream.last.json
    assert not set(gateway_only) & set(sent)
    assert {name: sent[name] for name in provider_fields} == provider_fields


def test_a_clients_mock_options_are_ignored_unless_the_deployment_allows_them(client):
    def reply(model: str) -> str:
        body = {"model": model, "messages": MESSAGES, "mock_response": "client reply"}
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        return response.json()["choices"][0]["message"]["content"]

    assert reply("demo") == "deployment reply"
    assert reply("mock-open") == "client reply"


def test_a_body_over_the_upload_limit_is_a_json_413(client):
    response = client.post(
        "/v1/chat/completions", content=b"x" * (3 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )

    assert_openai_error(response, 413)


INFERENCE_PATHS = ["/v1/chat/completions", "/v1/models", "/openai/deployments/demo/embeddings"]


@pytest.mark.parametrize("path", INFERENCE_PATHS)
def test_a_host_outside_allowed_hosts_is_a_json_400_on_inference_paths(client, path):
    body = {"model": "demo", "messages": MESSAGES}

    response = client.post(path, json=body, headers={"Host": "evil.example"})

    assert assert_openai_error(response, 400)["code"] == "invalid_host"


@pytest.mark.parametrize("path", ["/v1/nowhere", "/openai/deployments/demo/nowhere", "/nowhere"])
def test_an_unknown_path_is_a_json_404(client, path):
    assert_openai_error(client.get(path), 404)
