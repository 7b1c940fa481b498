"""Every Redis key a gateway writes is under GATEWAY_REDIS_PREFIX: a shared Redis keeps its other keys.

The foreign key stands for another application (or another gateway) on the same Redis database.
Keys of other test sessions (``test-<12 hex>:``) are left out of the comparison: they may run on the
same database at the same time.
"""

import json
import re
import uuid

import httpx
import pytest
import redis

from tests.e2e.gateway_process import GatewayProcess
from tests.redis_keys import keys_delete, keys_under

pytestmark = pytest.mark.redis

SEED = """
from decimal import Decimal
from llm_gateway.models import GatewaySettings
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
deployment_create(model_name="gpt", provider="openai", model="gpt-4o-mini", api_base={base!r}, api_key="k")
GatewaySettings.objects.update_or_create(pk=1, defaults={{"router_settings": {{"cache_responses": True}}}})
_, secret = virtual_key_create(key_alias="limited", rpm_limit=100, max_parallel_requests=5,
                               max_budget=Decimal("10"))
print(secret)
"""
LEDGER = """
import json
from billing.ledger.consumer import ledger_drain
print(ledger_drain())
"""
OTHER_SESSION = re.compile(rb"test-[0-9a-f]{12}:")


def _foreign_keys(client: redis.Redis, own_prefix: str) -> set[bytes]:
    """Return the database's keys that are neither under ``own_prefix`` nor another test session's."""
    own = own_prefix.encode() + b":"
    return {
        name
        for name in client.scan_iter(count=1000)
        if not name.startswith(own) and not OTHER_SESSION.match(name)
    }


@pytest.fixture
def foreign_key(redis_url):
    client = redis.Redis.from_url(redis_url)
    name = f"foreign-app:{uuid.uuid4().hex}"
    client.set(name, "keep me")
    yield client, name
    client.delete(name)
    client.close()


def test_a_gateway_writes_only_under_its_prefix(
    tmp_path_factory, redis_url, redis_prefix, foreign_key, upstream
):
    client, foreign = foreign_key
    before = _foreign_keys(client, redis_prefix)
    gateway = GatewayProcess.create(tmp_path_factory.mktemp("prefix"), {"REDIS_URL": redis_url})
    assert gateway.redis_prefix.startswith(f"{redis_prefix}:")
    try:
        secret = gateway.run_python(SEED.format(base=upstream.url)).strip()
        gateway.start()

        for _ in range(2):  # a miss, then a hit
            response = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {secret}"},
                json={"model": "gpt", "messages": [{"role": "user", "content": "Hi"}]},
                timeout=30,
            )
            assert response.status_code == 200, response.text
        written = keys_under(client, gateway.redis_prefix)
        drained = json.loads(gateway.run_python(LEDGER))
        after = _foreign_keys(client, redis_prefix)
    finally:
        gateway.destroy()
        keys_delete(redis_url, gateway.redis_prefix)

    assert drained == 2  # both requests went through the ledger stream
    kinds = {name.decode().removeprefix(gateway.redis_prefix + ":").split(":")[0] for name in written}
    assert {"{limits}", "ledger", "responses"} <= kinds, written
    assert after == before  # nothing written outside the prefix
    assert client.get(foreign) == b"keep me"
    assert client.ttl(foreign) == -1


def test_deleting_a_prefix_keys_leaves_other_keys(redis_url, redis_prefix, foreign_key):
    client, foreign = foreign_key
    mine = f"{redis_prefix}:deleting-{uuid.uuid4().hex}"
    neighbour = f"{mine}-neighbour:k"  # starts with the same characters, not with the prefix and ":"
    client.set(f"{mine}:a", 1)
    client.hset(f"{mine}:{{limits}}:b", "spend", 1)
    client.set(neighbour, 1)

    deleted = keys_delete(redis_url, mine)

    assert deleted == 2
    assert keys_under(client, mine) == set()
    assert client.get(foreign) == b"keep me"
    assert client.get(neighbour) == b"1"
    client.delete(neighbour)
