"""Cooldowns: a deployment that keeps failing sits out for a while, on every instance at once.

A failure that says the deployment cannot serve anyone (429, 401, 404) cools it down at once; other
deployment failures (timeouts, 5xx, broken connections) count, and the one after ``allowed_fails``
in a minute cools it down. Errors caused by the request itself (400, context window, content policy)
do not count, and a group's only deployment is never cooled down (the router decides).

With Redis (``GATEWAY["REDIS_URL"]``), failures are counted and cooldowns kept in Redis, in one
script call per failure (never on a success). Each instance reads the set of cooling deployments at
most once per ``REFRESH_SECONDS`` and learns of its own cooldowns at once, so another instance stops
sending to a sick deployment within that bound. Without Redis (the embedded default) the same state
lives in the process. A Redis outage is logged and routing carries on without cooldowns: they are an
optimisation, not a safety rule.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
import redis.asyncio

from providers.exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
)
from providers.redis_clients import RedisClientsPerLoop

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
FAILURE_WINDOW_SECONDS = 60.0
PREFIX = "llm_gateway:{router}"  # braces: a Redis Cluster hash tag, one slot for a script's keys
IMMEDIATE = (RateLimitError, AuthenticationError, NotFoundError)

# KEYS: the deployment's failure counter, the cooldown sorted set (member: model id, score: until, ms).
# ARGV: model id, allowed fails, cooldown ms, immediate (1/0), failure window ms.
# Returns the cooldown's end in the server's milliseconds, or 0 when the failure was only counted.
FAILURE_SCRIPT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local fails = redis.call('INCR', KEYS[1])
if fails == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
if ARGV[4] == '1' or fails > tonumber(ARGV[2]) then
  local until_ms = now + tonumber(ARGV[3])
  redis.call('ZADD', KEYS[2], until_ms, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('DEL', KEYS[1])
  return {until_ms, now}
end
return {0, now}
"""
# KEYS: the cooldown set. Returns the server's now (ms), then member, until, member, until...
ACTIVE_SCRIPT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local result = {now}
for _, item in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')) do
  table.insert(result, item)
end
return result
"""


def counts_as_failure(error: APIError) -> bool:
    """Return whether ``error`` says something about the deployment (not about the request)."""
    if isinstance(error, BadRequestError) or error.status_code == 422:
        return False
    return error.provider is not None  # the gateway's own refusals (budgets, limits) are not failures


class LocalCooldowns:
    """Cooldowns of this process only (the embedded default)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}
        self._failures: dict[str, tuple[float, int]] = {}

    async def active(self) -> dict[str, float]:
        """Return cooling deployments: model id -> seconds left."""
        now = self._clock()
        for model_id in [model_id for model_id, until in self._until.items() if until <= now]:
            del self._until[model_id]
        return {model_id: until - now for model_id, until in self._until.items()}

    async def failed(self, model_id: str, *, immediate: bool, allowed_fails: int, cooldown: float) -> float:
        """Count a failure; return the seconds of cooldown it started (0: none)."""
        now = self._clock()
        since, count = self._failures.get(model_id, (now, 0))
        if now - since > FAILURE_WINDOW_SECONDS:
            since, count = now, 0
        count += 1
        if immediate or count > allowed_fails:
            self._failures.pop(model_id, None)
            self._until[model_id] = now + cooldown
            return cooldown
        self._failures[model_id] = (since, count)
        return 0.0

    async def clear(self) -> None:
        self._until.clear()
        self._failures.clear()


class RedisCooldowns:
    """Cooldowns shared by every instance through Redis at ``url``."""

    def __init__(
        self, url: str, *, prefix: str = PREFIX, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clients = RedisClientsPerLoop(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._prefix = prefix
        self._clock = clock
        self._set_key = f"{prefix}:cooldowns"
        self._until: dict[str, float] = {}  # model id -> this process's monotonic deadline
        self._read_at = -REFRESH_SECONDS

    async def active(self) -> dict[str, float]:
        now = self._clock()
        if now - self._read_at >= REFRESH_SECONDS:
            self._read_at = now
            try:
                reply = await self._clients.get().eval(ACTIVE_SCRIPT, 1, self._set_key)
            except (redis.RedisError, OSError) as error:
                logger.warning("Router cooldowns cannot be read from Redis: %s", error)
            else:
                server_now, pairs = int(reply[0]), reply[1:]
                self._until = {
                    _text(pairs[index]): now + (float(pairs[index + 1]) - server_now) / 1000
                    for index in range(0, len(pairs), 2)
                }
        return {model_id: until - now for model_id, until in self._until.items() if until > now}

    async def failed(self, model_id: str, *, immediate: bool, allowed_fails: int, cooldown: float) -> float:
        keys = (f"{self._prefix}:fails:{model_id}", self._set_key)
        arguments = (
            model_id,
            allowed_fails,
            int(cooldown * 1000),
            1 if immediate else 0,
            int(FAILURE_WINDOW_SECONDS * 1000),
        )
        try:
            until_ms, server_now = await self._clients.get().eval(FAILURE_SCRIPT, 2, *keys, *arguments)
        except (redis.RedisError, OSError) as error:
            logger.warning("A failure of deployment %s cannot be counted in Redis: %s", model_id, error)
            return 0.0
        if not until_ms:
            return 0.0
        seconds = (int(until_ms) - int(server_now)) / 1000
        self._until[model_id] = self._clock() + seconds
        return seconds

    async def clear(self) -> None:
        client = self._clients.get()
        keys = [key async for key in client.scan_iter(match=f"{self._prefix}:*")]
        if keys:
            await client.delete(*keys)
        self._until.clear()
        self._read_at = -REFRESH_SECONDS


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_cooldowns: LocalCooldowns | RedisCooldowns | None = None


def cooldowns() -> LocalCooldowns | RedisCooldowns:
    """Return this process's cooldown store: in Redis when the gateway has one, else in process."""
    global _cooldowns
    if _cooldowns is None:
        from llm_gateway.conf import gateway_setting

        url = gateway_setting("REDIS_URL")
        _cooldowns = RedisCooldowns(url, prefix=cooldowns_prefix()) if url else LocalCooldowns()
    return _cooldowns


def cooldowns_prefix() -> str:
    """Return the prefix of the cooldown keys: ``{router}`` under the gateway's Redis prefix."""
    from llm_gateway.conf import gateway_setting

    return f"{gateway_setting('REDIS_PREFIX')}:{{router}}"


def cooldowns_reset() -> None:
    """Forget the store (tests switch between the embedded and the Redis mode)."""
    global _cooldowns
    _cooldowns = None
