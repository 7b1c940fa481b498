import asyncio
import logging
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from pydantic import BaseModel

from providers import caching
from providers.caching import (
    CacheControls,
    InMemoryCache,
    RedisCache,
    active_cache,
    cache_controls,
    cache_key,
    disable_cache,
    enable_cache,
)
from providers.exceptions import BadRequestError

BODY = {"messages": [{"role": "user", "content": "Hi"}], "temperature": 0.2, "max_tokens": 10}
RESPONSE = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "text": "Hello"}]}
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Answer(BaseModel):
    city: str


class OtherAnswer(BaseModel):
    country: str


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def namespace(redis_client: redis.Redis, redis_prefix: str) -> Iterator[str]:
    name = f"{redis_prefix}:caching:{uuid.uuid4().hex}"
    yield name
    for key in redis_client.scan_iter(match=f"{name}*"):
        redis_client.delete(key)


@pytest.fixture
def redis_cache(redis_url: str, namespace: str) -> Iterator[RedisCache]:
    cache = RedisCache(redis_url, namespace=namespace, ttl=60)
    yield cache
    cache.close()


@pytest.fixture(autouse=True)
def no_active_cache() -> Iterator[None]:
    yield
    disable_cache()


def test_key_ignores_parameter_order() -> None:
    reordered = {"max_tokens": 10, "temperature": 0.2, "messages": [{"content": "Hi", "role": "user"}]}

    assert cache_key("chat", "gpt-4o", BODY) == cache_key("chat", "gpt-4o", reordered)


def test_key_is_a_sha256_hex_digest() -> None:
    key = cache_key("chat", "gpt-4o", BODY)

    assert len(key) == 64
    assert int(key, 16) >= 0


def test_key_ignores_parameters_that_do_not_change_the_answer() -> None:
    noisy = {
        **BODY,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "alice",
        "metadata": {"trace": "x"},
        "api_key": "sk-secret",
        "timeout": 30,
        "num_retries": 3,
        "cache": {"no-store": True},
        "model": "ignored-duplicate",
    }

    assert cache_key("chat", "gpt-4o", noisy) == cache_key("chat", "gpt-4o", BODY)


def test_key_treats_a_none_parameter_as_absent() -> None:
    assert cache_key("chat", "gpt-4o", {**BODY, "seed": None}) == cache_key("chat", "gpt-4o", BODY)


def test_key_changes_with_temperature() -> None:
    hotter = {**BODY, "temperature": 0.9}

    assert cache_key("chat", "gpt-4o", hotter) != cache_key("chat", "gpt-4o", BODY)


def test_key_changes_with_model_and_operation() -> None:
    key = cache_key("chat", "gpt-4o", BODY)

    assert cache_key("chat", "gpt-4o-mini", BODY) != key
    assert cache_key("embedding", "gpt-4o", BODY) != key


def test_key_is_prefixed_by_a_namespace() -> None:
    key = cache_key("chat", "gpt-4o", BODY, namespace="team-a")

    assert key == "team-a:" + cache_key("chat", "gpt-4o", BODY)


def test_key_accepts_a_pydantic_class_as_response_format() -> None:
    key = cache_key("chat", "gpt-4o", {**BODY, "response_format": Answer})

    assert key == cache_key("chat", "gpt-4o", {**BODY, "response_format": Answer})
    assert key != cache_key("chat", "gpt-4o", {**BODY, "response_format": OtherAnswer})


def test_key_accepts_a_pydantic_instance() -> None:
    key = cache_key("chat", "gpt-4o", {**BODY, "extra": Answer(city="Paris")})

    assert key == cache_key("chat", "gpt-4o", {**BODY, "extra": {"city": "Paris"}})


def test_key_rejects_a_value_that_is_not_json_able() -> None:
    with pytest.raises(
        TypeError, match="Cannot build a cache key: a value of type object is neither JSON-able"
    ):
        cache_key("chat", "gpt-4o", {**BODY, "tool": object()})


def test_memory_cache_round_trips_a_copy() -> None:
    cache = InMemoryCache()
    cache.set("k", RESPONSE)

    first = cache.get("k")
    first["id"] = "mutated"

    assert cache.get("k") == RESPONSE


def test_memory_cache_misses_an_unknown_key() -> None:
    assert InMemoryCache().get("absent") is None


def test_memory_cache_expires_after_the_default_ttl() -> None:
    clock = FakeClock()
    cache = InMemoryCache(ttl=10, clock=clock)
    cache.set("k", RESPONSE)

    clock.now += 9.9
    assert cache.get("k") == RESPONSE
    clock.now += 0.1
    assert cache.get("k") is None
    assert len(cache) == 0


def test_memory_cache_honours_a_per_entry_ttl() -> None:
    clock = FakeClock()
    cache = InMemoryCache(ttl=10, clock=clock)
    cache.set("short", RESPONSE, ttl=1)
    cache.set("long", RESPONSE, ttl=100)

    clock.now += 50

    assert cache.get("short") is None
    assert cache.get("long") == RESPONSE


def test_memory_cache_without_ttl_never_expires() -> None:
    clock = FakeClock()
    cache = InMemoryCache(ttl=None, clock=clock)
    cache.set("k", RESPONSE)

    clock.now += 10**9

    assert cache.get("k") == RESPONSE


def test_memory_cache_evicts_the_least_recently_used_entry() -> None:
    cache = InMemoryCache(max_entries=2)
    cache.set("a", {"n": 1})
    cache.set("b", {"n": 2})
    cache.get("a")  # Now "b" is the least recently used.

    cache.set("c", {"n": 3})

    assert cache.get("b") is None
    assert cache.get("a") == {"n": 1}
    assert cache.get("c") == {"n": 3}
    assert len(cache) == 2


def test_memory_cache_deletes_and_clears() -> None:
    cache = InMemoryCache()
    cache.set("a", {"n": 1})
    cache.set("b", {"n": 2})

    cache.delete("a")
    assert cache.get("a") is None
    cache.clear()
    assert cache.get("b") is None


def test_memory_cache_rejects_a_non_positive_ttl() -> None:
    with pytest.raises(ValueError, match="positive"):
        InMemoryCache().set("k", RESPONSE, ttl=0)


async def test_memory_cache_async_round_trip() -> None:
    cache = InMemoryCache()

    await cache.aset("k", RESPONSE)

    assert await cache.aget("k") == RESPONSE


def test_controls_default_when_absent() -> None:
    assert cache_controls(None) == CacheControls()
    assert cache_controls({}) == CacheControls()


def test_controls_parse_every_known_key() -> None:
    controls = cache_controls({"no-cache": True, "no-store": True, "ttl": 30, "namespace": "team-a"})

    assert controls == CacheControls(no_cache=True, no_store=True, ttl=30.0, namespace="team-a")


def test_controls_reject_an_unknown_key_by_name() -> None:
    with pytest.raises(BadRequestError, match="'s-maxage'") as raised:
        cache_controls({"s-maxage": 10})

    assert raised.value.param == "cache"
    assert raised.value.status_code == 400


@pytest.mark.parametrize(
    "cache",
    [{"ttl": 0}, {"ttl": -1}, {"ttl": "60"}, {"ttl": True}, {"no-cache": "yes"}, {"namespace": ""}],
)
def test_controls_reject_a_bad_value(cache: dict) -> None:
    with pytest.raises(BadRequestError):
        cache_controls(cache)


@pytest.mark.parametrize("namespace", ["x" * 65, "a*", "a b", "team\nb", "ns?", "[ns]", "ns/1", 5])
def test_controls_refuse_a_namespace_that_is_long_or_not_a_safe_name(namespace) -> None:
    with pytest.raises(BadRequestError, match="namespace") as raised:
        cache_controls({"namespace": namespace})

    assert raised.value.param == "cache"


def test_controls_take_a_namespace_of_64_safe_characters() -> None:
    name = "Team_a.b:c-" + "x" * 53

    assert cache_controls({"namespace": name}).namespace == name


def test_controls_reject_a_non_object() -> None:
    with pytest.raises(BadRequestError, match="must be an object"):
        cache_controls(["no-cache"])  # type: ignore[arg-type]  # A wrong type on purpose.


def test_enable_cache_local_then_disable() -> None:
    enable_cache(ttl=5, max_entries=3)

    cache = active_cache()
    assert isinstance(cache, InMemoryCache)
    assert (cache.ttl, cache.max_entries) == (5, 3)
    disable_cache()
    assert active_cache() is None


def test_enable_cache_rejects_an_unknown_type() -> None:
    with pytest.raises(ValueError, match="Unknown cache type 'memcached'"):
        enable_cache("memcached")


def test_enable_cache_redis_needs_a_location() -> None:
    with pytest.raises(ValueError, match="url= or host="):
        enable_cache("redis")


@pytest.mark.redis
def test_enable_cache_redis_from_host_and_port(redis_url: str, namespace: str) -> None:
    location = urlsplit(redis_url)
    enable_cache("redis", host=location.hostname, port=location.port, namespace=namespace, ttl=30)

    cache = active_cache()
    assert isinstance(cache, RedisCache)
    try:
        cache.set("k", RESPONSE)
        assert cache.get("k") == RESPONSE
    finally:
        cache.clear()  # enable_cache uses database 0, which the namespace fixture does not clean.
        cache.close()


@pytest.mark.redis
def test_redis_cache_round_trips_under_its_namespace(
    redis_cache: RedisCache, redis_client: redis.Redis, namespace: str
) -> None:
    redis_cache.set("k", RESPONSE)

    assert redis_cache.get("k") == RESPONSE
    assert redis_client.exists(f"{namespace}:k") == 1
    assert redis_cache.get("absent") is None


@pytest.mark.redis
def test_redis_cache_sets_the_default_and_per_call_expiry(
    redis_cache: RedisCache, redis_client: redis.Redis, namespace: str
) -> None:
    redis_cache.set("default", RESPONSE)
    redis_cache.set("short", RESPONSE, ttl=1.5)

    assert 59_000 < redis_client.pttl(f"{namespace}:default") <= 60_000
    assert 1_000 < redis_client.pttl(f"{namespace}:short") <= 1_500


@pytest.mark.redis
def test_redis_cache_without_ttl_sets_no_expiry(
    redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    cache = RedisCache(redis_url, namespace=namespace, ttl=None)

    cache.set("k", RESPONSE)

    assert redis_client.pttl(f"{namespace}:k") == -1
    cache.close()


@pytest.mark.redis
def test_redis_cache_deletes_a_key(redis_cache: RedisCache) -> None:
    redis_cache.set("k", RESPONSE)

    redis_cache.delete("k")

    assert redis_cache.get("k") is None


@pytest.mark.redis
def test_redis_cache_clear_removes_only_its_namespace(
    redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    # The neighbour's name extends ours, so a prefix match without the ":" separator would take it too.
    mine = RedisCache(redis_url, namespace=namespace)
    neighbour = RedisCache(redis_url, namespace=namespace + "-neighbour")
    for index in range(1200):  # More than one SCAN/DEL batch.
        mine.set(f"k{index}", {"n": index})
    neighbour.set("k0", RESPONSE)

    mine.clear()

    assert list(redis_client.scan_iter(match=f"{namespace}:*")) == []
    assert neighbour.get("k0") == RESPONSE
    mine.close()
    neighbour.close()


@pytest.mark.redis
def test_redis_cache_async_works_from_two_event_loops(redis_cache: RedisCache) -> None:
    async def round_trip(key: str) -> dict | None:
        await redis_cache.aset(key, RESPONSE)
        found = await redis_cache.aget(key)
        await redis_cache.aclose()
        return found

    assert asyncio.run(round_trip("first")) == RESPONSE
    assert asyncio.run(round_trip("second")) == RESPONSE


@pytest.mark.redis
def test_redis_cache_async_replaces_the_client_of_a_closed_loop(redis_cache: RedisCache) -> None:
    async def read(key: str) -> dict | None:
        return await redis_cache.aget(key)  # No aclose(): the loop ends with the client open.

    redis_cache.set("k", RESPONSE)

    assert asyncio.run(read("k")) == RESPONSE
    assert asyncio.run(read("k")) == RESPONSE
    assert len(redis_cache._async_clients) == 1  # The first loop's client was dropped.


def test_dead_redis_degrades_to_a_miss_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    cache = RedisCache(DEAD_REDIS_URL, namespace="unused")

    with caplog.at_level(logging.WARNING, logger=caching.__name__):
        cache.set("k", RESPONSE)
        assert cache.get("k") is None

    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("write failed" in message for message in messages)
    assert any("read failed" in message for message in messages)


def test_dead_redis_degrades_to_a_miss_with_a_warning_async(caplog: pytest.LogCaptureFixture) -> None:
    cache = RedisCache(DEAD_REDIS_URL, namespace="unused")

    async def round_trip() -> dict | None:
        await cache.aset("k", RESPONSE)
        found = await cache.aget("k")
        await cache.aclose()
        return found

    with caplog.at_level(logging.WARNING, logger=caching.__name__):
        assert asyncio.run(round_trip()) is None

    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("write failed" in message for message in messages)
    assert any("read failed" in message for message in messages)
