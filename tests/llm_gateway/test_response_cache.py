"""The gateway's response cache: hit, miss, no-cache, no-store, TTL expiry, streaming replay, free hits.

Requests go through the real views to the loopback fake upstream; with REDIS_URL the store is Redis
(CI's first pass), else the in-process one.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from billing.ledger import ledger_writer_close
from billing.ledger.consumer import ledger_drain
from billing.models import LedgerEntry
from llm_gateway.response_cache import stores_clear
from llm_gateway.router.settings import CacheSettings, RouterSettingsError
from llm_gateway.services.teams import team_create
from tests.llm_gateway.router_harness import (
    chat,
    deployment_on,
    key_create,
    requests_to,
    router_settings_set,
    router_state_reset,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clean():
    router_state_reset()
    stores_clear()
    yield
    stores_clear()
    router_state_reset()


@pytest.fixture
async def cached(upstream):
    """A group 'gpt' with the cache on; return the key and its secret."""
    await deployment_on(upstream, "a", model="gpt-4o-mini")
    await router_settings_set(cache_responses=True, cache_params={"ttl": 60})
    return await key_create(key_alias="cache-tests")


async def _ledger(key) -> list[LedgerEntry]:
    await ledger_writer_close()
    await sync_to_async(ledger_drain)()
    return [row async for row in LedgerEntry.objects.filter(key_token=str(key.token)).order_by("created_at")]


async def test_the_second_identical_request_is_a_free_hit(upstream, cached):
    key, secret = cached
    client = AsyncClient()

    first = await chat(client, secret)
    second = await chat(client, secret)

    assert first.status_code == second.status_code == 200
    assert orjson.loads(first.content) == orjson.loads(second.content)
    assert len(requests_to(upstream, "a")) == 1
    assert "x-litellm-cache-hit" not in first
    assert second["x-litellm-cache-hit"] == "True"
    assert second["x-litellm-response-cost"] == "0"
    rows = await _ledger(key)
    assert [row.cache_hit for row in rows] == [False, True]
    assert rows[0].cost > 0 and rows[1].cost == 0
    assert rows[1].prompt_tokens == rows[0].prompt_tokens  # the tokens the answer stood for
    assert rows[1].deployment_id == "a"


async def test_a_different_request_or_group_misses(upstream, cached):
    _, secret = cached
    await deployment_on(upstream, "b", group="other", model="gpt-4o-mini")
    client = AsyncClient()

    await chat(client, secret)
    await chat(client, secret, temperature=0.5)
    await chat(client, secret, model="other")
    await chat(client, secret, user="someone")  # who asks does not change the answer: a hit

    assert len(upstream.requests) == 3


async def test_no_cache_skips_the_read_and_no_store_the_write(upstream, cached):
    _, secret = cached
    client = AsyncClient()

    await chat(client, secret, cache={"no-store": True})
    await chat(client, secret)  # nothing was stored: a miss, stored now
    fresh = await chat(client, secret, cache={"no-cache": True})
    hit = await chat(client, secret)

    assert len(upstream.requests) == 3
    assert "x-litellm-cache-hit" not in fresh
    assert hit["x-litellm-cache-hit"] == "True"
    assert all("cache" not in request.json for request in upstream.requests)  # never sent upstream


async def test_cache_control_headers(upstream, cached):
    _, secret = cached
    client = AsyncClient()
    auth = {"Authorization": f"Bearer {secret}"}
    body = {"model": "gpt", "messages": [{"role": "user", "content": "Hello"}]}

    async def post(cache_control: str):
        return await client.post(
            "/v1/chat/completions",
            body,
            content_type="application/json",
            headers={**auth, "Cache-Control": cache_control},
        )

    await post("no-store")
    await post("max-age=60")
    hit = await post("")
    fresh = await post("no-cache")

    assert len(upstream.requests) == 3
    assert hit["x-litellm-cache-hit"] == "True" and "x-litellm-cache-hit" not in fresh


async def test_entries_expire_after_their_ttl(upstream, cached):
    _, secret = cached
    client = AsyncClient()

    await chat(client, secret, cache={"ttl": 1})
    assert (await chat(client, secret))["x-litellm-cache-hit"] == "True"
    await asyncio.sleep(1.3)
    expired = await chat(client, secret)

    assert "x-litellm-cache-hit" not in expired
    assert len(upstream.requests) == 2


async def test_a_cached_answer_replays_as_a_stream(upstream, cached):
    key, secret = cached
    client = AsyncClient()
    first = await chat(client, secret)

    replay = await chat(client, secret, stream=True, stream_options={"include_usage": True})
    events = [part async for part in replay.streaming_content]
    body = b"".join(events)

    assert replay["x-litellm-cache-hit"] == "True"
    assert len(upstream.requests) == 1
    chunks = [orjson.loads(line[6:]) for line in body.split(b"\n\n") if line.startswith(b"data: {")]
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"])
    assert text == orjson.loads(first.content)["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"] == orjson.loads(first.content)["usage"]
    assert body.endswith(b"data: [DONE]\n\n")
    rows = await _ledger(key)
    assert [(row.cache_hit, row.stream, row.cost == 0) for row in rows] == [
        (False, False, False),
        (True, True, True),
    ]


async def test_a_streamed_answer_is_stored_and_served_to_plain_requests(upstream, cached):
    _, secret = cached
    client = AsyncClient()

    streamed = await chat(client, secret, stream=True)
    text = b"".join([part async for part in streamed.streaming_content])
    plain = await chat(client, secret)

    assert b"[DONE]" in text
    assert plain["x-litellm-cache-hit"] == "True"
    assert orjson.loads(plain.content)["choices"][0]["message"]["content"] == "Hello from the fake upstream"
    assert len(upstream.requests) == 1


async def test_embeddings_are_cached(upstream, cached):
    _, secret = cached
    await deployment_on(upstream, "e", group="embed", model="text-embedding-3-small")
    client = AsyncClient()
    auth = {"Authorization": f"Bearer {secret}"}

    for _ in range(2):
        response = await client.post(
            "/v1/embeddings", {"model": "embed", "input": "hi"}, content_type="application/json", headers=auth
        )
        assert response.status_code == 200

    assert response["x-litellm-cache-hit"] == "True"
    assert len(requests_to(upstream, "e")) == 1


async def test_a_key_may_use_only_its_allowed_cache_controls(upstream, cached):
    _, secret = await key_create(key_alias="restricted", allowed_cache_controls=["no-cache"])
    client = AsyncClient()

    allowed = await chat(client, secret, cache={"no-cache": True})
    refused = await chat(client, secret, cache={"no-store": True})
    malformed = await chat(client, secret, cache={"no-store": "yes"})

    assert allowed.status_code == 200
    assert refused.status_code == 403
    assert "no-store" in orjson.loads(refused.content)["error"]["message"]
    assert malformed.status_code in (400, 403)


async def test_bad_cache_controls_are_400s(upstream, cached):
    _, secret = cached

    response = await chat(AsyncClient(), secret, cache={"ttl": -5})

    assert response.status_code == 400
    assert orjson.loads(response.content)["error"]["param"] == "cache"


async def test_without_the_setting_nothing_is_cached(upstream):
    await deployment_on(upstream, "a")
    _, secret = await key_create(key_alias="no-cache-setting")
    client = AsyncClient()

    for _ in range(2):
        assert "x-litellm-cache-hit" not in await chat(client, secret)

    assert len(upstream.requests) == 2


async def _team_key(alias: str, team=None):
    """Create a key in ``team`` (a new team when None); return its secret."""
    team = team or await sync_to_async(team_create)(team_alias=f"team-{alias}")
    return (await key_create(key_alias=alias, team=team))[1]


async def test_an_answer_cached_for_one_team_is_not_served_to_another_or_to_a_key_without_a_team(
    upstream, cached
):
    _, no_team = cached
    team_a = await sync_to_async(team_create)(team_alias="a")
    first, second = await _team_key("a-1", team_a), await _team_key("a-2", team_a)
    other_team = await _team_key("b")
    client = AsyncClient()

    answers = [await chat(client, secret) for secret in (first, second, other_team, no_team, no_team)]

    assert ["x-litellm-cache-hit" in answer for answer in answers] == [False, True, False, False, True]
    assert len(upstream.requests) == 3


async def test_the_master_key_has_an_entry_scope_of_its_own(upstream, cached, settings):
    settings.GATEWAY = {**settings.GATEWAY, "MASTER_KEY": "sk-master-cache-0123456789abcdef0123456789"}
    _, secret = cached
    client = AsyncClient()

    await chat(client, secret)
    master = await chat(client, settings.GATEWAY["MASTER_KEY"])
    master_again = await chat(client, settings.GATEWAY["MASTER_KEY"])

    assert "x-litellm-cache-hit" not in master
    assert master_again["x-litellm-cache-hit"] == "True"
    assert len(upstream.requests) == 2


async def test_with_scope_global_every_caller_shares_entries(upstream, cached):
    await router_settings_set(cache_responses=True, cache_params={"ttl": 60, "scope": "global"})
    _, no_team = cached
    team_b = await _team_key("b")
    client = AsyncClient()

    await chat(client, no_team)
    shared = await chat(client, team_b)

    assert shared["x-litellm-cache-hit"] == "True"
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("cache_params", [{"scope": "tenant"}, {"scope": ["team"]}, {"namespace": "a b"}])
def test_router_settings_refuse_a_bad_cache_scope_or_namespace(cache_params):
    with pytest.raises(RouterSettingsError, match="cache_params"):
        CacheSettings.parse({"cache_responses": True, "cache_params": cache_params})


async def test_a_key_with_no_allowed_list_may_not_pick_a_namespace(upstream, cached):
    _, secret = cached
    client = AsyncClient()

    refused = await chat(client, secret, cache={"namespace": "mine"})
    allowed = await chat(client, secret, cache={"no-cache": True, "no-store": True, "ttl": 5})

    assert refused.status_code == 403
    assert orjson.loads(refused.content)["error"]["param"] == "cache"
    assert allowed.status_code == 200


async def test_a_key_that_lists_namespace_caches_apart_in_each_namespace(upstream, cached):
    _, secret = await key_create(key_alias="namer", allowed_cache_controls=["namespace"])
    client = AsyncClient()

    answers = [await chat(client, secret, cache={"namespace": name}) for name in ("one", "two", "one")]

    assert ["x-litellm-cache-hit" in answer for answer in answers] == [False, False, True]
    assert len(upstream.requests) == 2


async def test_a_namespace_over_64_characters_is_a_400_naming_cache(upstream, cached):
    _, secret = await key_create(key_alias="namer", allowed_cache_controls=["namespace"])

    response = await chat(AsyncClient(), secret, cache={"namespace": "n" * 65})

    assert response.status_code == 400
    assert orjson.loads(response.content)["error"]["param"] == "cache"
    assert upstream.requests == []
