"""Budgets and rate limits, checked and held in one step before the upstream call, settled after.

``admit(plan)`` checks every limit a request touches (RPM, TPM, parallel requests for key, user, team,
end user and deployment; hard budgets for key, user, team, end user and model-per-key) and, only if
all pass, counts the request and holds its worst-case cost on every budget, atomically: one Lua
script in Redis (shared by every instance) or one uninterrupted step in process (the embedded mode).
``settle(admission, cost, tokens)`` replaces the hold with the actual cost and releases the parallel
slots. Concurrent requests can therefore never take spend past a hard budget.

``limiter()`` returns this process's limiter: a ``RedisLimiter`` when ``GATEWAY["REDIS_URL"]`` is
set, else a ``LocalLimiter``.
"""

from __future__ import annotations

import threading

from billing.limits.local_limiter import LocalLimiter
from billing.limits.redis_limiter import RedisLimiter, limiter_prefix
from billing.limits.types import Limiter

__all__ = ["LocalLimiter", "RedisLimiter", "limiter"]

_limiter: Limiter | None = None
_limiter_lock = threading.Lock()


def limiter() -> Limiter:
    """Return the process's limiter, created on first use."""
    global _limiter
    if _limiter is None:
        from llm_gateway.conf import gateway_setting  # needs Django settings: import only when used

        with _limiter_lock:
            if _limiter is None:
                url = gateway_setting("REDIS_URL")
                if url:
                    _limiter = RedisLimiter(url, prefix=limiter_prefix(gateway_setting("REDIS_PREFIX")))
                else:
                    _limiter = LocalLimiter()
    return _limiter
