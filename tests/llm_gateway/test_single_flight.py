"""Concurrent requests share one load of what is missing (a cold instance under a burst)."""

from __future__ import annotations

import asyncio

import pytest
from django.test import AsyncClient

from llm_gateway.lookups import snapshots
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
from llm_gateway.single_flight import SingleFlight
from tests.llm_gateway.test_inference_queries import sql_logged


async def test_concurrent_callers_share_one_load():
    flight = SingleFlight()
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)
        return "value"

    results = await asyncio.gather(*(flight.run("thing", load) for _ in range(50)))

    assert results == ["value"] * 50 and loads == 1
    assert len(flight) == 0  # done: the next caller loads again
    await flight.run("thing", load)
    assert loads == 2


async def test_a_cancelled_caller_does_not_cancel_the_others_load():
    flight = SingleFlight()

    async def load() -> str:
        await asyncio.sleep(0.1)
        return "value"

    first = asyncio.ensure_future(flight.run("thing", load))
    second = asyncio.ensure_future(flight.run("thing", load))
    await asyncio.sleep(0.01)
    first.cancel()

    assert await second == "value"


async def test_a_failed_load_fails_every_waiter_and_is_not_kept():
    flight = SingleFlight()

    async def load() -> str:
        await asyncio.sleep(0.01)
        raise RuntimeError("database down")

    results = await asyncio.gather(*(flight.run("thing", load) for _ in range(3)), return_exceptions=True)

    assert all(isinstance(result, RuntimeError) for result in results)
    assert len(flight) == 0


@pytest.fixture
def secret(transactional_db) -> str:
    deployment_create(model_name="demo", provider="mock", model="demo")
    return virtual_key_create(key_alias="burst", models=["demo"])[1]


@pytest.mark.django_db(transaction=True)
async def test_a_burst_on_a_cold_instance_reads_the_key_and_the_deployments_once(secret, caplog):
    # Cold, but up to date with the configuration generation the fixture's writes set: otherwise the
    # burst's first generation check (due since earlier tests) drops the snapshots mid-burst.
    snapshots.checked_at = 0.0
    await snapshots.refresh_if_stale()
    snapshots.clear()
    client = AsyncClient()
    auth = {"Authorization": f"Bearer {secret}"}
    body = {"model": "demo", "messages": [{"role": "user", "content": "Hi"}]}

    with sql_logged(caplog) as statements:
        responses = await asyncio.gather(
            *(client.post("/v1/chat/completions", body, "application/json", headers=auth) for _ in range(30))
        )

    assert [response.status_code for response in responses] == [200] * 30
    key_reads = [sql for sql in statements if 'FROM "llm_gateway_virtualkey"' in sql]
    deployment_reads = [sql for sql in statements if 'WHERE "llm_gateway_deployment"."enabled"' in sql]
    assert len(key_reads) == 1 and len(deployment_reads) == 1
