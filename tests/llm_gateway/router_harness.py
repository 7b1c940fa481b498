"""Shared set-up of the router tests: deployments on paths of the fake upstream, settings, requests.

Each deployment gets its own path on the one fake upstream (``/<name>/v1``) and its own provider
model id (``model-<name>``), so a test scripts each deployment and reads which one answered from the
``model`` of the reply and the ``x-litellm-model-id`` header.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import orjson
import redis
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from llm_gateway.conf import gateway_setting
from llm_gateway.models import Deployment, GatewaySettings
from llm_gateway.router.cooldowns import cooldowns_prefix, cooldowns_reset
from llm_gateway.router.stats import stats
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
from tests.fakes.openai_responses import openai_error
from tests.fakes.upstream import FakeUpstream, RecordedRequest, Reply

MESSAGES = [{"role": "user", "content": "Hello"}]


async def key_create(**fields: Any):
    """Create a virtual key; return it with its secret."""
    return await sync_to_async(virtual_key_create)(**fields)


def router_state_reset() -> None:
    """Forget cooldowns and statistics of earlier tests (they live in the process, or in Redis)."""
    cooldowns_reset()
    stats.clear()
    url = gateway_setting("REDIS_URL")
    if url:
        server = redis.Redis.from_url(url)
        keys = list(server.scan_iter(match=f"{cooldowns_prefix()}:*"))
        if keys:
            server.delete(*keys)


async def deployment_on(
    upstream: FakeUpstream, name: str, *, group: str = "gpt", health_status: str | None = None, **fields: Any
) -> Deployment:
    """Create an OpenAI deployment of ``group`` served on the fake upstream's ``/<name>/v1``."""

    def create() -> Deployment:
        fields.setdefault("model", f"model-{name}")
        deployment = deployment_create(
            model_id=name,
            model_name=group,
            provider="openai",
            api_base=f"{upstream.url}/{name}/v1",
            api_key="sk-upstream-key",
            **fields,
        )
        if health_status is not None:  # what the health checks write
            deployment.health_status = health_status
            deployment.save(update_fields=["health_status"])
        return deployment

    return await sync_to_async(create)()


async def router_settings_set(**settings: Any) -> None:
    await GatewaySettings.objects.aupdate_or_create(pk=1, defaults={"router_settings": settings})


def requests_to(upstream: FakeUpstream, name: str) -> list[RecordedRequest]:
    return [request for request in upstream.requests if request.path.startswith(f"/{name}/")]


def failing(status: int, message: str = "failure", **headers: str) -> Callable[[RecordedRequest], Reply]:
    """Return a handler answering every request with an OpenAI error of ``status``."""
    kinds = {429: "rate_limit_error", 401: "invalid_request_error", 404: "invalid_request_error"}
    reply = openai_error(status, message, kinds.get(status, "server_error"))

    def answer(_: RecordedRequest) -> Reply:
        return Reply(status=reply.status, json=reply.json, headers=dict(headers))

    return answer


def failing_times(
    count: int, handler: Callable[[RecordedRequest], Reply]
) -> Callable[[RecordedRequest], Reply]:
    """Return a handler that fails with ``handler`` ``count`` times, then lets the default route answer."""
    calls = itertools.count()

    def answer(request: RecordedRequest) -> Reply | None:
        return handler(request) if next(calls) < count else None

    return answer


async def chat(client: AsyncClient, secret: str, model: str = "gpt", **body: Any):
    return await client.post(
        "/v1/chat/completions",
        {"model": model, "messages": MESSAGES, **body},
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


def answered_by(response) -> str:
    """Return the deployment (model id) that answered, checking the reply says the same."""
    model_id = response["x-litellm-model-id"]
    if response.get("Content-Type", "").startswith("application/json"):
        assert orjson.loads(response.content)["model"] == f"model-{model_id}"
    return model_id
