"""Cooldowns are shared: a deployment one gateway process saw failing is skipped by another one too."""

import time

import httpx
import pytest
import redis

from tests.e2e.gateway_process import GatewayProcess
from tests.llm_gateway.router_harness import failing, requests_to
from tests.redis_keys import keys_delete

pytestmark = pytest.mark.redis

MESSAGES = [{"role": "user", "content": "Hi"}]

SEED = """
from llm_gateway.models import GatewaySettings
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
for name in ("sick", "well"):
    deployment_create(model_id=name, model_name="gpt", provider="openai", model="model-" + name,
                      api_base={base!r} + "/" + name + "/v1", api_key="k")
GatewaySettings.objects.update_or_create(pk=1, defaults={{"router_settings": {{
    "allowed_fails": 1, "cooldown_time": 120, "num_retries": 1}}}})
_, secret = virtual_key_create(key_alias="router")
print(secret)
"""


@pytest.fixture(scope="module")
def instances(tmp_path_factory, redis_url, _upstream_server):
    first = GatewayProcess.create(tmp_path_factory.mktemp("router-a"), {"REDIS_URL": redis_url})
    secret = first.run_python(SEED.format(base=_upstream_server.url)).strip()
    second = GatewayProcess(var_dir=tmp_path_factory.mktemp("router-b"), environment=dict(first.environment))
    first.start()
    second.start()
    yield first, second, secret, redis.Redis.from_url(redis_url)
    second.stop()
    first.destroy()
    keys_delete(redis_url, first.redis_prefix)


def _chat(url: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "gpt", "messages": MESSAGES},
        timeout=30,
    )


def test_a_deployment_cooled_down_by_one_instance_is_skipped_by_the_other(instances, upstream):
    first, second, secret, server = instances
    upstream.override("^/sick/", failing(500, "broken"))

    # Instance 1 meets the failures: every request still succeeds (retried on the well one).
    for _ in range(40):
        response = _chat(first.url, secret)
        assert response.status_code == 200
        if len(requests_to(upstream, "sick")) >= 2:
            break
    assert len(requests_to(upstream, "sick")) == 2  # allowed_fails=1: the second failure cools it down
    assert server.zscore(f"{first.redis_prefix}:{{router}}:cooldowns", "sick") is not None

    time.sleep(1.2)  # each instance reads the shared cooldowns at most once a second
    sick_before = len(requests_to(upstream, "sick"))
    answers = [_chat(second.url, secret) for _ in range(20)]

    assert [response.status_code for response in answers] == [200] * 20
    assert {response.headers["x-litellm-model-id"] for response in answers} == {"well"}
    assert len(requests_to(upstream, "sick")) == sick_before
