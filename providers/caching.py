"""The library's exact-match response cache: keys, the in-process and Redis stores, per-call controls.

``enable_cache()`` turns the cache on for ``completion()``, ``acompletion()`` and ``embedding()``;
``active_cache()`` is what those calls consult. A hit needs the same operation, model and
answer-changing parameters; values are OpenAI-format response bodies stored as JSON.

A cache is an optimisation, never a dependency: when Redis cannot be reached, reads and writes log a
warning and behave as a miss so the LLM call itself still succeeds.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import orjson
import redis
import redis.asyncio
from pydantic import BaseModel

from providers.exceptions import BadRequestError
from providers.redis_clients import RedisClientsPerLoop

logger = logging.getLogger(__name__)

DEFAULT_TTL = 600.0
DEFAULT_NAMESPACE = "llm_gateway:cache"
# A call's namespace becomes part of a Redis key: short, and free of glob and separator surprises.
NAMESPACE_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

# Parameters that change how a request is sent, billed, traced or retried, but not what the model
# answers: two requests that differ only in these must share one cache entry.
KEY_EXCLUDED_PARAMS = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "metadata",
        "cache",
        "timeout",
        "api_key",
        "api_base",
        "base_url",
        "api_version",
        "extra_headers",
        "num_retries",
        "fallbacks",
        "context_window_fallbacks",
        "drop_params",
        "request_timeout",
    }
)


def _key_default(value: Any) -> Any:
    """Return a JSON-able stand-in for a value orjson cannot serialise, or raise TypeError."""
    if isinstance(value, type) and issubclass(value, BaseModel):
        return value.model_json_schema()  # A pydantic class as response_format: its schema is the ask.
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    # No str() fallback: reprs can embed memory addresses (keys that never hit) or coincide for
    # different values (a wrong answer served from cache); a clear error is better than either.
    raise TypeError(f"a value of type {type(value).__name__} is neither JSON-able nor a pydantic model")


def cache_key(operation: str, model: str, body: Mapping[str, Any], *, namespace: str | None = None) -> str:
    """Return the cache key for a request: a sha256 over operation, model and answer-changing params.

    The body's own ``model`` entry is ignored in favour of ``model``; top-level parameters set to None
    count as absent, as they are never sent upstream. ``namespace`` (the per-call control) prefixes
    the key. Raise TypeError for a value that is neither JSON-able nor a pydantic model or class.
    """
    params = {
        name: value
        for name, value in body.items()
        if name not in KEY_EXCLUDED_PARAMS and name != "model" and value is not None
    }
    data = {"operation": operation, "model": model, "params": params}
    try:
        encoded = orjson.dumps(data, default=_key_default, option=orjson.OPT_SORT_KEYS)
    except TypeError as error:
        # orjson replaces the message raised in ``default`` by a generic one and keeps ours as cause.
        raise TypeError(f"Cannot build a cache key: {error.__cause__ or error}") from error
    digest = hashlib.sha256(encoded).hexdigest()
    return f"{namespace}:{digest}" if namespace else digest


@dataclass(frozen=True, slots=True)
class CacheControls:
    """What one call asked of the cache (``cache={...}``, LiteLLM's names)."""

    no_cache: bool = False  # Skip reading; a fresh answer is still stored.
    no_store: bool = False
    ttl: float | None = None  # None: the cache's default.
    namespace: str | None = None


def _control_error(message: str) -> BadRequestError:
    return BadRequestError(message, param="cache")


def cache_controls(cache: Mapping[str, Any] | None) -> CacheControls:
    """Parse a call's ``cache`` controls; raise BadRequestError for an unknown key or a bad value."""
    if cache is None:
        return CacheControls()
    if not isinstance(cache, Mapping):
        raise _control_error(f"'cache' must be an object, got {type(cache).__name__}.")
    allowed = ("no-cache", "no-store", "ttl", "namespace")
    for name in cache:
        if name not in allowed:
            raise _control_error(f"Unknown cache control '{name}'; expected one of: {', '.join(allowed)}.")
    for name in ("no-cache", "no-store"):
        if not isinstance(cache.get(name, False), bool):
            raise _control_error(f"Cache control '{name}' must be true or false.")
    ttl = cache.get("ttl")
    # bool is an int subclass; {"ttl": true} is a mistake, not one second.
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0):
        raise _control_error("Cache control 'ttl' must be a positive number of seconds.")
    namespace = cache.get("namespace")
    if namespace is not None and not (isinstance(namespace, str) and NAMESPACE_PATTERN.fullmatch(namespace)):
        raise _control_error("Cache control 'namespace' must be 1 to 64 letters, digits or '_.:-'.")
    return CacheControls(
        no_cache=cache.get("no-cache", False),
        no_store=cache.get("no-store", False),
        ttl=float(ttl) if ttl is not None else None,
        namespace=namespace,
    )


class Cache(Protocol):
    """What the call engine needs from a response cache."""

    def get(self, key: str) -> dict | None: ...
    def set(self, key: str, value: dict, ttl: float | None = None) -> None: ...
    async def aget(self, key: str) -> dict | None: ...
    async def aset(self, key: str, value: dict, ttl: float | None = None) -> None: ...
    def delete(self, key: str) -> None: ...
    def clear(self) -> None: ...


def _resolve_ttl(ttl: float | None, default: float | None) -> float | None:
    """Return the TTL to store with: the call's, else the cache's default (None: no expiry)."""
    chosen = default if ttl is None else ttl
    if chosen is not None and chosen <= 0:
        raise ValueError(f"A cache TTL must be positive, got {chosen}.")
    return chosen


class InMemoryCache:
    """An in-process LRU cache with a TTL per entry, safe across threads and event loops."""

    def __init__(
        self,
        *,
        ttl: float | None = DEFAULT_TTL,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}.")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        # Values are kept as JSON bytes, as in Redis: a caller mutating a returned response cannot
        # corrupt the entry, and both stores accept and return exactly the same values.
        self._entries: OrderedDict[str, tuple[float | None, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict | None:
        """Return the cached value for ``key``, or None when absent or expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, payload = entry
            if expires_at is not None and expires_at <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
        return orjson.loads(payload)

    def set(self, key: str, value: dict, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, evicting the least recently used entry when full."""
        seconds = _resolve_ttl(ttl, self.ttl)
        payload = orjson.dumps(value)
        with self._lock:
            expires_at = None if seconds is None else self._clock() + seconds
            self._entries[key] = (expires_at, payload)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    # No I/O happens here and the lock is held for microseconds, so the async API simply delegates.
    async def aget(self, key: str) -> dict | None:
        """Return the cached value for ``key`` (see ``get``)."""
        return self.get(key)

    async def aset(self, key: str, value: dict, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` (see ``set``)."""
        self.set(key, value, ttl)

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _escape_glob(text: str) -> str:
    """Return ``text`` with Redis glob metacharacters escaped, for a literal SCAN MATCH prefix."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


class RedisCache:
    """A response cache in Redis, shared by every process; all keys live under ``namespace``.

    ``get``/``set`` and ``aget``/``aset`` treat a Redis failure as a miss (with a warning);
    ``delete`` and ``clear`` are explicit operations and let it raise.
    """

    def __init__(
        self,
        url: str,
        namespace: str = DEFAULT_NAMESPACE,
        ttl: float | None = DEFAULT_TTL,
        *,
        timeout: float = 1.0,
    ) -> None:
        self.namespace = namespace
        self.ttl = ttl
        self._url = url
        # A cache that waits longer than the model would is worse than none: bound every round trip.
        self._client_options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        self._client = redis.Redis.from_url(url, **self._client_options)
        self._async_clients = RedisClientsPerLoop(url, **self._client_options)

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _store_args(self, value: dict, ttl: float | None) -> tuple[bytes, int | None]:
        seconds = _resolve_ttl(ttl, self.ttl)
        milliseconds = None if seconds is None else max(1, round(seconds * 1000))
        return orjson.dumps(value), milliseconds

    def get(self, key: str) -> dict | None:
        """Return the cached value for ``key``, or None when absent, expired or Redis is unreachable."""
        try:
            payload = self._client.get(self._key(key))
        except redis.exceptions.RedisError as error:
            logger.warning("Response cache read failed, treating as a miss: %s", error)
            return None
        return None if payload is None else orjson.loads(payload)

    def set(self, key: str, value: dict, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``; log a warning and skip when Redis is unreachable."""
        payload, milliseconds = self._store_args(value, ttl)
        try:
            self._client.set(self._key(key), payload, px=milliseconds)
        except redis.exceptions.RedisError as error:
            logger.warning("Response cache write failed, not cached: %s", error)

    async def aget(self, key: str) -> dict | None:
        """Return the cached value for ``key`` (see ``get``), from any event loop."""
        try:
            payload = await self._async_clients.get().get(self._key(key))
        except redis.exceptions.RedisError as error:
            logger.warning("Response cache read failed, treating as a miss: %s", error)
            return None
        return None if payload is None else orjson.loads(payload)

    async def aset(self, key: str, value: dict, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` (see ``set``), from any event loop."""
        payload, milliseconds = self._store_args(value, ttl)
        try:
            await self._async_clients.get().set(self._key(key), payload, px=milliseconds)
        except redis.exceptions.RedisError as error:
            logger.warning("Response cache write failed, not cached: %s", error)

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        self._client.delete(self._key(key))

    def clear(self) -> None:
        """Remove this namespace's keys (SCAN + DEL), leaving the rest of the database alone."""
        batch: list[bytes] = []
        for name in self._client.scan_iter(match=_escape_glob(self.namespace) + ":*", count=500):
            batch.append(name)
            if len(batch) >= 500:
                self._client.delete(*batch)
                batch.clear()
        if batch:
            self._client.delete(*batch)

    async def aclose(self) -> None:
        """Close the running loop's async client (call before that loop ends)."""
        await self._async_clients.aclose()

    def close(self) -> None:
        """Close the sync client's connection pool."""
        self._client.close()


_active_cache: Cache | None = None


def enable_cache(
    type: str = "local",
    *,
    url: str | None = None,
    host: str | None = None,
    port: int | None = None,
    password: str | None = None,
    ttl: float | None = DEFAULT_TTL,
    namespace: str = DEFAULT_NAMESPACE,
    max_entries: int = 10_000,
) -> None:
    """Turn on the response cache: in-process ("local") or shared in Redis ("redis").

    For Redis give ``url``, or ``host`` (``port`` defaults to 6379) and optionally ``password``.
    ``namespace`` applies to Redis, ``max_entries`` to the local cache.
    """
    global _active_cache
    if type == "local":
        _active_cache = InMemoryCache(ttl=ttl, max_entries=max_entries)
    elif type == "redis":
        if url is None:
            if host is None:
                raise ValueError('enable_cache(type="redis") needs url= or host= (and port=).')
            credentials = f":{quote(password, safe='')}@" if password else ""
            if ":" in host and not host.startswith("["):
                host = f"[{host}]"  # An IPv6 literal needs brackets in a URL.
            url = f"redis://{credentials}{host}:{port or 6379}/0"
        _active_cache = RedisCache(url, namespace=namespace, ttl=ttl)
    else:
        raise ValueError(f'Unknown cache type {type!r}: use "local" or "redis".')


def use_cache(cache: Cache | None) -> None:
    """Use this cache instance for every call (any object with the ``Cache`` methods), or none."""
    global _active_cache
    _active_cache = cache


def disable_cache() -> None:
    """Turn the response cache off; calls go upstream every time."""
    global _active_cache
    _active_cache = None


def active_cache() -> Cache | None:
    """Return the cache calls should use, or None when caching is off."""
    return _active_cache
