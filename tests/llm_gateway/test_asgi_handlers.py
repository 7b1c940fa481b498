"""The inference paths' ASGI handler: no per-request thread, yet connections are released and clients
that go away cancel the view.

Requests are driven straight through the ASGI interface (scope, receive, send), as uvicorn drives it.
Queries are seen through the ``django.db.backends`` logger with DEBUG on, which records the thread
each statement ran in (see tests/llm_gateway/test_inference_queries.py for why not
``CaptureQueriesContext``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpResponse, StreamingHttpResponse
from django.test.utils import override_settings
from django.urls import path

from gateway_project import urls as gateway_urls
from llm_gateway.asgi_handlers import InferenceHandler
from llm_gateway.lookups import snapshots
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create

cancelled: list[str] = []
view_started = asyncio.Event()


async def slow_view(request):
    view_started.set()
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        cancelled.append(request.path)
        raise
    return HttpResponse(b"too late")


async def hello_view(request):
    return HttpResponse(b"hello", content_type="text/plain")


async def _parts() -> AsyncIterator[bytes]:
    for part in (b"data: 1\n\n", b"", b"data: 2\n\n"):
        yield part


async def stream_view(request):
    return StreamingHttpResponse(_parts(), content_type="text/event-stream")


async def broken_view(request):
    raise RuntimeError("a bug in a view")


urlpatterns = [
    path("slow", slow_view),
    path("hello", hello_view),
    path("stream", stream_view),
    path("broken", broken_view),
]
handler500 = gateway_urls.handler500  # the gateway's own, as in the root URLconf
THIS_URLCONF = __name__


class RecordingHandler(InferenceHandler):
    """The handler, recording the threads it released connections in."""

    def __init__(self) -> None:
        super().__init__()
        self.released_in: list[int] = []

    def connections_release(self) -> None:
        self.released_in.append(threading.get_ident())
        super().connections_release()


async def call(
    handler: InferenceHandler,
    route: str,
    *,
    headers: list[tuple[bytes, bytes]] = (),
    disconnect: asyncio.Event | None = None,
    body: tuple[bytes, ...] = (b"",),
) -> list[dict]:
    """Serve one GET through ``handler``; return the messages it sent.

    The body arrives in the given parts. After it, ``receive`` waits for ``disconnect`` (forever if
    None), then reports the client gone, as uvicorn's does.
    """
    pending = [
        {"type": "http.request", "body": part, "more_body": index < len(body) - 1}
        for index, part in enumerate(body)
    ]
    sent: list[dict] = []
    host = [] if any(name == b"host" for name, _ in headers) else [(b"host", b"testserver")]

    async def receive() -> dict:
        if pending:
            return pending.pop(0)
        await (disconnect or asyncio.Event()).wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*host, *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await handler(scope, receive, send)
    return sent


@pytest.fixture
def auth(transactional_db) -> list[tuple[bytes, bytes]]:
    """Seed a deployment and a key allowed to use it; return the request's Authorization header."""
    deployment_create(model_name="demo", provider="mock", model="demo")
    _, secret = virtual_key_create(key_alias="asgi", models=["demo"])
    return [(b"authorization", f"Bearer {secret}".encode())]


def _statement_threads(caplog: pytest.LogCaptureFixture) -> set[int]:
    return {record.thread for record in caplog.records if hasattr(record, "sql")}


@pytest.mark.django_db(transaction=True)
async def test_a_request_that_read_the_database_releases_connections_in_the_thread_that_read_it(auth, caplog):
    snapshots.clear()  # the key and the deployments are read from the database this time
    handler = RecordingHandler()

    with override_settings(DEBUG=True), caplog.at_level(logging.DEBUG, logger="django.db.backends"):
        sent = await call(handler, "/v1/models", headers=auth)

    assert sent[0]["status"] == 200
    query_threads = _statement_threads(caplog)
    assert query_threads, "a cold request reads the key: the logger must have seen it"
    assert handler.released_in == list(query_threads)
    # Django never closes SQLite's in-memory test database; any other connection is closed (or back
    # in the pool) once the request is over.
    if not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
        assert await sync_to_async(lambda: connection.connection)() is None


@pytest.mark.django_db(transaction=True)
async def test_a_request_served_from_memory_releases_nothing(auth, caplog):
    handler = RecordingHandler()
    await call(handler, "/v1/models", headers=auth)  # warms the snapshots
    handler.released_in.clear()

    with override_settings(DEBUG=True), caplog.at_level(logging.DEBUG, logger="django.db.backends"):
        sent = await call(handler, "/v1/models", headers=auth)

    assert sent[0]["status"] == 200
    assert _statement_threads(caplog) == set()
    assert handler.released_in == []


@override_settings(ROOT_URLCONF=THIS_URLCONF)
async def test_a_client_that_goes_away_cancels_the_view():
    cancelled.clear()
    view_started.clear()
    gone = asyncio.Event()
    serving = asyncio.create_task(call(InferenceHandler(), "/slow", disconnect=gone))
    await view_started.wait()

    gone.set()
    sent = await asyncio.wait_for(serving, timeout=5)

    assert cancelled == ["/slow"]
    assert sent == []  # nothing is sent to a client that is gone
    assert not serving.cancelled()


@override_settings(ROOT_URLCONF=THIS_URLCONF)
async def test_a_whole_answer_goes_in_one_message_with_its_content_length():
    start, body = await call(InferenceHandler(), "/hello")

    assert start["status"] == 200
    assert (b"content-length", b"5") in start["headers"]
    assert (b"Content-Type", b"text/plain") in start["headers"]
    assert body == {"type": "http.response.body", "body": b"hello"}


@override_settings(ROOT_URLCONF=THIS_URLCONF)
async def test_a_stream_is_sent_part_by_part_then_closed():
    start, *parts = await call(InferenceHandler(), "/stream")

    assert start["status"] == 200
    assert not any(name.lower() == b"content-length" for name, _ in start["headers"])
    assert parts == [
        {"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True},
        {"type": "http.response.body", "body": b"data: 2\n\n", "more_body": True},
        {"type": "http.response.body"},
    ]


@override_settings(ROOT_URLCONF=THIS_URLCONF)
async def test_an_unknown_path_is_a_404_and_is_not_remembered():
    handler = InferenceHandler()

    start, _ = await call(handler, "/nowhere")

    assert start["status"] == 404
    assert handler._resolved == {}


async def test_it_serves_http_only():
    with pytest.raises(ValueError, match="HTTP only"):
        await InferenceHandler()({"type": "websocket", "path": "/v1/models"}, None, None)


@override_settings(ROOT_URLCONF=THIS_URLCONF, DATA_UPLOAD_MAX_MEMORY_SIZE=10)
async def test_a_body_over_the_upload_limit_is_refused_with_a_413():
    handler = InferenceHandler()

    small = await call(handler, "/hello", body=(b"12345", b"67890"))
    start, body = await call(handler, "/hello", body=(b"12345678", b"90123", b"never read"))

    assert small[0]["status"] == 200
    assert start["status"] == 413
    assert (b"Content-Type", b"application/json") in start["headers"]
    error = orjson.loads(body["body"])["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "request_too_large"
    assert "10 bytes" in error["message"]


class BrokenHandler(InferenceHandler):
    """The handler with a bug of its own, before any response started."""

    def host_allowed(self, request) -> bool:
        raise RuntimeError("a bug in the handler")


def _internal_error(start: dict, body: dict) -> str:
    """Assert a JSON 500 in OpenAI's shape with its request id; return the id."""
    assert start["status"] == 500
    headers = dict(start["headers"])
    assert headers[b"Content-Type"] == b"application/json"
    error = orjson.loads(body["body"])["error"]
    assert error["message"] == "Internal server error"
    assert error["type"] == "internal_server_error"
    assert error["request_id"].startswith("req-")
    assert headers[b"x-request-id"] == error["request_id"].encode()
    assert b"Traceback" not in body["body"] and b"RuntimeError" not in body["body"]
    return error["request_id"]


@override_settings(ROOT_URLCONF=THIS_URLCONF)
async def test_a_bug_in_a_view_is_a_json_500_with_a_request_id_that_the_log_names(caplog):
    with caplog.at_level(logging.ERROR):
        start, body = await call(InferenceHandler(), "/broken")

    request_id = _internal_error(start, body)
    logged = [record for record in caplog.records if request_id in record.getMessage()]
    assert len(logged) == 1
    assert "a bug in a view" in str(logged[0].exc_info[1])


@override_settings(ROOT_URLCONF=THIS_URLCONF)
async def test_a_bug_in_the_handler_itself_is_a_json_500_too(caplog):
    with caplog.at_level(logging.ERROR):
        start, body = await call(BrokenHandler(), "/hello")

    request_id = _internal_error(start, body)
    assert any(request_id in record.getMessage() and record.exc_info for record in caplog.records)


@override_settings(ROOT_URLCONF=THIS_URLCONF, ALLOWED_HOSTS=["gateway.example"])
async def test_a_host_outside_allowed_hosts_is_refused_with_a_json_400_before_the_view():
    cancelled.clear()
    handler = InferenceHandler()

    start, body = await call(handler, "/hello", headers=[(b"host", b"evil.example")])
    allowed = await call(handler, "/hello", headers=[(b"host", b"gateway.example")])
    again = await call(handler, "/hello", headers=[(b"host", b"gateway.example:8443")])

    assert start["status"] == 400
    error = orjson.loads(body["body"])["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_host")
    assert allowed[0]["status"] == 200
    assert again[0]["status"] == 200
