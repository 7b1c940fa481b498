"""The gateway's exact-match response cache for chat, completions and embeddings.

Turned on with ``router_settings.cache_responses: true`` (or LiteLLM's ``litellm_settings.cache:
true`` in the config file), with ``cache_params`` ``ttl`` (seconds, default 600) and ``namespace``.
Entries live in Redis when the gateway has one (shared by every instance), else in the process.

A key is the operation, the model group and every parameter that changes the answer (the library's
``providers.caching.cache_key``): a hit is an answer this group already gave to the same request.
A request controls its use of the cache with LiteLLM's ``cache: {"no-cache": true, "no-store": true,
"ttl": N, "namespace": "..."}`` body field or a ``Cache-Control`` header (``no-cache``, ``no-store``,
``max-age=N``); a key's ``allowed_cache_controls``, when not empty, lists the controls it may use.

A hit costs nothing, calls no deployment and takes no budget hold; its ledger row says
``cache_hit`` with the tokens of the answer, and the response carries ``x-litellm-cache-hit``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.http import HttpRequest

from llm_gateway.conf import gateway_setting
from llm_gateway.lookups import KeySnapshot
from llm_gateway.router.settings import CacheSettings
from providers.caching import Cache, CacheControls, InMemoryCache, RedisCache, cache_controls, cache_key
from providers.exceptions import BadRequestError, PermissionDeniedError

CACHEABLE = frozenset({"chat", "text_completion", "embedding"})
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
    allowed = key.allowed_cache_controls if key is not None else ()
    refused = sorted(name for name in merged if allowed and name not in allowed)
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
    ttl: float

    async def get(self) -> dict[str, Any] | None:
        return None if self.controls.no_cache else await self.store.aget(self.key)

    async def put(self, payload: dict[str, Any], deployment_id: str) -> None:
        if not self.controls.no_store:
            entry = {"response": payload, "model_id": deployment_id}
            await self.store.aset(self.key, entry, ttl=self.controls.ttl or self.ttl)


_stores: dict[CacheSettings, Cache] = {}


def _store(settings: CacheSettings) -> Cache:
    store = _stores.get(settings)
    if store is None:
        url = gateway_setting("REDIS_URL")
        if url:
            store = RedisCache(url, namespace=settings.namespace, ttl=settings.ttl)
        else:
            store = InMemoryCache(ttl=settings.ttl)
        _stores[settings] = store
    return store


def cache_lookup(
    settings: CacheSettings, operation: str, group: str, body: Mapping[str, Any], controls: CacheControls
) -> CacheLookup | None:
    """Return where this request's answer is (or would be) cached, or None when it is not cached."""
    if not settings.enabled or operation not in CACHEABLE:
        return None
    if controls.namespace:
        settings = replace(settings, namespace=controls.namespace)
    return CacheLookup(
        store=_store(settings), key=cache_key(operation, group, body), controls=controls, ttl=settings.ttl
    )


def stores_clear() -> None:
    """Empty and forget every store (tests)."""
    for store in _stores.values():
        store.clear()
    _stores.clear()
