"""The inference path makes no database query in steady state: it reads in-process snapshots.

The requests go through Django's ``AsyncClient``, i.e. the full middleware stack, while production
serves these paths with the middleware-free ``InferenceHandler``. None of those middlewares queries
the database for a request without a session cookie, so what is counted here is the view path's.

Queries are counted from the ``django.db.backends`` logger with DEBUG on, not with
``CaptureQueriesContext``: Django runs each async request's ORM calls in a thread of its own
(``ThreadSensitiveContext``), on a connection that a context bound to the test's connection never
sees; it would report zero queries even for the cold request. The cold request proves the counter
sees the view path's queries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.test import AsyncClient
from django.test.utils import override_settings

from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create

MESSAGES = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def secret(transactional_db) -> str:
    """Seed a mock deployment and a key allowed to use it; return the key's secret."""
    deployment_create(model_name="demo", provider="mock", model="demo")
    _, secret = virtual_key_create(key_alias="hot-path", models=["demo"])
    return secret


@contextmanager
def sql_logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Collect the SQL every connection runs meanwhile, whichever thread runs it."""
    statements: list[str] = []
    caplog.clear()
    with override_settings(DEBUG=True), caplog.at_level(logging.DEBUG, logger="django.db.backends"):
        yield statements
        statements += [record.sql for record in caplog.records if hasattr(record, "sql")]


async def _one_round(client: AsyncClient, secret: str) -> list[int]:
    """Make one request of each kind the hot path serves; return their statuses."""
    auth = {"Authorization": f"Bearer {secret}"}
    chat = {"model": "demo", "messages": MESSAGES}
    responses = [
        await client.post("/v1/chat/completions", chat, content_type="application/json", headers=auth),
        await client.post(
            "/v1/embeddings", {"model": "demo", "input": "hi"}, "application/json", headers=auth
        ),
        await client.get("/v1/models", headers=auth),
        await client.get("/v1/models/demo", headers=auth),
        await client.get("/v1/models", headers={"Authorization": "Bearer sk-unknown-0123456789"}),
    ]
    stream = await client.post(
        "/v1/chat/completions", {**chat, "stream": True}, "application/json", headers=auth
    )
    body = b"".join([part async for part in stream.streaming_content])
    assert body.endswith(b"data: [DONE]\n\n")
    return [response.status_code for response in [*responses, stream]]


@pytest.mark.django_db(transaction=True)
async def test_warm_requests_make_no_database_query(secret, caplog):
    client = AsyncClient()
    with sql_logged(caplog) as cold:
        assert await _one_round(client, secret) == [200, 200, 200, 200, 401, 200]
    assert cold, "the first requests read the key and the deployments: the counter must see them"

    with sql_logged(caplog) as warm:
        for _ in range(4):  # 4 rounds of 6 requests
            assert await _one_round(client, secret) == [200, 200, 200, 200, 401, 200]
    assert warm == []
