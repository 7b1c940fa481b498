"""The server's own limits, against `manage.py serve` and `start` as an operator runs them.

Idle kept-alive connections are closed, a request head or body that stalls gets a JSON 408 and its
connection closed, connections past the limit get a JSON 503, and none of it cuts a slow answer.
Raw sockets stand in for slow clients; reads are bounded so a server that never closes fails the test.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.e2e.gateway_process import REPO_ROOT, GatewayProcess, free_port
from tests.fakes.openai_responses import chat_chunk, chat_completion
from tests.fakes.upstream import Reply, sse_json

# Far longer than any limit configured here: a read that reaches it means the server kept the socket.
READ_BOUND = 30

SEED = """
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
from llm_gateway.models import Team
deployment_create(model_name="gpt-4o-mini", provider="openai", model="gpt-4o-mini", api_base={base!r},
                  api_key="sk-upstream")
key, secret = virtual_key_create(key_alias="slow-reader", team=Team.objects.create(team_alias="timeouts"))
print(secret)
"""


@contextmanager
def serving(
    gateway: GatewayProcess, *arguments: str, environment: dict[str, str] | None = None
) -> Iterator[str]:
    """Run `manage.py <arguments> --port <free port>` on the gateway's database; yield its URL."""
    port = free_port()
    log_path = gateway.var_dir / f"serve-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *arguments, "--port", str(port)],
            cwd=REPO_ROOT,
            env={**gateway.environment, **(environment or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, _upstream_server) -> Iterator[GatewayProcess]:
    process = GatewayProcess.create(tmp_path_factory.mktemp("timeouts"))
    yield process
    process.destroy()


@pytest.fixture(scope="module")
def secret(gateway, _upstream_server) -> str:
    return gateway.run_python(SEED.format(base=_upstream_server.url))


@pytest.fixture(scope="module")
def served(gateway) -> Iterator[str]:
    """`serve` with a 1 s keep-alive and a 1 s read timeout."""
    options = ["--workers", "1", "--timeout-keep-alive", "1", "--request-read-timeout", "1"]
    with serving(gateway, "serve", *options) as url:
        yield url


@pytest.fixture(scope="module")
def crowded(gateway) -> Iterator[str]:
    """`serve` with a limit of 3 connections, set in the environment."""
    with serving(gateway, "serve", "--workers", "1", environment={"GATEWAY_MAX_CONNECTIONS": "3"}) as url:
        yield url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=READ_BOUND)
    return connection


def read_until_closed(connection: socket.socket) -> bytes:
    """Return everything the server sends until it closes the connection (socket.timeout if it never does)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def read_response(connection: socket.socket) -> bytes:
    """Return one response with a Content-Length, leaving the connection open."""
    received = b""
    while b"\r\n\r\n" not in received or len(parsed(received)[2]) < int(
        parsed(received)[1]["content-length"]
    ):
        chunk = connection.recv(65536)
        assert chunk, f"the server closed the connection after {received!r}"
        received += chunk
    return received


def parsed(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Return the status, headers and body of the one HTTP response in ``raw``."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


def assert_request_timeout(raw: bytes) -> None:
    status, headers, body = parsed(raw)
    assert status == 408, raw
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "request_timeout"


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(served):
    with connect(served) as connection:
        connection.sendall(b"GET /health/liveliness HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        raw = read_until_closed(connection)

    status, _, body = parsed(raw)
    assert status == 200
    assert json.loads(body) == {"status": "healthy"}  # one whole response, then the server closed


def test_a_connection_that_sends_nothing_gets_a_408_and_is_closed(served):
    with connect(served) as connection:
        raw = read_until_closed(connection)

    assert_request_timeout(raw)


def test_a_request_head_that_stalls_gets_a_408_and_is_closed(served):
    with connect(served) as connection:
        connection.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        raw = read_until_closed(connection)

    assert_request_timeout(raw)


def test_a_stalled_head_after_a_kept_alive_request_gets_a_408(served):
    with connect(served) as connection:
        connection.sendall(b"GET /health/liveliness HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = read_response(connection)
        connection.sendall(b"GET /health/liv")  # within the keep-alive time: the next request starts
        raw = read_until_closed(connection)

    assert parsed(first)[0] == 200
    assert_request_timeout(raw)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/key/generate"])
def test_a_body_that_stalls_gets_a_408_and_is_closed(served, path):
    with connect(served) as connection:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        connection.sendall(head.encode() + b"Content-Length: 100\r\n\r\n" + b'{"model": "gpt')
        raw = read_until_closed(connection)

    assert_request_timeout(raw)


def test_a_stream_longer_than_the_read_timeout_is_not_cut(served, secret, upstream):
    words = [f" word{number}" for number in range(8)]
    events = [sse_json(chat_chunk("gpt-4o-mini", {"content": word})) for word in words]
    upstream.enqueue(Reply(sse=[*events, "[DONE]"], event_delay=0.3))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": True}

    with httpx.stream(
        "POST",
        f"{served}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {secret}"},
        timeout=READ_BOUND,
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]

    assert response.status_code == 200
    assert lines[-1] == "data: [DONE]"
    content = "".join(
        choice["delta"].get("content") or ""
        for line in lines[:-1]
        for choice in json.loads(line.removeprefix("data: "))["choices"]
    )
    assert content == "".join(words)


def test_a_slow_answer_to_a_whole_request_is_not_cut(served, secret, upstream):
    upstream.enqueue(Reply(delay=2.0, json=chat_completion("gpt-4o-mini")))

    response = httpx.post(
        f"{served}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=READ_BOUND,
    )

    assert response.status_code == 200, response.text


def _status_until(url: str, wanted: int) -> httpx.Response:
    """Ask for liveliness on new connections until the answer has ``wanted`` status (bounded)."""
    deadline = time.monotonic() + READ_BOUND
    while True:
        response = httpx.get(f"{url}/health/liveliness", timeout=READ_BOUND)
        if response.status_code == wanted or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_connections_past_the_limit_get_a_json_503(crowded):
    # Three connections that send nothing fill the limit; a fourth is refused until they go.
    held = [connect(crowded) for _ in range(3)]
    try:
        refused = _status_until(crowded, 503)
    finally:
        for connection in held:
            connection.close()
    served_again = _status_until(crowded, 200)

    assert refused.status_code == 503, refused.text
    assert refused.headers["connection"] == "close"
    assert refused.json()["error"]["type"] == "service_unavailable"
    assert served_again.status_code == 200


def test_start_serves_with_the_same_limits(gateway):
    with (
        serving(gateway, "start", "--no-worker", "--request-read-timeout", "1") as url,
        connect(url) as connection,
    ):
        raw = read_until_closed(connection)

    assert_request_timeout(raw)
