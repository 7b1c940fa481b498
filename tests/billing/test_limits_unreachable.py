"""The Redis limiter without its Redis: the caller gets a JSON 503 with Retry-After, the upstream nothing."""

from __future__ import annotations

import orjson
import pytest
from django.test import AsyncClient

import billing.limits
from billing.limits import RedisLimiter
from tests.llm_gateway.router_harness import chat, deployment_on, key_create

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"  # port 1: nothing listens, the connection is refused


async def test_a_limited_request_gets_503_with_retry_after_while_redis_is_unreachable(upstream, monkeypatch):
    limiter = RedisLimiter(CLOSED_PORT_URL, timeout=0.5)
    monkeypatch.setattr(billing.limits, "_limiter", limiter)
    await deployment_on(upstream, "a")
    _, secret = await key_create(key_alias="limited", rpm_limit=10)

    response = await chat(AsyncClient(), secret)
    await limiter.aclose()

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "1"
    error = orjson.loads(response.content)["error"]
    assert (error["type"], error["code"]) == ("service_unavailable", "limits_unavailable")
    assert upstream.requests == []
