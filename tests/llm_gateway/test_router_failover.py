"""Retries, fallbacks, tiers, cooldowns and the context window, against fault-injecting upstreams.

Requests go through Django's AsyncClient into the real views; every upstream call is real HTTP to the
loopback fake, where each deployment has a path of its own.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from billing.ledger import ledger_writer_close
from billing.ledger.consumer import ledger_drain
from billing.models import LedgerEntry
from llm_gateway.models import Deployment
from llm_gateway.services.keys import virtual_key_create
from tests.fakes.upstream import Reply
from tests.llm_gateway.router_harness import (
    answered_by,
    chat,
    deployment_on,
    failing,
    failing_times,
    key_create,
    requests_to,
    router_settings_set,
    router_state_reset,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clean_router():
    router_state_reset()
    yield
    router_state_reset()


@pytest.fixture
def secret() -> str:
    _, secret = virtual_key_create(key_alias="router-tests")
    return secret


async def test_a_429_is_retried_on_the_other_deployment_then_falls_back(upstream, secret):
    await deployment_on(upstream, "a")
    await deployment_on(upstream, "b")
    await deployment_on(upstream, "c", group="backup")
    await router_settings_set(num_retries=1, fallbacks=[{"gpt": ["backup"]}])
    upstream.override("^/a/", failing(429, "Rate limit reached"))
    upstream.override("^/b/", failing(429, "Rate limit reached"))

    response = await chat(AsyncClient(), secret)

    assert response.status_code == 200
    assert answered_by(response) == "c"
    assert response["x-litellm-model-group"] == "backup"
    assert response["x-litellm-attempted-retries"] == "1"
    assert response["x-litellm-attempted-fallbacks"] == "1"
    assert len(requests_to(upstream, "a")) == 1 and len(requests_to(upstream, "b")) == 1


async def test_a_5xx_group_fails_over_to_its_next_tier(upstream, secret):
    await deployment_on(upstream, "primary", order=1)
    await deployment_on(upstream, "secondary", order=2)
    await router_settings_set(num_retries=2)
    upstream.override("^/primary/", failing(500, "The server had an error"))

    response = await chat(AsyncClient(), secret)

    assert response.status_code == 200
    assert answered_by(response) == "secondary"
    assert response["x-litellm-attempted-retries"] == "1"
    # While the first tier is healthy, the second one gets nothing.
    upstream.reset()
    response = await chat(AsyncClient(), secret)
    assert answered_by(response) == "primary"
    assert requests_to(upstream, "secondary") == []


async def test_without_retries_an_upstream_error_reaches_the_caller_in_openais_shape(upstream, secret):
    await deployment_on(upstream, "a")
    upstream.override("^/a/", failing(503, "overloaded"))

    response = await chat(AsyncClient(), secret)

    assert response.status_code == 503
    assert orjson.loads(response.content)["error"]["message"].endswith("overloaded")
    assert response["x-litellm-attempted-retries"] == "0"


async def test_a_retry_on_the_same_deployment_waits_for_retry_after(upstream, secret):
    await deployment_on(upstream, "a")
    await router_settings_set(num_retries=1, allowed_fails=5)
    upstream.override("^/a/", failing_times(1, failing(500, "hiccup", **{"Retry-After": "1"})))

    began = time.monotonic()
    response = await chat(AsyncClient(), secret)

    assert response.status_code == 200
    assert response["x-litellm-attempted-retries"] == "1"
    assert len(requests_to(upstream, "a")) == 2
    assert time.monotonic() - began >= 1.0  # the upstream's Retry-After was honoured


async def test_a_context_window_error_uses_the_context_window_fallback(upstream, secret):
    await deployment_on(upstream, "small")
    await deployment_on(upstream, "large", group="gpt-large")
    await deployment_on(upstream, "other", group="gpt-other")
    await router_settings_set(
        context_window_fallbacks=[{"gpt": ["gpt-large"]}], fallbacks=[{"gpt": ["gpt-other"]}]
    )
    upstream.override(
        "^/small/",
        lambda _: Reply(
            status=400,
            json={
                "error": {
                    "message": "This model's maximum context length is 8192 tokens.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
        ),
    )

    response = await chat(AsyncClient(), secret)

    assert response.status_code == 200
    assert answered_by(response) == "large"
    assert requests_to(upstream, "other") == []


async def test_a_prompt_known_to_exceed_the_window_goes_to_the_fallback_before_any_call(upstream, secret):
    await deployment_on(upstream, "small", model_info={"max_input_tokens": 50})
    await deployment_on(upstream, "large", group="gpt-large", model_info={"max_input_tokens": 100_000})
    await router_settings_set(context_window_fallbacks=[{"gpt": ["gpt-large"]}])
    long_prompt = [{"role": "user", "content": "word " * 400}]

    response = await chat(AsyncClient(), secret, messages=long_prompt)

    assert response.status_code == 200
    assert answered_by(response) == "large"
    assert requests_to(upstream, "small") == []
    # A short prompt still goes to the small model.
    response = await chat(AsyncClient(), secret)
    assert answered_by(response) == "small"


async def test_a_prompt_too_long_for_every_deployment_is_a_400(upstream, secret):
    await deployment_on(upstream, "small", model_info={"max_input_tokens": 50})
    long_prompt = [{"role": "user", "content": "word " * 400}]

    response = await chat(AsyncClient(), secret, messages=long_prompt)

    assert response.status_code == 400
    error = orjson.loads(response.content)["error"]
    assert error["code"] == "context_length_exceeded"
    assert "model group 'gpt'" in error["message"]
    assert upstream.requests == []


async def test_a_timeout_falls_back_within_the_time_budget(upstream, secret):
    await deployment_on(upstream, "slow", timeout=0.5)
    await deployment_on(upstream, "fast", group="gpt-fast")
    await router_settings_set(fallbacks=[{"gpt": ["gpt-fast"]}], total_timeout=5)
    upstream.override("^/slow/", lambda _: Reply(json={}, delay=30))

    began = time.monotonic()
    response = await chat(AsyncClient(), secret)

    assert response.status_code == 200
    assert answered_by(response) == "fast"
    assert time.monotonic() - began < 5  # the 30 s upstream was abandoned at the deployment's 0.5 s


async def test_the_total_timeout_cuts_the_attempts_short(upstream, secret):
    await deployment_on(upstream, "slow")
    await router_settings_set(num_retries=3, total_timeout=1)
    upstream.override("^/slow/", lambda _: Reply(json={}, delay=30))

    began = time.monotonic()
    response = await chat(AsyncClient(), secret)

    assert response.status_code == 408
    assert time.monotonic() - began < 10


async def test_a_deployment_that_keeps_failing_cools_down_and_is_skipped(upstream, secret):
    await deployment_on(upstream, "sick")
    await deployment_on(upstream, "well")
    await router_settings_set(allowed_fails=1, cooldown_time=60, routing_strategy="least-busy")
    upstream.override("^/sick/", failing(500, "broken"))
    client = AsyncClient()

    statuses = [(await chat(client, secret)).status_code for _ in range(12)]

    # The sick deployment is sent at most allowed_fails + 1 requests before it sits out.
    assert len(requests_to(upstream, "sick")) <= 2
    assert statuses.count(200) >= 10
    assert len(requests_to(upstream, "well")) >= 10


async def test_when_every_deployment_cools_down_the_caller_gets_503_naming_the_group(upstream, secret):
    await deployment_on(upstream, "a")
    await deployment_on(upstream, "b")
    await router_settings_set(cooldown_time=30)
    upstream.override("^/a/", failing(429, "Rate limit reached"))
    upstream.override("^/b/", failing(429, "Rate limit reached"))
    client = AsyncClient()

    first, second = await chat(client, secret), await chat(client, secret)
    third = await chat(client, secret)

    assert first.status_code == second.status_code == 429
    assert third.status_code == 503
    message = orjson.loads(third.content)["error"]["message"]
    assert "model group 'gpt'" in message and "all 2 are cooling down" in message
    assert 25 <= int(third["Retry-After"]) <= 30
    assert len(upstream.requests) == 2


async def test_a_groups_only_deployment_is_not_cooled_down(upstream, secret):
    await deployment_on(upstream, "only")
    upstream.override("^/only/", failing_times(2, failing(429, "Rate limit reached")))
    client = AsyncClient()

    statuses = [(await chat(client, secret)).status_code for _ in range(3)]

    assert statuses == [429, 429, 200]


async def test_bad_requests_are_neither_retried_nor_counted_against_the_deployment(upstream, secret):
    await deployment_on(upstream, "a")
    await router_settings_set(num_retries=3, allowed_fails=0, fallbacks=[{"gpt": ["other"]}])
    upstream.override(
        "^/a/", failing_times(1, lambda _: Reply(status=400, json={"error": {"message": "bad"}}))
    )

    first = await chat(AsyncClient(), secret)
    second = await chat(AsyncClient(), secret)

    assert first.status_code == 400
    assert second.status_code == 200  # no cooldown: the 400 was the request's fault
    assert len(requests_to(upstream, "a")) == 2


async def test_retry_policy_per_error_class(upstream, secret):
    await deployment_on(upstream, "a")
    await deployment_on(upstream, "b")
    await router_settings_set(num_retries=3, retry_policy={"RateLimitErrorRetries": 0})
    upstream.override("^/a/", failing(429, "Rate limit reached"))
    upstream.override("^/b/", failing(429, "Rate limit reached"))

    response = await chat(AsyncClient(), secret)

    assert response.status_code == 429
    assert response["x-litellm-attempted-retries"] == "0"
    assert len(upstream.requests) == 1


async def test_streams_fail_over_before_the_first_chunk(upstream, secret):
    await deployment_on(upstream, "a")
    await deployment_on(upstream, "b", group="backup")
    await router_settings_set(fallbacks=[{"gpt": ["backup"]}])
    upstream.override("^/a/", failing(500, "broken"))

    response = await chat(AsyncClient(), secret, stream=True)
    body = b"".join([part async for part in response.streaming_content])

    assert response.status_code == 200
    assert response["x-litellm-model-id"] == "b"
    assert response["x-litellm-attempted-fallbacks"] == "1"
    assert b"model-b" in body and body.endswith(b"data: [DONE]\n\n")


async def test_a_stream_that_breaks_after_its_first_chunk_is_not_resent(upstream, secret):
    from tests.fakes.openai_responses import chat_stream_events

    await deployment_on(upstream, "a")
    await deployment_on(upstream, "b", group="backup")
    await router_settings_set(num_retries=2, fallbacks=[{"gpt": ["backup"]}])
    events = chat_stream_events("model-a", ["Hello", " there", " friend"], include_usage=True)
    upstream.override("^/a/", lambda _: Reply(sse=events, drop_after=2))

    response = await chat(AsyncClient(), secret, stream=True)
    body = b"".join([part async for part in response.streaming_content])

    assert b'"model":"model-a"' in body and b"[DONE]" not in body  # chunks of a reached the client
    assert b'"error"' in body  # reported in-band, as OpenAI does mid-stream
    assert requests_to(upstream, "b") == [] and len(requests_to(upstream, "a")) == 1


async def test_budget_refusals_are_not_retried_or_failed_over(upstream):
    from decimal import Decimal

    await deployment_on(upstream, "a", model="gpt-4o")
    await deployment_on(upstream, "b", group="backup")
    await router_settings_set(num_retries=3, fallbacks=[{"gpt": ["backup"]}])
    _, secret = await key_create(key_alias="poor", max_budget=Decimal("0"))

    response = await chat(AsyncClient(), secret, max_tokens=10)

    assert response.status_code in (400, 429)
    assert upstream.requests == []


async def test_the_ledger_row_counts_retries_and_fallbacks(upstream):
    key, secret = await key_create(key_alias="ledger-attempts")
    await deployment_on(upstream, "a")
    await deployment_on(upstream, "b")
    await deployment_on(upstream, "c", group="backup")
    await router_settings_set(num_retries=1, fallbacks=[{"gpt": ["backup"]}])
    upstream.override("^/a/", failing(500, "broken"))
    upstream.override("^/b/", failing(500, "broken"))

    response = await chat(AsyncClient(), secret)
    await ledger_writer_close()  # the embedded writer flushes what it holds...
    await sync_to_async(ledger_drain)()  # ...and with Redis, the consumer moves the stream's rows

    rows = [row async for row in LedgerEntry.objects.filter(key_token=str(key.token))]
    assert len(rows) == 1  # one row per request, not per attempt
    entry = rows[0]
    assert entry.request_id == response["x-litellm-call-id"]
    assert (entry.retries, entry.fallbacks, entry.deployment_id, entry.model_group) == (1, 1, "c", "backup")


async def test_aliases_of_the_key_the_team_and_the_router(upstream):
    from llm_gateway.models import Team

    await deployment_on(upstream, "a", group="gpt-4o")
    team = await Team.objects.acreate(team_alias="aliased", model_aliases={"team-name": "gpt-4o"})
    _, secret = await key_create(key_alias="aliases", team=team, aliases={"key-name": "gpt-4o"})
    await router_settings_set(model_group_alias={"router-name": "gpt-4o"})
    client = AsyncClient()

    for name in ("key-name", "team-name", "router-name", "gpt-4o"):
        response = await chat(client, secret, model=name)
        assert response.status_code == 200, name
        assert response["x-litellm-model-group"] == "gpt-4o"


async def test_an_unhealthy_deployment_is_skipped_unless_all_are(upstream, secret):
    await deployment_on(upstream, "a", health_status=Deployment.Health.UNHEALTHY)
    await deployment_on(upstream, "b")
    client = AsyncClient()

    answers = {answered_by(await chat(client, secret)) for _ in range(8)}
    assert answers == {"b"}

    await Deployment.objects.filter(model_id="b").aupdate(health_status=Deployment.Health.UNHEALTHY)
    from llm_gateway.lookups import config_changed

    config_changed()
    answers = {answered_by(await chat(client, secret)) for _ in range(12)}
    assert answers == {"a", "b"}


async def test_skipping_unhealthy_deployments_can_be_turned_off(upstream, secret):
    await deployment_on(upstream, "a", health_status=Deployment.Health.UNHEALTHY)
    await deployment_on(upstream, "b")
    await router_settings_set(skip_unhealthy_deployments=False)
    client = AsyncClient()

    answers = {answered_by(await chat(client, secret)) for _ in range(16)}
    assert answers == {"a", "b"}


async def test_a_cancelled_request_leaves_no_request_in_flight(upstream, secret):
    from llm_gateway.router.stats import stats

    await deployment_on(upstream, "slow")
    upstream.override("^/slow/", lambda _: Reply(json={}, delay=5))

    request = asyncio.ensure_future(chat(AsyncClient(), secret))
    await asyncio.sleep(0.5)
    assert stats.of("slow").in_flight == 1
    request.cancel()  # what Django does when the client goes away
    with pytest.raises(asyncio.CancelledError):
        await request

    assert stats.of("slow").in_flight == 0


async def test_a_deployment_the_health_task_finds_unhealthy_is_skipped(upstream, secret):
    from llm_gateway.services.health_checks import deployments_health_check

    await deployment_on(upstream, "sick")
    await deployment_on(upstream, "well")
    upstream.override("^/sick/", failing(500, "broken"))
    counts = await deployments_health_check()
    upstream.reset()  # the sick one answers again: only the health record keeps it out
    client = AsyncClient()

    answers = {answered_by(await chat(client, secret)) for _ in range(12)}

    assert counts["unhealthy"] == 1
    assert answers == {"well"}
    assert requests_to(upstream, "sick") == []


@pytest.mark.parametrize("status", [401, 403, 404])
@pytest.mark.parametrize("disable_cooldowns", [False, True])
async def test_a_deployment_the_upstream_refuses_is_passed_over_without_num_retries(
    upstream, secret, status, disable_cooldowns
):
    await deployment_on(upstream, "revoked", order=1)
    await deployment_on(upstream, "healthy", order=2)
    await router_settings_set(num_retries=0, disable_cooldowns=disable_cooldowns)
    upstream.override("^/revoked/", failing(status, "Incorrect API key provided: sk-upstream-key."))

    response = await chat(AsyncClient(), secret)

    assert response.status_code == 200
    assert answered_by(response) == "healthy"
    assert response["x-litellm-attempted-retries"] == "1"
    assert len(requests_to(upstream, "revoked")) == 1


async def test_when_every_deployment_refuses_the_caller_gets_the_last_error_without_the_key(upstream, secret):
    await deployment_on(upstream, "first", order=1)
    await deployment_on(upstream, "second", order=2)
    await router_settings_set(num_retries=0, disable_cooldowns=True)
    # OpenAI's 401 quotes the key it was given.
    upstream.override("^/", failing(401, "Incorrect API key provided: sk-upstream-key."))

    response = await chat(AsyncClient(), secret)

    assert response.status_code == 401
    error = orjson.loads(response.content)["error"]
    assert error["message"].startswith("openai/model-second: Incorrect API key provided")
    assert b"sk-upstream-key" not in response.content
    assert response["x-litellm-attempted-retries"] == "1"
    assert len(requests_to(upstream, "first")) == len(requests_to(upstream, "second")) == 1


async def test_a_refusal_uses_none_of_the_retries_the_next_deployment_may_need(upstream, secret):
    await deployment_on(upstream, "revoked", order=1)
    await deployment_on(upstream, "flaky", order=2)
    await router_settings_set(num_retries=1, disable_cooldowns=True)
    upstream.override("^/revoked/", failing(401, "Incorrect API key provided."))
    upstream.override("^/flaky/", failing_times(1, failing(500, "hiccup", **{"Retry-After": "0"})))

    response = await chat(AsyncClient(), secret)

    assert response.status_code == 200
    assert answered_by(response) == "flaky"
    assert response["x-litellm-attempted-retries"] == "2"
    # The retry went to the flaky deployment again, not back to the one that refused the request.
    assert len(requests_to(upstream, "revoked")) == 1 and len(requests_to(upstream, "flaky")) == 2


@pytest.mark.parametrize("status", [400, 422])
async def test_a_request_the_upstream_rejects_is_not_passed_to_another_deployment(upstream, secret, status):
    await deployment_on(upstream, "a", order=1)
    await deployment_on(upstream, "b", order=2)
    await router_settings_set(num_retries=0, disable_cooldowns=True)
    upstream.override("^/a/", lambda _: Reply(status=status, json={"error": {"message": "bad"}}))

    response = await chat(AsyncClient(), secret)

    assert response.status_code == status
    assert response["x-litellm-attempted-retries"] == "0"
    assert requests_to(upstream, "b") == []
