"""The response cache as library callers use it: enable_cache(), then completion() and friends.

Calls go over real loopback HTTP to the fake upstream; a cache hit is proven by the upstream recording
no further request.
"""

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import redis

from llm_gateway import acompletion, completion, disable_cache, embedding, enable_cache
from providers import transport
from providers.caching import InMemoryCache, active_cache, use_cache
from tests.fakes.openai_responses import CONTENT, chat_completion
from tests.fakes.upstream import Reply

MODEL = "openai/gpt-4o-mini"
API_KEY = "sk-test"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def local_cache():
    """Turn the in-process response cache on for one test."""
    enable_cache()
    yield active_cache()
    disable_cache()


@pytest.fixture
def call(upstream):
    """Call completion() against the fake upstream with the usual model, messages and credentials."""

    def complete(**params):
        defaults = {"model": MODEL, "messages": MESSAGES, "api_key": API_KEY, "api_base": upstream.url}
        return completion(**{**defaults, **params})

    return complete


@pytest.fixture
async def acall(upstream):
    """Call acompletion() against the fake upstream; close the loop's HTTP session afterwards."""

    async def complete(**params):
        defaults = {"model": MODEL, "messages": MESSAGES, "api_key": API_KEY, "api_base": upstream.url}
        return await acompletion(**{**defaults, **params})

    yield complete
    await transport.aclose()


def _streamed_content(chunks) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


def test_a_repeated_completion_is_served_from_the_cache(upstream, local_cache, call):
    first = call(temperature=0.2)
    second = call(temperature=0.2)

    assert len(upstream.requests) == 1
    assert first.cache_hit is False
    assert first._hidden_params["cache_hit"] is False
    assert second.cache_hit is True
    assert second._hidden_params["cache_hit"] is True
    assert second.choices[0].message.content == CONTENT
    assert second.model_dump() == first.model_dump()


def test_a_different_temperature_misses_the_cache(upstream, local_cache, call):
    call(temperature=0.2)
    second = call(temperature=0.7)

    assert len(upstream.requests) == 2
    assert second.cache_hit is False


def test_different_messages_miss_the_cache(upstream, local_cache, call):
    call()
    call(messages=[{"role": "user", "content": "What is the capital of Italy?"}])

    assert len(upstream.requests) == 2


def test_nothing_is_cached_while_the_cache_is_off(upstream, call):
    call()
    second = call()

    assert len(upstream.requests) == 2
    assert second.cache_hit is False


def test_no_cache_reaches_the_upstream_and_stores_the_fresh_answer(upstream, local_cache, call):
    call()
    upstream.enqueue(Reply(json=chat_completion("gpt-4o-mini", "A fresher answer")))

    fresh = call(cache={"no-cache": True})
    third = call()

    assert len(upstream.requests) == 2
    assert fresh.cache_hit is False
    assert fresh.choices[0].message.content == "A fresher answer"
    assert third.cache_hit is True
    assert third.choices[0].message.content == "A fresher answer"


def test_no_store_leaves_nothing_in_the_cache(upstream, local_cache, call):
    call(cache={"no-store": True})
    second = call()
    third = call()

    assert len(upstream.requests) == 2
    assert second.cache_hit is False
    assert third.cache_hit is True


def test_the_cache_control_namespace_separates_entries(upstream, local_cache, call):
    call(cache={"namespace": "team-a"})
    same_namespace = call(cache={"namespace": "team-a"})
    other_namespace = call(cache={"namespace": "team-b"})

    assert len(upstream.requests) == 2
    assert same_namespace.cache_hit is True
    assert other_namespace.cache_hit is False


def test_a_per_call_ttl_expires_the_local_entry(upstream, call):
    now = [1000.0]
    use_cache(InMemoryCache(clock=lambda: now[0]))
    try:
        call(cache={"ttl": 30})
        now[0] += 29
        assert call().cache_hit is True
        now[0] += 2
        assert call().cache_hit is False
    finally:
        disable_cache()

    assert len(upstream.requests) == 2


def test_a_streamed_answer_is_stored_and_replayed_as_a_stream(upstream, local_cache, call):
    first = list(call(stream=True))
    second = list(call(stream=True))

    assert len(upstream.requests) == 1
    assert _streamed_content(first) == CONTENT
    assert _streamed_content(second) == CONTENT
    assert second[0].choices[0].delta.role == "assistant"
    assert second[-1].choices[0].finish_reason == "stop"


def test_a_streamed_answer_is_served_to_a_later_non_streaming_caller(upstream, local_cache, call):
    list(call(stream=True))
    response = call()

    assert len(upstream.requests) == 1
    assert response.cache_hit is True
    assert response.choices[0].message.content == CONTENT
    assert response.choices[0].finish_reason == "stop"


def test_a_cached_answer_replays_to_a_streaming_caller(upstream, local_cache, call):
    first = call()
    chunks = list(call(stream=True, stream_options={"include_usage": True}))

    assert len(upstream.requests) == 1
    assert _streamed_content(chunks) == first.choices[0].message.content
    assert chunks[-1].usage.model_dump() == first.usage.model_dump()


def test_a_stream_closed_early_is_not_stored(upstream, local_cache, call):
    stream = call(stream=True)
    next(stream)
    stream.close()

    second = call()
    third = call()

    assert len(upstream.requests) == 2
    assert second.cache_hit is False
    assert third.cache_hit is True


def test_embeddings_are_cached(upstream, local_cache):
    params = {"model": "openai/text-embedding-3-small", "api_key": API_KEY, "api_base": upstream.url}

    first = embedding(input=["Paris", "Rome"], **params)
    second = embedding(input=["Paris", "Rome"], **params)
    other = embedding(input=["Paris"], **params)

    assert len(upstream.requests) == 2
    assert second.cache_hit is True
    assert second.model_dump() == first.model_dump()
    assert other.cache_hit is False


async def test_acompletion_is_served_from_the_cache(upstream, local_cache, acall):
    first = await acall()
    second = await acall()

    assert len(upstream.requests) == 1
    assert first.cache_hit is False
    assert second.cache_hit is True
    assert second.model_dump() == first.model_dump()


async def test_acompletion_reads_what_completion_stored(upstream, local_cache, call, acall):
    first = call()
    second = await acall()

    assert len(upstream.requests) == 1
    assert second.cache_hit is True
    assert second.choices[0].message.content == first.choices[0].message.content


async def test_an_async_stream_replays_from_the_cache(upstream, local_cache, acall):
    first = [chunk async for chunk in await acall(stream=True)]
    second = [chunk async for chunk in await acall(stream=True)]

    assert len(upstream.requests) == 1
    assert _streamed_content(first) == CONTENT
    assert _streamed_content(second) == CONTENT


@pytest.fixture
def redis_namespace(redis_url, redis_prefix):
    """Return a fresh namespace in the test Redis; delete its keys afterwards."""
    name = f"{redis_prefix}:library-cache:{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{name}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def redis_cache(redis_url, redis_namespace):
    """Turn the Redis response cache on for one test."""
    enable_cache("redis", url=redis_url, namespace=redis_namespace, ttl=600)
    cache = active_cache()
    yield cache
    disable_cache()
    cache.close()


def _stored_ttls_ms(redis_url: str, namespace: str) -> list[int]:
    client = redis.Redis.from_url(redis_url)
    try:
        return [client.pttl(key) for key in client.scan_iter(match=f"{namespace}:*")]
    finally:
        client.close()


def test_a_per_call_ttl_is_the_stored_entry_lifetime(upstream, redis_cache, redis_url, redis_namespace, call):
    call(cache={"ttl": 30})

    [ttl_ms] = _stored_ttls_ms(redis_url, redis_namespace)
    assert 0 < ttl_ms <= 30_000


def test_without_a_per_call_ttl_the_cache_default_applies(
    upstream, redis_cache, redis_url, redis_namespace, call
):
    call()

    [ttl_ms] = _stored_ttls_ms(redis_url, redis_namespace)
    assert 30_000 < ttl_ms <= 600_000


def test_a_redis_cached_answer_is_served_to_a_fresh_interpreter(
    upstream, redis_cache, redis_url, redis_namespace, call
):
    first = call()
    script = textwrap.dedent(
        """
        import json
        import sys

        from llm_gateway import completion, enable_cache

        redis_url, namespace, api_base = sys.argv[1:4]
        enable_cache("redis", url=redis_url, namespace=namespace)
        response = completion(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            api_key="sk-test",
            api_base=api_base,
        )
        print(json.dumps({"cache_hit": response.cache_hit, "response": response.model_dump()}))
        """
    )

    finished = subprocess.run(
        [sys.executable, "-c", script, redis_url, redis_namespace, upstream.url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    answer = json.loads(finished.stdout)
    assert answer["cache_hit"] is True
    assert answer["response"] == first.model_dump()
    assert len(upstream.requests) == 1
