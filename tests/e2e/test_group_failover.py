"""A model group with one broken deployment still answers, through a real gateway and the OpenAI SDK.

Each group has a deployment whose upstream refuses its key (OpenAI's 401) in the first tier and a
healthy one in the second; ``num_retries`` is 0, with cooldowns on and off (one gateway each).
"""

import json

import openai
import pytest

from tests.e2e.gateway_process import GatewayProcess
from tests.fakes.openai_responses import openai_error
from tests.fakes.upstream import Reply
from tests.llm_gateway.router_harness import requests_to

MESSAGES = [{"role": "user", "content": "Hi"}]
REVOKED_KEY = "sk-revoked-0123456789abcdef"

SEED = """
from llm_gateway.models import GatewaySettings
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
for name, group, order, key in (
    ("revoked", "gpt", 1, {revoked!r}), ("healthy", "gpt", 2, "sk-healthy"),
    ("revoked-1", "broken", 1, {revoked!r}), ("revoked-2", "broken", 2, {revoked!r}),
):
    deployment_create(model_id=name, model_name=group, provider="openai", model="model-" + name, order=order,
                      api_base={base!r} + "/" + name + "/v1", api_key=key)
GatewaySettings.objects.update_or_create(pk=1, defaults={{"router_settings": {{
    "num_retries": 0, "disable_cooldowns": {disable_cooldowns!r}}}}})
_, secret = virtual_key_create(key_alias="failover")
print(secret)
"""

ROW = """
import json
from billing.ledger.consumer import ledger_drain
ledger_drain()  # with REDIS_URL, rows wait in the Redis stream for the consumer; a no-op embedded
from billing.models import LedgerEntry
row = LedgerEntry.objects.filter(request_id={request_id!r}).first()
print(json.dumps(row and {{"retries": row.retries, "fallbacks": row.fallbacks,
                          "deployment": row.deployment_id, "http_status": row.http_status}}))
"""


def _revoked(_) -> Reply:
    """OpenAI's answer to a revoked key (it quotes the key; the gateway must not pass it on)."""
    message = (
        f"Incorrect API key provided: {REVOKED_KEY}. "
        "You can find your API key at https://platform.openai.com/account/api-keys."
    )
    return openai_error(401, message, "invalid_request_error", code="invalid_api_key")


@pytest.fixture(scope="module", params=[False, True], ids=["cooldowns", "disable_cooldowns"])
def failover(request, tmp_path_factory, _upstream_server):
    disable_cooldowns = request.param
    gateway = GatewayProcess.create(tmp_path_factory.mktemp("failover"))
    seed = SEED.format(base=_upstream_server.url, revoked=REVOKED_KEY, disable_cooldowns=disable_cooldowns)
    secret = gateway.run_python(seed).strip()
    gateway.start()
    yield gateway, secret, disable_cooldowns
    gateway.destroy()


def _row(gateway: GatewayProcess, request_id: str) -> dict:
    for _ in range(50):  # the ledger writer flushes in batches
        row = json.loads(gateway.run_python(ROW.format(request_id=request_id)))
        if row:
            return row
    raise AssertionError(f"no ledger row for {request_id}")


def test_the_healthy_deployment_answers_when_the_other_ones_key_is_revoked(failover, upstream):
    gateway, secret, disable_cooldowns = failover
    upstream.override("^/revoked", _revoked)

    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0) as client:
        answers = [
            client.chat.completions.with_raw_response.create(model="gpt", messages=MESSAGES) for _ in "ab"
        ]

    first, second = answers
    assert [answer.status_code for answer in answers] == [200, 200]
    assert {answer.headers["x-litellm-model-id"] for answer in answers} == {"healthy"}
    assert first.parse().model == "model-healthy"
    assert first.headers["x-litellm-attempted-retries"] == "1"
    row = _row(gateway, first.headers["x-litellm-call-id"])
    assert (row["retries"], row["fallbacks"], row["deployment"], row["http_status"]) == (1, 0, "healthy", 200)
    if disable_cooldowns:
        # Every request meets the revoked deployment again, and walks past it again.
        assert second.headers["x-litellm-attempted-retries"] == "1"
        assert len(requests_to(upstream, "revoked")) == 2
    else:
        # The 401 cooled the revoked deployment down: the next request goes straight to the healthy one.
        assert second.headers["x-litellm-attempted-retries"] == "0"
        assert len(requests_to(upstream, "revoked")) == 1


def test_a_group_whose_every_key_is_revoked_gives_the_last_401_without_the_key(failover, upstream):
    gateway, secret, _ = failover
    upstream.override("^/revoked", _revoked)

    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0) as client,
        pytest.raises(openai.AuthenticationError) as refused,
    ):
        client.chat.completions.create(model="broken", messages=MESSAGES)

    error = refused.value
    assert error.status_code == 401
    assert error.response.headers["x-litellm-attempted-retries"] == "1"
    assert error.body["message"].startswith("openai/model-revoked-2: Incorrect API key provided")
    assert REVOKED_KEY not in error.response.text
    assert len(requests_to(upstream, "revoked-1")) == len(requests_to(upstream, "revoked-2")) == 1
