"""Production mode across instances: limits shared through Redis, and a ledger that survives a crash."""

import asyncio
import json
import signal
import time
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest

from tests.e2e.gateway_process import GatewayProcess
from tests.fakes.upstream import Reply
from tests.redis_keys import keys_delete

pytestmark = pytest.mark.redis

MESSAGES = [{"role": "user", "content": "Hi"}]

SEED = """
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
deployment_create(model_name="gpt-4o-mini", provider="openai", model="gpt-4o-mini", api_base={base!r},
                  api_key="k")
_, rpm = virtual_key_create(key_alias="rpm", rpm_limit=10)
_, parallel = virtual_key_create(key_alias="parallel", max_parallel_requests=2)
_, plain = virtual_key_create(key_alias="plain")
print(rpm, parallel, plain)
"""


@pytest.fixture(scope="module")
def instances(tmp_path_factory, redis_url, _upstream_server):
    first = GatewayProcess.create(tmp_path_factory.mktemp("gateway-a"), {"REDIS_URL": redis_url})
    secrets = first.run_python(SEED.format(base=_upstream_server.url)).split()
    second = GatewayProcess(var_dir=tmp_path_factory.mktemp("gateway-b"), environment=dict(first.environment))
    first.start()
    second.start()
    yield first, second, dict(zip(("rpm", "parallel", "plain"), secrets, strict=True))
    second.stop()
    first.destroy()
    keys_delete(redis_url, first.redis_prefix)


async def _post(client: httpx.AsyncClient, url: str, secret: str) -> httpx.Response:
    return await client.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
    )


def _away_from_a_minute_boundary() -> None:
    """Wait if the minute is about to turn: RPM windows are per minute, and the test needs one window."""
    second = datetime.now(UTC).second
    if second > 45:
        time.sleep(61 - second)


def test_an_rpm_limit_holds_across_two_instances(instances):
    first, second, secrets = instances
    _away_from_a_minute_boundary()

    async def burst():
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(_post(client, (first, second)[number % 2].url, secrets["rpm"]) for number in range(30))
            )

    statuses = Counter(response.status_code for response in asyncio.run(burst()))

    assert statuses == {200: 10, 429: 20}


def test_a_parallel_limit_holds_across_two_instances(instances, upstream):
    first, second, secrets = instances
    for _ in range(8):
        upstream.enqueue(
            Reply(
                delay=1.0,
                json={
                    "id": "x",
                    "object": "chat.completion",
                    "created": 1,
                    "model": "gpt-4o-mini",
                    "choices": [],
                    "usage": {},
                },
            )
        )

    async def burst():
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(_post(client, (first, second)[number % 2].url, secrets["parallel"]) for number in range(8))
            )

    responses = asyncio.run(burst())
    statuses = Counter(response.status_code for response in responses)

    assert statuses[200] == 2 and statuses[429] == 6
    refused = next(response for response in responses if response.status_code == 429)
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert "retry-after" in refused.headers


LEDGER_IDS = """
import json
from billing.ledger.consumer import ledger_consume
while ledger_consume(batch_size=500, block_ms=100):
    pass
from billing.models import LedgerEntry
print(json.dumps(list(LedgerEntry.objects.values_list("request_id", flat=True))))
"""


def test_a_killed_instance_loses_no_acknowledged_ledger_row(instances, tmp_path_factory):
    first, _, secrets = instances
    victim = GatewayProcess(
        var_dir=tmp_path_factory.mktemp("gateway-victim"), environment=dict(first.environment)
    )
    victim.start()
    acknowledged = []
    with httpx.Client(timeout=30) as client:
        for _ in range(25):
            response = client.post(
                f"{victim.url}/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": MESSAGES},
                headers={"Authorization": f"Bearer {secrets['plain']}"},
            )
            assert response.status_code == 200
            acknowledged.append(response.headers["x-litellm-call-id"])

    victim.process.send_signal(
        signal.SIGKILL
    )  # no shutdown, no flush: what was acknowledged must be in Redis
    victim.process.wait(timeout=10)

    stored = set(json.loads(first.run_python(LEDGER_IDS)))
    assert set(acknowledged) <= stored
