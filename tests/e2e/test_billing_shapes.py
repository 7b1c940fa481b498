"""Billing end to end, the shapes test_billing.py leaves out: each ledger row costs price x reported tokens.

Azure (priced by its deployment name, or by ``base_model``), an OpenAI-compatible provider (groq),
tool calls, reasoning tokens, an Anthropic stream, images, a stream the upstream drops, an upstream
429 and a per-deployment price. Expected costs are computed from the bundled price table
(``providers.price_table``) and compared as exact Decimals; every row is read back by the call id the
gateway answered with.
"""

import json
import time
from decimal import Decimal

import httpx
import pytest

from providers.price_table import model_info
from providers.tokens import token_counter
from tests.fakes.anthropic_responses import anthropic_stream_events
from tests.fakes.openai_responses import chat_chunk, chat_completion, openai_error
from tests.fakes.upstream import Reply, sse_json

MESSAGES = [{"role": "user", "content": "Say hello"}]
AZURE_VERSION = "2024-10-21"
OVERRIDE_ID = "override-deployment"
OVERRIDE_INPUT = Decimal("0.000001")
OVERRIDE_OUTPUT = Decimal("0.000003")

# Every deployment the module calls; api_base (the fake upstream) and the key are added when seeding.
DEPLOYMENTS = [
    {"model_name": "gpt-4o-mini", "provider": "openai", "model": "gpt-4o-mini"},
    # Azure deployment named after its model: the table's azure/ entry prices it.
    {"model_name": "azure-mini", "provider": "azure", "model": "gpt-4o-mini", "api_version": AZURE_VERSION},
    # Azure deployments named by their owner: only base_model says what they are.
    {
        "model_name": "azure-prod-model-info",
        "provider": "azure",
        "model": "prod-mini",
        "api_version": AZURE_VERSION,
        "model_info": {"base_model": "azure/gpt-4o-mini"},
    },
    {
        "model_name": "azure-prod-litellm-params",
        "provider": "azure",
        "model": "prod-mini",
        "api_version": AZURE_VERSION,
        "extra_params": {"base_model": "azure/gpt-4o-mini"},
    },
    {
        "model_name": "azure-prod-bare",
        "provider": "azure",
        "model": "prod-mini",
        "api_version": AZURE_VERSION,
    },
    {
        "model_name": "azure-gov",
        "provider": "azure",
        "model": "gov-gpt",
        "api_version": AZURE_VERSION,
        "model_info": {"base_model": "azure/us-gov/gpt-5.1"},
    },
    {
        "model_name": "azure-dalle",
        "provider": "azure",
        "model": "dall-e-3",
        "mode": "image_generation",
        "api_version": AZURE_VERSION,
    },
    {"model_name": "groq-oss", "provider": "groq", "model": "openai/gpt-oss-20b"},
    {"model_name": "o3-mini", "provider": "openai", "model": "o3-mini"},
    {"model_name": "qwen-turbo", "provider": "dashscope", "model": "qwen-turbo"},
    {"model_name": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5"},
    {
        "model_name": "image-per-image",
        "provider": "openai",
        "model": "1024-x-1024/gpt-image-1.5",
        "mode": "image_generation",
    },
    {"model_name": "gpt-image", "provider": "openai", "model": "gpt-image-1", "mode": "image_generation"},
    {"model_name": "override", "provider": "openai", "model": "gpt-4o-mini", "model_id": OVERRIDE_ID},
    {
        "model_name": "priced-in-params",
        "provider": "openai",
        "model": "house-llm",
        "extra_params": {
            "input_cost_per_token": "0.000001",
            "output_cost_per_token": "0.000002",
            "cache_read_input_token_cost": "0.0000005",
        },
    },
]

SEED = """
import json
from llm_gateway.models import Team
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
for fields in json.loads({deployments!r}):
    deployment_create(api_base={base!r}, api_key="sk-upstream", **fields)
team = Team.objects.create(team_alias="shapes-team")
key, secret = virtual_key_create(key_alias="shapes", team=team)
print(secret)
"""

ROWS = """
import json
from billing.ledger.consumer import ledger_drain
ledger_drain()  # with REDIS_URL, rows wait in the Redis stream for the consumer; a no-op embedded
from billing.models import LedgerEntry
rows = LedgerEntry.objects.filter(request_id__in=json.loads({request_ids!r}))
print(json.dumps({{r.request_id: {{
    "cost": str(r.cost), "price": r.price, "prompt": r.prompt_tokens, "completion": r.completion_tokens,
    "cached": r.cached_tokens, "cache_creation": r.cache_creation_tokens, "reasoning": r.reasoning_tokens,
    "images": r.images, "basis": r.billing_basis, "status": r.status, "http_status": r.http_status,
    "error_type": r.error_type, "stream": r.stream, "provider": r.provider, "model": r.provider_model,
    "deployment_id": r.deployment_id,
}} for r in rows}}))
"""

ALL_REQUEST_IDS = """
import json
from billing.ledger.consumer import ledger_drain
ledger_drain()
from billing.models import LedgerEntry
# This module's key only: with REDIS_URL, the shared stream also carries other modules' gateways' rows.
print(json.dumps(list(LedgerEntry.objects.filter(key_alias="shapes").values_list("request_id", flat=True))))
"""

PRICE_OVERRIDE = """
from decimal import Decimal
from billing.models import Price
price = Price.objects.create(
    model="gpt-4o-mini", provider="openai", deployment_id={deployment_id!r},
    input_cost_per_token=Decimal({input!r}), output_cost_per_token=Decimal({output!r}),
)
print(price.id)
"""


@pytest.fixture(scope="module")
def seeded(gateway, _upstream_server) -> dict:
    """The module's key, and every call id the gateway answered with (each must have one ledger row)."""
    secret = gateway.run_python(SEED.format(base=_upstream_server.url, deployments=json.dumps(DEPLOYMENTS)))
    return {"secret": secret, "request_ids": []}


def _headers(seeded: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {seeded['secret']}"}


def _post(gateway, seeded: dict, path: str, body: dict) -> httpx.Response:
    response = httpx.post(f"{gateway.url}{path}", json=body, headers=_headers(seeded), timeout=30)
    seeded["request_ids"].append(response.headers["x-litellm-call-id"])
    return response


def _chat(gateway, seeded: dict, model: str, **extra) -> httpx.Response:
    return _post(gateway, seeded, "/v1/chat/completions", {"model": model, "messages": MESSAGES, **extra})


def _stream(gateway, seeded: dict, model: str, **extra) -> tuple[str, list[str]]:
    """Stream a chat to its end; return the call id and the data of every event the client saw."""
    body = {"model": model, "messages": MESSAGES, "stream": True, **extra}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=_headers(seeded), timeout=30
    ) as response:
        assert response.status_code == 200
        request_id = response.headers["x-litellm-call-id"]
        seeded["request_ids"].append(request_id)
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    return request_id, events


def _rows(gateway, request_ids: list[str]) -> dict[str, dict]:
    """Return the ledger rows of these calls once all were written (the writer flushes in batches)."""
    deadline = time.monotonic() + 20
    while True:
        rows = json.loads(gateway.run_python(ROWS.format(request_ids=json.dumps(request_ids))))
        if len(rows) == len(set(request_ids)) or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def _row(gateway, request_id: str) -> dict:
    rows = _rows(gateway, [request_id])
    assert request_id in rows, f"no ledger row for {request_id}"
    return rows[request_id]


def _row_of(gateway, response: httpx.Response) -> dict:
    return _row(gateway, response.headers["x-litellm-call-id"])


def _tokens_cost(
    info: dict,
    prompt: int,
    completion: int,
    *,
    cached: int = 0,
    cache_creation: int = 0,
    reasoning: int = 0,
) -> Decimal:
    """Return what the table's prices charge for these tokens (cache and reasoning at their own rates)."""
    input_price, output_price = info["input_cost_per_token"], info["output_cost_per_token"]
    return (
        (prompt - cached - cache_creation) * input_price
        + cached * info.get("cache_read_input_token_cost", input_price)
        + cache_creation * info.get("cache_creation_input_token_cost", input_price)
        + (completion - reasoning) * output_price
        + reasoning * info.get("output_cost_per_reasoning_token", output_price)
    )


def _reply_with_usage(usage: dict, model: str = "gpt-4o-mini", **extra) -> Reply:
    return Reply(json={**chat_completion(model, **extra), "usage": usage})


CACHED_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 50,
    "total_tokens": 1050,
    "prompt_tokens_details": {"cached_tokens": 400},
}


def test_an_azure_deployment_named_after_its_model_is_priced_at_azures_entry(gateway, seeded, upstream):
    upstream.enqueue(_reply_with_usage(CACHED_USAGE))

    response = _chat(gateway, seeded, "azure-mini")

    assert response.status_code == 200
    assert upstream.last.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    row = _row_of(gateway, response)
    info = model_info("gpt-4o-mini", "azure")
    assert info["key"] == "azure/gpt-4o-mini"
    assert (row["provider"], row["prompt"], row["cached"], row["completion"]) == ("azure", 1000, 400, 50)
    assert Decimal(row["cost"]) == _tokens_cost(info, 1000, 50, cached=400)
    assert row["price"]["model"] == "azure/gpt-4o-mini"


@pytest.mark.parametrize("model_group", ["azure-prod-model-info", "azure-prod-litellm-params"])
def test_an_azure_deployment_is_priced_at_its_base_model(gateway, seeded, upstream, model_group):
    upstream.enqueue(_reply_with_usage(CACHED_USAGE))

    response = _chat(gateway, seeded, model_group)

    assert upstream.last.path == "/openai/deployments/prod-mini/chat/completions"
    assert "base_model" not in upstream.last.json
    row = _row_of(gateway, response)
    expected = _tokens_cost(model_info("azure/gpt-4o-mini", "azure"), 1000, 50, cached=400)
    assert Decimal(row["cost"]) == expected == Decimal(response.headers["x-litellm-response-cost"])
    assert row["price"]["base_model"] == "azure/gpt-4o-mini"
    assert row["price"]["model"] == "azure/gpt-4o-mini"


def test_an_azure_deployment_named_apart_from_its_model_without_base_model_is_recorded_unpriced(
    gateway, seeded, upstream
):
    upstream.enqueue(_reply_with_usage(CACHED_USAGE))

    response = _chat(gateway, seeded, "azure-prod-bare")

    assert response.status_code == 200
    row = _row_of(gateway, response)
    assert (row["prompt"], row["completion"], Decimal(row["cost"])) == (1000, 50, 0)
    assert row["price"]["source"] == "unpriced"


def test_a_cost_finer_than_a_ten_billionth_is_recorded_exactly(gateway, seeded, upstream):
    upstream.enqueue(_reply_with_usage({"prompt_tokens": 1001, "completion_tokens": 0, "total_tokens": 1001}))

    response = _chat(gateway, seeded, "azure-gov")

    expected = 1001 * model_info("azure/us-gov/gpt-5.1", "azure")["input_cost_per_token"]
    assert Decimal(response.headers["x-litellm-response-cost"]) == expected
    assert Decimal(_row_of(gateway, response)["cost"]) == expected


def test_groq_is_priced_from_the_table_under_its_own_name(gateway, seeded, upstream):
    usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 300,
        "total_tokens": 2300,
        "prompt_tokens_details": {"cached_tokens": 1024},
    }
    upstream.enqueue(_reply_with_usage(usage, "openai/gpt-oss-20b"))

    response = _chat(gateway, seeded, "groq-oss")

    assert upstream.last.path == "/chat/completions" and upstream.last.json["model"] == "openai/gpt-oss-20b"
    row = _row_of(gateway, response)
    info = model_info("openai/gpt-oss-20b", "groq")
    assert info["key"] == "groq/openai/gpt-oss-20b"
    assert (row["provider"], row["prompt"], row["cached"], row["completion"]) == ("groq", 2000, 1024, 300)
    assert Decimal(row["cost"]) == _tokens_cost(info, 2000, 300, cached=1024)
    assert row["price"]["model"] == "groq/openai/gpt-oss-20b"


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
TOOL_USAGE = {"prompt_tokens": 85, "completion_tokens": 17, "total_tokens": 102}


def _tool_call_reply(stream: bool) -> Reply:
    call = {"id": "call_fake1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    if not stream:
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        call["function"]["arguments"] = '{"city": "Paris"}'
        body = chat_completion("gpt-4o-mini", usage=dict(TOOL_USAGE))
        body["choices"][0].update(message=message, finish_reason="tool_calls")
        return Reply(json=body)
    pieces = ['{"city": ', '"Paris"}']
    events = [
        sse_json(chat_chunk("gpt-4o-mini", {"role": "assistant", "tool_calls": [{"index": 0, **call}]}))
    ]
    events += [
        sse_json(chat_chunk("gpt-4o-mini", {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        for piece in pieces
    ]
    events.append(sse_json(chat_chunk("gpt-4o-mini", {}, "tool_calls")))
    events.append(sse_json({**chat_chunk("gpt-4o-mini", {}), "choices": [], "usage": dict(TOOL_USAGE)}))
    return Reply(sse=[*events, "[DONE]"])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_chat_with_tool_calls_is_billed_at_the_reported_usage(gateway, seeded, upstream, stream):
    upstream.enqueue(_tool_call_reply(stream))

    if stream:
        request_id, events = _stream(gateway, seeded, "gpt-4o-mini", tools=TOOLS)
        assert events[-1] == "[DONE]"
        row = _row(gateway, request_id)
    else:
        response = _chat(gateway, seeded, "gpt-4o-mini", tools=TOOLS)
        assert response.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
        row = _row_of(gateway, response)

    assert (row["prompt"], row["completion"], row["basis"]) == (85, 17, "provider_reported")
    assert Decimal(row["cost"]) == _tokens_cost(model_info("gpt-4o-mini", "openai"), 85, 17)


REASONING_USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 500,
    "total_tokens": 600,
    "completion_tokens_details": {"reasoning_tokens": 300},
}


@pytest.mark.parametrize(
    ("model_group", "model", "provider"),
    [("o3-mini", "o3-mini", "openai"), ("qwen-turbo", "qwen-turbo", "dashscope")],
)
def test_reasoning_tokens_are_stored_and_priced(gateway, seeded, upstream, model_group, model, provider):
    upstream.enqueue(_reply_with_usage(REASONING_USAGE, model))

    response = _chat(gateway, seeded, model_group)

    row = _row_of(gateway, response)
    info = model_info(model, provider)
    assert (row["prompt"], row["completion"], row["reasoning"]) == (100, 500, 300)
    # o3-mini has no reasoning price (reasoning is output); dashscope/qwen-turbo has its own.
    assert ("output_cost_per_reasoning_token" in info) is (provider == "dashscope")
    assert Decimal(row["cost"]) == _tokens_cost(info, 100, 500, reasoning=300)


def test_an_anthropic_stream_is_billed_at_its_message_start_and_delta_usage(gateway, seeded, upstream):
    usage = {
        "input_tokens": 100,
        "output_tokens": 20,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 600,
    }
    upstream.enqueue(Reply(sse=anthropic_stream_events("claude-sonnet-4-5", usage=usage)))

    request_id, events = _stream(gateway, seeded, "claude")

    assert events[-1] == "[DONE]"
    row = _row(gateway, request_id)
    assert (row["prompt"], row["cached"], row["cache_creation"], row["completion"]) == (1000, 600, 300, 20)
    assert row["stream"] is True and row["basis"] == "provider_reported"
    info = model_info("claude-sonnet-4-5", "anthropic")
    assert Decimal(row["cost"]) == _tokens_cost(info, 1000, 20, cached=600, cache_creation=300)


def test_images_priced_per_image_cost_n_times_the_image_price(gateway, seeded, upstream):
    response = _post(
        gateway, seeded, "/v1/images/generations", {"model": "image-per-image", "prompt": "a cat", "n": 2}
    )

    assert response.status_code == 200 and len(response.json()["data"]) == 2
    row = _row_of(gateway, response)
    per_image = model_info("1024-x-1024/gpt-image-1.5", "openai")["input_cost_per_image"]
    assert (row["images"], row["prompt"], row["completion"]) == (2, 0, 0)
    assert Decimal(row["cost"]) == 2 * per_image == Decimal(response.headers["x-litellm-response-cost"])
    assert Decimal(row["price"]["output_cost_per_image"]) == per_image


def test_a_token_billed_image_model_is_priced_at_its_reported_image_tokens(gateway, seeded, upstream):
    usage = {
        "input_tokens": 50,
        "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
        "output_tokens": 4160,
        "total_tokens": 4210,
    }
    image = {"b64_json": "ZmFrZS1wbmc="}
    upstream.enqueue(Reply(json={"created": 1_700_000_000, "data": [image], "usage": usage}))

    response = _post(gateway, seeded, "/v1/images/generations", {"model": "gpt-image", "prompt": "a cat"})

    row = _row_of(gateway, response)
    info = model_info("gpt-image-1", "openai")
    expected = (
        40 * info["input_cost_per_token"]
        + 10 * info["input_cost_per_image_token"]
        + 4160 * info["output_cost_per_image_token"]
    )
    assert (row["images"], row["prompt"], row["completion"]) == (1, 50, 4160)
    assert Decimal(row["cost"]) == expected


def test_an_azure_dall_e_deployment_is_priced_at_the_requested_size_and_quality(gateway, seeded, upstream):
    body = {"model": "azure-dalle", "prompt": "a cat", "n": 2, "size": "1024x1024", "quality": "standard"}

    response = _post(gateway, seeded, "/v1/images/generations", body)

    assert response.status_code == 200
    row = _row_of(gateway, response)
    assert row["images"] == 2
    assert row["price"]["source"] != "unpriced"
    assert Decimal(row["cost"]) > 0


def test_a_stream_the_upstream_drops_is_billed_once_as_partial(gateway, seeded, upstream):
    words = ["Hello", " there", " friend", " again"]
    events = [sse_json(chat_chunk("gpt-4o-mini", {"role": "assistant", "content": ""}))]
    events += [sse_json(chat_chunk("gpt-4o-mini", {"content": word})) for word in words]
    upstream.enqueue(Reply(sse=[*events, "[DONE]"], drop_after=3))

    request_id, seen = _stream(gateway, seeded, "gpt-4o-mini")

    assert json.loads(seen[-1])["error"]["message"]
    assert "[DONE]" not in seen
    rows = _rows(gateway, [request_id])
    assert list(rows) == [request_id]
    row = rows[request_id]
    prompt = token_counter(model="gpt-4o-mini", messages=MESSAGES)
    completion = token_counter(model="gpt-4o-mini", text="Hello there")
    assert (row["basis"], row["status"]) == ("partial", "error")
    assert (row["prompt"], row["completion"]) == (prompt, completion) and completion > 0
    assert Decimal(row["cost"]) == _tokens_cost(model_info("gpt-4o-mini", "openai"), prompt, completion)


def test_an_anthropic_stream_the_upstream_drops_keeps_its_reported_prompt_usage(gateway, seeded, upstream):
    usage = {
        "input_tokens": 100,
        "output_tokens": 20,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 600,
    }
    # message_start, content_block_start, ping, one text delta; then the connection dies.
    upstream.enqueue(Reply(sse=anthropic_stream_events("claude-sonnet-4-5", usage=usage), drop_after=4))

    request_id, seen = _stream(gateway, seeded, "claude")

    assert json.loads(seen[-1])["error"]["message"]
    row = _row(gateway, request_id)
    assert row["basis"] == "partial"
    assert (row["prompt"], row["cached"], row["cache_creation"]) == (1000, 600, 300)
    assert row["completion"] > 0
    info = model_info("claude-sonnet-4-5", "anthropic")
    assert Decimal(row["cost"]) == _tokens_cost(info, 1000, row["completion"], cached=600, cache_creation=300)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_upstream_429_is_recorded_as_an_error_at_no_cost(gateway, seeded, upstream, stream):
    upstream.enqueue(openai_error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded"))

    response = _chat(gateway, seeded, "gpt-4o-mini", stream=stream)

    assert response.status_code == 429
    row = _row_of(gateway, response)
    assert (row["status"], row["http_status"], Decimal(row["cost"])) == ("error", 429, 0)
    assert (row["prompt"], row["completion"]) == (0, 0)
    assert row["stream"] is stream


def test_a_per_deployment_price_is_charged_and_named_in_the_row(gateway, seeded, upstream):
    table_cost = _tokens_cost(model_info("gpt-4o-mini", "openai"), 11, 6)
    before = _chat(gateway, seeded, "override")
    assert Decimal(before.headers["x-litellm-response-cost"]) == table_cost

    price_id = gateway.run_python(
        PRICE_OVERRIDE.format(
            deployment_id=OVERRIDE_ID, input=str(OVERRIDE_INPUT), output=str(OVERRIDE_OUTPUT)
        )
    )
    expected = 11 * OVERRIDE_INPUT + 6 * OVERRIDE_OUTPUT
    # The gateway reads prices again within CONFIG_REFRESH_SECONDS of the change: ask until it has.
    deadline = time.monotonic() + 20
    while True:
        response = _chat(gateway, seeded, "override")
        if Decimal(response.headers["x-litellm-response-cost"]) == expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    row = _row_of(gateway, response)
    assert row["deployment_id"] == OVERRIDE_ID
    assert Decimal(row["cost"]) == expected
    assert row["price"] == {
        "input_cost_per_token": "0.000001",
        "output_cost_per_token": "0.000003",
        "source": "admin",
        "price_id": price_id,
        "model": "gpt-4o-mini",
        "deployment_id": OVERRIDE_ID,
    }
    assert Decimal(_row_of(gateway, before)["cost"]) == table_cost


def test_prices_in_litellm_params_are_charged_and_never_sent_upstream(gateway, seeded, upstream):
    upstream.enqueue(_reply_with_usage(CACHED_USAGE, "house-llm"))

    response = _chat(gateway, seeded, "priced-in-params")

    row = _row_of(gateway, response)
    prices = {
        "input_cost_per_token": Decimal("0.000001"),
        "output_cost_per_token": Decimal("0.000002"),
        "cache_read_input_token_cost": Decimal("0.0000005"),
    }
    assert Decimal(row["cost"]) == _tokens_cost(prices, 1000, 50, cached=400)
    assert not set(prices) & set(upstream.last.json)


def test_every_call_has_exactly_one_ledger_row(gateway, seeded, upstream):
    events = [sse_json(chat_chunk("gpt-4o-mini", {"content": word})) for word in ("Hi", " there", " you")]
    upstream.enqueue(
        openai_error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded"),
        Reply(sse=[*events, "[DONE]"], drop_after=2),
    )
    _chat(gateway, seeded, "gpt-4o-mini")  # the 429
    _stream(gateway, seeded, "gpt-4o-mini")  # dropped mid-stream
    _chat(gateway, seeded, "gpt-4o-mini")
    _stream(gateway, seeded, "claude")
    called = seeded["request_ids"]
    _rows(gateway, called)  # wait until every call's row is written

    recorded = json.loads(gateway.run_python(ALL_REQUEST_IDS))

    assert len(set(called)) == len(called)
    assert sorted(recorded) == sorted(called)
