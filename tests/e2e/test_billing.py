"""Billing end to end: every request shape through a real gateway lands in the ledger at the right cost.

Costs are checked against the bundled price table to the last decimal: price x the tokens the upstream
reported (or the gateway counted, when it reported none).
"""

import asyncio
import json
import time
from decimal import Decimal

import httpx
import openai
import pytest

from providers.price_table import model_info
from tests.fakes.anthropic_responses import anthropic_message
from tests.fakes.openai_responses import chat_chunk, chat_completion
from tests.fakes.upstream import Reply, sse_json

MESSAGES = [{"role": "user", "content": "Say hello"}]

SEED = """
from decimal import Decimal
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
from llm_gateway.models import Team
base = {base!r}
for name, provider, model in [("gpt-4o-mini", "openai", "gpt-4o-mini"),
                              ("claude", "anthropic", "claude-sonnet-4-5"),
                              ("embed", "openai", "text-embedding-3-small")]:
    deployment_create(model_name=name, provider=provider, model=model, api_base=base, api_key="sk-upstream")
deployment_create(model_name="demo", provider="mock", model="demo")
team = Team.objects.create(team_alias="billing-team")
key, secret = virtual_key_create(key_alias="spender", team=team)
small, small_secret = virtual_key_create(key_alias="small", max_budget=Decimal({budget!r}), team=team)
print(secret + " " + small_secret)
"""

# With REDIS_URL (CI's first pass) rows wait in the Redis stream for the Celery consumer: drain it
# the way the consumer task would; in the embedded mode the gateway writes them itself.
LEDGER = """
import json
from billing.ledger.consumer import ledger_drain
ledger_drain()
from billing.models import LedgerEntry
rows = LedgerEntry.objects.filter(key_alias={alias!r}).order_by("created_at")
print(json.dumps([{{
    "request_id": r.request_id, "cost": str(r.cost), "prompt": r.prompt_tokens,
    "completion": r.completion_tokens,
    "cached": r.cached_tokens, "cache_creation": r.cache_creation_tokens, "basis": r.billing_basis,
    "status": r.status, "model": r.model_group, "stream": r.stream,
}} for r in rows]))
"""

# Worst-case hold of one small request: prompt tokens at the input price + max_tokens at the output price.
SMALL_MAX_TOKENS = 10


def _price(model: str, provider: str) -> dict:
    return model_info(model, provider)


@pytest.fixture(scope="module")
def seeded(gateway, _upstream_server):
    info = _price("gpt-4o-mini", "openai")
    # A budget that covers exactly ten worst-case holds of the small request used below.
    from providers.tokens import token_counter

    prompt = token_counter(model="gpt-4o-mini", messages=MESSAGES)
    hold = prompt * info["input_cost_per_token"] + SMALL_MAX_TOKENS * info["output_cost_per_token"]
    secrets = gateway.run_python(SEED.format(base=_upstream_server.url, budget=str(hold * 10)))
    secret, small_secret = secrets.split()
    return {"secret": secret, "small_secret": small_secret, "hold": hold}


def _ledger(gateway, alias: str, count: int) -> list[dict]:
    """Return the key's ledger rows once ``count`` of them were written (the writer flushes in batches)."""
    deadline = time.monotonic() + 20
    while True:
        rows = json.loads(gateway.run_python(LEDGER.format(alias=alias)))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def _client(gateway, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)


def _expected(info: dict, prompt: int, completion: int, cached: int = 0, cache_creation: int = 0) -> Decimal:
    cache_read = info.get("cache_read_input_token_cost") or info["input_cost_per_token"]
    cache_write = info.get("cache_creation_input_token_cost") or info["input_cost_per_token"]
    uncached = prompt - cached - cache_creation
    return (
        uncached * info["input_cost_per_token"]
        + cached * cache_read
        + cache_creation * cache_write
        + completion * info["output_cost_per_token"]
    )


def test_every_request_shape_is_billed_at_price_times_reported_tokens(gateway, seeded, upstream):
    client = _client(gateway, seeded["secret"])
    info = _price("gpt-4o-mini", "openai")
    cached_body = chat_completion("gpt-4o-mini")
    cached_body["usage"] = {
        "prompt_tokens": 1000,
        "completion_tokens": 50,
        "total_tokens": 1050,
        "prompt_tokens_details": {"cached_tokens": 400},
    }
    upstream.enqueue(Reply(json=cached_body))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # cached prompt tokens
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # plain: 11 + 6 tokens
    list(
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    )  # usage asked upstream
    client.embeddings.create(model="embed", input=["a", "b"])

    rows = _ledger(gateway, "spender", 4)

    assert [row["model"] for row in rows] == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini", "embed"]
    assert Decimal(rows[0]["cost"]) == _expected(info, 1000, 50, cached=400)
    assert rows[0]["cached"] == 400
    assert Decimal(rows[1]["cost"]) == _expected(info, 11, 6)
    assert rows[2]["stream"] is True and rows[2]["basis"] == "provider_reported"
    assert Decimal(rows[2]["cost"]) == _expected(info, 11, 6)
    embed = _price("text-embedding-3-small", "openai")
    assert Decimal(rows[3]["cost"]) == 6 * embed["input_cost_per_token"]
    assert upstream.requests[2].json["stream_options"] == {"include_usage": True}


def test_a_stream_without_upstream_usage_is_counted_and_marked_estimated(gateway, seeded, upstream):
    events = [sse_json(chat_chunk("gpt-4o-mini", {"content": word})) for word in ("Hi", " there")]
    upstream.enqueue(Reply(sse=[*events, sse_json(chat_chunk("gpt-4o-mini", {}, "stop")), "[DONE]"]))
    before = len(_ledger(gateway, "spender", 0))

    list(
        _client(gateway, seeded["secret"]).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
    )

    row = _ledger(gateway, "spender", before + 1)[-1]
    assert row["basis"] == "estimated" and row["completion"] > 0 and Decimal(row["cost"]) > 0


def test_anthropic_cache_writes_and_reads_are_priced_at_their_rates(gateway, seeded, upstream):
    usage = {
        "input_tokens": 100,
        "output_tokens": 20,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 600,
    }
    upstream.enqueue(Reply(json=anthropic_message(model="claude-sonnet-4-5", usage=usage)))
    before = len(_ledger(gateway, "spender", 0))

    _client(gateway, seeded["secret"]).chat.completions.create(model="claude", messages=MESSAGES)

    row = _ledger(gateway, "spender", before + 1)[-1]
    info = _price("claude-sonnet-4-5", "anthropic")
    assert (row["prompt"], row["cached"], row["cache_creation"]) == (1000, 600, 300)
    assert Decimal(row["cost"]) == _expected(info, 1000, 20, cached=600, cache_creation=300)


def test_a_stream_the_client_abandons_is_billed_as_partial(gateway, seeded, upstream):
    events = [sse_json(chat_chunk("gpt-4o-mini", {"content": f" word{number}"})) for number in range(40)]
    upstream.enqueue(Reply(sse=[*events, "[DONE]"], event_delay=0.05))
    before = len(_ledger(gateway, "spender", 0))

    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        timeout=30,
        headers={"Authorization": f"Bearer {seeded['secret']}"},
        json={"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True},
    ) as response:
        lines = response.iter_lines()
        next(line for line in lines if line.startswith("data:"))
        next(line for line in lines if line.startswith("data:"))

    row = _ledger(gateway, "spender", before + 1)[-1]
    assert row["basis"] == "partial"
    assert 0 < row["completion"] < 40 * 2


def test_responses_carry_the_call_id_cost_and_key_spend(gateway, seeded):
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {seeded['secret']}"},
        timeout=30,
    )

    assert response.status_code == 200
    assert response.headers["x-litellm-call-id"].startswith("req-")
    assert Decimal(response.headers["x-litellm-response-cost"]) == _expected(
        _price("gpt-4o-mini", "openai"), 11, 6
    )
    assert response.headers["x-litellm-model-id"]
    assert float(response.headers["x-litellm-overhead-duration-ms"]) >= 0


def test_concurrent_requests_never_take_spend_past_a_hard_budget(gateway, seeded):
    async def one(client: openai.AsyncOpenAI):
        try:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, max_tokens=SMALL_MAX_TOKENS
            )
            return "ok"
        except openai.RateLimitError as error:
            assert error.body["type"] == "budget_exceeded"
            return "refused"

    async def burst():
        client = openai.AsyncOpenAI(
            base_url=f"{gateway.url}/v1", api_key=seeded["small_secret"], max_retries=0
        )
        return await asyncio.gather(*(one(client) for _ in range(100)))

    outcomes = asyncio.run(burst())

    granted = outcomes.count("ok")
    assert 10 <= granted < 100 and outcomes.count("refused") == 100 - granted
    rows = _ledger(gateway, "small", granted)
    spend = sum(Decimal(row["cost"]) for row in rows if row["status"] == "success")
    assert spend <= seeded["hold"] * 10
