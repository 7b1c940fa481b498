"""The response cache of a live gateway on Redis: who shares entries, and what a client may make of it.

An entry is shared by one team's keys only (a key without a team, and the master key, have their
own) unless the operator sets ``cache_params.scope: global``. A client's namespaces and ttls cost
Redis nothing that grows with them: one client per process, ttls capped by ``cache_params.ttl``.
"""

import json
import os
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from providers.caching import cache_key
from tests.e2e.gateway_process import GatewayProcess
from tests.llm_gateway.router_harness import requests_to
from tests.redis_keys import keys_delete

pytestmark = pytest.mark.redis

CONFIGURED_TTL = 60
SEED = """
import json
from llm_gateway.models import GatewaySettings
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
from llm_gateway.services.teams import team_create
deployment_create(model_id="cached", model_name="gpt", provider="openai", model="gpt-4o-mini",
                  api_base={base!r} + "/cached/v1", api_key="k")
GatewaySettings.objects.update_or_create(pk=1, defaults={{"router_settings": {settings!r}}})
team_a, team_b = team_create(team_alias="a"), team_create(team_alias="b")
secrets = {{
    "a": virtual_key_create(key_alias="a", team=team_a)[1],
    "a2": virtual_key_create(key_alias="a2", team=team_a)[1],
    "b": virtual_key_create(key_alias="b", team=team_b)[1],
    "solo": virtual_key_create(key_alias="solo")[1],
    "namer": virtual_key_create(key_alias="namer", allowed_cache_controls=["namespace", "ttl"])[1],
}}
print(json.dumps(secrets))
"""
SETTINGS_SET = """
from llm_gateway.models import GatewaySettings
GatewaySettings.objects.update_or_create(pk=1, defaults={{"router_settings": {settings!r}}})
"""


def _router_settings(**cache_params) -> dict:
    return {"cache_responses": True, "cache_params": {"ttl": CONFIGURED_TTL, **cache_params}}


@pytest.fixture(scope="module")
def gateway_on_redis(tmp_path_factory, redis_url, _upstream_server):
    gateway = GatewayProcess.create(tmp_path_factory.mktemp("cache"), {"REDIS_URL": redis_url})
    secrets = json.loads(
        gateway.run_python(SEED.format(base=_upstream_server.url, settings=_router_settings()))
    )
    gateway.start()
    yield gateway, secrets
    gateway.destroy()
    keys_delete(redis_url, gateway.redis_prefix)


def _chat(gateway: GatewayProcess, secret: str, content: str, **body) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "gpt", "messages": [{"role": "user", "content": content}], **body},
        timeout=30,
    )


def _hit(response: httpx.Response) -> bool:
    assert response.status_code == 200, response.text
    return response.headers.get("x-litellm-cache-hit") == "True"


def test_a_team_cached_answer_reaches_neither_another_team_nor_a_key_without_a_team(
    gateway_on_redis, upstream
):
    gateway, secrets = gateway_on_redis
    content = f"tenants {uuid.uuid4().hex}"

    first = _chat(gateway, secrets["a"], content)
    same_team = _chat(gateway, secrets["a2"], content)
    other_team = _chat(gateway, secrets["b"], content)
    no_team = _chat(gateway, secrets["solo"], content)
    no_team_again = _chat(gateway, secrets["solo"], content)

    assert [_hit(r) for r in (first, same_team, other_team, no_team, no_team_again)] == [
        False,
        True,
        False,
        False,
        True,
    ]
    assert len(requests_to(upstream, "cached")) == 3  # team a once, team b once, the team-less key once


def test_with_scope_global_every_caller_shares_one_entry(gateway_on_redis, upstream):
    gateway, secrets = gateway_on_redis
    gateway.run_python(SETTINGS_SET.format(settings=_router_settings(scope="global")))
    try:
        _until_the_gateway_shares_between(gateway, secrets["a"], secrets["b"], shares=True)
        content = f"global {uuid.uuid4().hex}"
        upstream.reset()

        answers = [_chat(gateway, secrets[name], content) for name in ("a", "b", "solo")]

        assert [_hit(answer) for answer in answers] == [False, True, True]
        assert len(requests_to(upstream, "cached")) == 1
    finally:
        gateway.run_python(SETTINGS_SET.format(settings=_router_settings()))
        _until_the_gateway_shares_between(gateway, secrets["a"], secrets["b"], shares=False)


def _until_the_gateway_shares_between(gateway: GatewayProcess, one: str, other: str, *, shares: bool) -> None:
    """Wait until the gateway runs on the changed settings (it reloads them within a second)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        content = f"probe {uuid.uuid4().hex}"
        _chat(gateway, one, content)
        if _hit(_chat(gateway, other, content)) == shares:
            return
        time.sleep(0.1)
    raise AssertionError(f"the gateway did not take scope {'global' if shares else 'team'} within 20 s")


def test_a_key_without_namespace_in_its_allowed_controls_may_not_pick_one(gateway_on_redis):
    gateway, secrets = gateway_on_redis

    refused = _chat(gateway, secrets["a"], "namespaced", cache={"namespace": "mine"})
    allowed = _chat(gateway, secrets["a"], "ttl", cache={"ttl": 30, "no-cache": True, "no-store": True})

    assert refused.status_code == 403
    assert refused.json()["error"]["param"] == "cache"
    assert "namespace" in refused.json()["error"]["message"]
    assert allowed.status_code == 200


@pytest.mark.parametrize("namespace", ["n" * 65, "two words", "glob*", ""])
def test_a_namespace_that_is_long_or_not_a_plain_name_is_a_400_naming_cache(gateway_on_redis, namespace):
    gateway, secrets = gateway_on_redis

    response = _chat(gateway, secrets["namer"], "bad namespace", cache={"namespace": namespace})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "cache"


def test_a_client_ttl_is_capped_by_the_configured_one(gateway_on_redis, redis_url):
    gateway, secrets = gateway_on_redis
    content = f"ttl {uuid.uuid4().hex}"
    body = {"model": "gpt", "messages": [{"role": "user", "content": content}], "cache": {"ttl": 10**9}}

    assert not _hit(_chat(gateway, secrets["a"], content, cache={"ttl": 10**9}))

    client = redis.Redis.from_url(redis_url)
    [name] = list(client.scan_iter(match=f"*{cache_key('chat', 'gpt', body)}", count=1000))
    assert 0 < client.ttl(name) <= CONFIGURED_TTL
    client.close()


def test_distinct_namespaces_leave_redis_connections_and_open_files_flat(gateway_on_redis, redis_url):
    gateway, secrets = gateway_on_redis
    client = redis.Redis.from_url(redis_url)
    pid = gateway.process.pid
    with httpx.Client(timeout=30) as http:

        def namespaced(count: int) -> None:
            for _ in range(count):
                response = http.post(
                    f"{gateway.url}/v1/chat/completions",
                    headers={"Authorization": f"Bearer {secrets['namer']}"},
                    json={
                        "model": "gpt",
                        "messages": [{"role": "user", "content": "namespaces"}],
                        "cache": {"namespace": uuid.uuid4().hex},
                    },
                )
                assert response.status_code == 200, response.text

        namespaced(20)  # warm: the process's pools have what they keep
        connections_before = _redis_clients_of(pid, client, redis_url)
        files_before = _open_files(pid)
        namespaced(320)
        connections_after = _redis_clients_of(pid, client, redis_url)
        files_after = _open_files(pid)
    client.close()

    assert connections_before > 0  # the gateway does talk to this Redis
    assert connections_after <= connections_before + 3
    assert files_after <= files_before + 5


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _redis_clients_of(pid: int, client: redis.Redis, redis_url: str) -> int:
    """Return how many of Redis's clients (CLIENT LIST) are connections of process ``pid``."""
    redis_port = urlsplit(redis_url).port or 6379
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    local_ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == redis_port:
                local_ports.add(int(local.rsplit(":", 1)[1], 16))
    return sum(1 for entry in client.client_list() if int(entry["addr"].rsplit(":", 1)[1]) in local_ports)
