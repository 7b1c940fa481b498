"""The gateway's exact-match response cache for chat, completions and embeddings.

Turned on with ``router_settings.cache_responses: true`` (or LiteLLM's ``litellm_settings.cache:
true`` in the config file), with ``cache_params`` ``ttl`` (seconds, default 600), ``namespace`` and
``scope``. Entries live in Redis when the gateway has one (shared by every instance, under
``<GATEWAY_REDIS_PREFIX>:responses``), else in the process; either way one store per process.

A key is the caller's scope, the operation, the model group and every parameter that changes the
answer (the library's ``providers.caching.cache_key``): a hit is an answer this group already gave to
the same request from the same team (or the same team-less key, or the master key), unless
``cache_params.scope`` is ``global``, which shares entries between every caller.
A request controls its use of the cache with LiteLLM's ``cache: {"no-cache": true, "no-store": true,
"ttl": N, "namespace": "..."}`` body field or a ``Cache-Control`` header (``no-cache``, ``no-store``,
``max-age=N``). A request's ``ttl`` is capped by ``cache_params.ttl``; a ``namespace`` is one more key
prefix. A key's ``allowed_cache_controls`` lists the controls it may use; an empty list allows
``no-cache``, ``no-store`` and ``ttl``, not ``namespace``.

A hit costs nothing, calls no deployment and takes no budget hold; its ledger row says
``cache_hit`` with the tokens of the answer, and the response carries ``x-litellm-cache-hit``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from llm_gateway.conf import gateway_setting
from llm_gateway.lookups import KeySnapshot
from llm_gateway.router.settings import CacheSettings
from providers.caching import (
    DEFAULT_TTL,
    Cache,
    CacheControls,
    InMemoryCache,
    RedisCache,
    cache_controls,
    cache_key,
)
from providers.exceptions import BadRequestError, PermissionDeniedError

CACHEABLE = frozenset({"chat", "text_completion", "embedding"})
# What a key with an empty allowed_cache_controls may use: a namespace must be granted explicitly.
DEFAULT_ALLOWED_CONTROLS = frozenset({"no-cache", "no-store", "ttl"})
_MAX_AGE = re.compile(r"max-age=(\d+)")


def header_controls(request: HttpRequest) -> dict[str, Any]:
    """Return the cache controls a ``Cache-Control`` header asks for, in the body field's names."""
    header = request.META.get("HTTP_CACHE_CONTROL", "").lower()  # META: request.headers walks them all
    controls: dict[str, Any] = {}
    for directive in ("no-cache", "no-store"):
        if directive in header:
            controls[directive] = True
    if match := _MAX_AGE.search(header):
        if int(match.group(1)) == 0:
            controls["no-cache"] = True  # max-age=0: nothing cached is fresh enough
        else:
            controls["ttl"] = int(match.group(1))
    return controls


def request_controls(request: HttpRequest, body: Mapping[str, Any], key: KeySnapshot | None) -> CacheControls:
    """Return the controls of a request; raise 400 for malformed ones, 403 for ones its key may not use."""
    asked = body.get("cache")
    if asked is not None and not isinstance(asked, Mapping):
        raise BadRequestError(f"'cache' must be an object, got {type(asked).__name__}.", param="cache")
    merged = {**header_controls(request), **(asked or {})}
    controls = cache_controls(merged or None)
    if key is None:  # the master key may use every control
        return controls
    allowed = key.allowed_cache_controls or DEFAULT_ALLOWED_CONTROLS
    refused = sorted(name for name in merged if name not in allowed)
    if refused:
        raise PermissionDeniedError(
            f"This key may not use the cache controls: {', '.join(refused)} "
            f"(allowed: {', '.join(sorted(allowed))}).",
            code="cache_control_not_allowed",
            param="cache",
        )
    return controls


@dataclass(frozen=True)
class CacheLookup:
    """One request's place in the cache: its key, and what it may do there."""

    store: Cache
    key: str
    controls: CacheControls
    ttl: float  # the request's own ttl, capped by the configured one

    async def get(self) -> dict[str, Any] | None:
        return None if self.controls.no_cache else await self.store.aget(self.key)

    async def put(self, payload: dict[str, Any], deployment_id: str) -> None:
        if not self.controls.no_store:
            entry = {"response": payload, "model_id": deployment_id}
            await self.store.aset(self.key, entry, ttl=self.ttl)


_stores: dict[tuple[str, str], Cache] = {}


def _store() -> Cache:
    """Return this process's store: one Redis client per event loop however many namespaces are used."""
    url, prefix = gateway_setting("REDIS_URL"), gateway_setting("REDIS_PREFIX")
    store = _stores.get((url, prefix))
    if store is None:
        # Every write passes its ttl: the stores' own default never applies.
        if url:
            store = RedisCache(url, namespace=f"{prefix}:responses", ttl=DEFAULT_TTL)
        else:
            store = InMemoryCache(ttl=DEFAULT_TTL)
        store = _stores.setdefault((url, prefix), store)
    return store


def cache_scope(settings: CacheSettings, key: KeySnapshot | None) -> str:
    """Return who may share a cached answer with this caller: its team, its key, the master key or all."""
    if settings.scope == "global":
        return "global"
    if key is None:
        return "master"
    return f"team:{key.team_id}" if key.team_id else f"key:{key.token}"


def cache_lookup(
    settings: CacheSettings,
    operation: str,
    group: str,
    body: Mapping[str, Any],
    controls: CacheControls,
    *,
    key: KeySnapshot | None,
) -> CacheLookup | None:
    """Return where this request's answer is (or would be) cached, or None when it is not cached.

    ``key`` is the caller's key (None for the master key): it decides the entry's scope.
    """
    if not settings.enabled or operation not in CACHEABLE:
        return None
    digest = cache_key(operation, group, body, namespace=controls.namespace)
    parts = (settings.namespace, cache_scope(settings, key), digest)
    ttl = settings.ttl if controls.ttl is None else min(controls.ttl, settings.ttl)
    return CacheLookup(
        store=_store(), key=":".join(part for part in parts if part), controls=controls, ttl=ttl
    )


def stores_clear() -> None:
    """Empty and forget every store (tests)."""
    for store in _stores.values():
        store.clear()
    _stores.clear()
