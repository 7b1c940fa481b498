"""Changes reach the hot path's in-process snapshots within a bounded time (a few seconds).

Each gateway process serves keys and deployments from memory and checks a shared generation counter
every CONFIG_REFRESH_SECONDS (0.2 s here). Changes are made from another process (``run_python``),
as ``manage.py`` commands, a second instance or an admin on another replica would make them, and the
gateways are polled for at most REFRESH_BOUND seconds.

With REDIS_URL the counter lives in Redis, shared by every instance. Without it (the embedded
default) the server and the `manage.py` commands beside it are still separate processes on one
machine, and the server must see their changes within the same bound.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.gateway_process import GatewayProcess
from tests.fakes.openai_responses import install_openai_routes
from tests.fakes.upstream import FakeUpstream

REFRESH_BOUND = 5.0  # seconds; "a few seconds" as the README promises, against a 0.2 s refresh interval
MESSAGES = [{"role": "user", "content": "Hello"}]


def poll(check: Callable[[], bool], bound: float = REFRESH_BOUND) -> bool:
    """Return True as soon as ``check()`` holds, False if it still does not after ``bound`` seconds."""
    deadline = time.monotonic() + bound
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def chat_status(gateway: GatewayProcess, secret: str, model: str = "demo") -> int:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": MESSAGES},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    return response.status_code


def key_seed(gateway: GatewayProcess) -> tuple[str, str]:
    """Create a key allowed every model; return its alias and secret."""
    alias = f"key-{uuid.uuid4().hex[:8]}"
    secret = gateway.run_python(
        "from llm_gateway.services.keys import virtual_key_create\n"
        f"print(virtual_key_create(key_alias={alias!r})[1])"
    )
    return alias, secret


def key_block(gateway: GatewayProcess, alias: str) -> None:
    gateway.run_python(
        "from llm_gateway.models import VirtualKey\n"
        "from llm_gateway.services.keys import virtual_key_block\n"
        f"virtual_key_block(key=VirtualKey.objects.get(key_alias={alias!r}))"
    )


def deployment_seed(gateway: GatewayProcess, api_base: str) -> str:
    """Create an OpenAI deployment calling ``api_base``; return its model name."""
    name = f"gpt-{uuid.uuid4().hex[:8]}"
    gateway.run_python(
        "from llm_gateway.services.deployments import deployment_create\n"
        f"deployment_create(model_name={name!r}, provider='openai', model='gpt-4o-mini',"
        f" api_base={api_base!r}, api_key='sk-upstream-credential')"
    )
    return name


def deployment_move(gateway: GatewayProcess, name: str, api_base: str) -> None:
    gateway.run_python(
        "from llm_gateway.models import Deployment\n"
        "from llm_gateway.services.deployments import deployment_update\n"
        f"deployment_update(deployment=Deployment.objects.get(model_name={name!r}), api_base={api_base!r})"
    )


def served_by(upstream: FakeUpstream, gateway: GatewayProcess, secret: str, model: str) -> bool:
    """Return True if one chat call through ``gateway`` reached ``upstream``."""
    before = len(upstream.requests)
    assert chat_status(gateway, secret, model) == 200
    return len(upstream.requests) > before


@pytest.fixture(scope="module")
def second_upstream():
    """Another fake OpenAI upstream, for a deployment whose api_base moves."""
    server = FakeUpstream()
    install_openai_routes(server)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def embedded_gateway(tmp_path_factory):
    """One gateway process in the embedded mode (no REDIS_URL), with the mock 'demo' deployment."""
    process = GatewayProcess.create(tmp_path_factory.mktemp("embedded"))
    process.environment.pop("REDIS_URL", None)
    process.run_python(
        "from llm_gateway.services.deployments import deployment_create\n"
        "deployment_create(model_name='demo', provider='mock', model='demo')"
    )
    process.start()
    yield process
    process.destroy()


@pytest.fixture
def instances(tmp_path, redis_url):
    """Two gateway processes on the same database and the same Redis, with a mock 'demo' deployment."""
    first = GatewayProcess.create(tmp_path / "first", {"REDIS_URL": redis_url})
    (tmp_path / "second").mkdir()
    second = GatewayProcess(var_dir=tmp_path / "second", environment=first.environment.copy())
    first.run_python(
        "from llm_gateway.services.deployments import deployment_create\n"
        "deployment_create(model_name='demo', provider='mock', model='demo')"
    )
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        second.stop()
        first.destroy()


@pytest.mark.redis
def test_a_blocked_key_is_refused_by_every_instance_within_the_bound(instances):
    first, second = instances
    alias, secret = key_seed(first)
    assert [chat_status(first, secret), chat_status(second, secret)] == [200, 200]

    key_block(first, alias)

    assert poll(lambda: [chat_status(first, secret), chat_status(second, secret)] == [401, 401])
    assert [chat_status(first, secret), chat_status(second, secret)] == [401, 401]


@pytest.mark.redis
def test_a_moved_deployment_is_called_at_its_new_address_by_every_instance(
    instances, upstream, second_upstream
):
    first, second = instances
    _, secret = key_seed(first)
    model = deployment_seed(first, upstream.url)
    assert served_by(upstream, first, secret, model)
    assert served_by(upstream, second, secret, model)

    deployment_move(first, model, second_upstream.url)

    for instance in (first, second):
        assert poll(lambda instance=instance: served_by(second_upstream, instance, secret, model))
    calls_before = len(upstream.requests)
    assert served_by(second_upstream, first, secret, model)
    assert served_by(second_upstream, second, secret, model)
    assert len(upstream.requests) == calls_before


def test_without_redis_a_key_blocked_by_another_process_is_refused_within_the_bound(embedded_gateway):
    alias, secret = key_seed(embedded_gateway)
    assert chat_status(embedded_gateway, secret) == 200

    key_block(embedded_gateway, alias)  # from another process, as `manage.py shell` would

    assert poll(lambda: chat_status(embedded_gateway, secret) == 401)


def test_without_redis_a_deployment_moved_by_another_process_is_followed_within_the_bound(
    embedded_gateway, upstream, second_upstream
):
    _, secret = key_seed(embedded_gateway)
    model = deployment_seed(embedded_gateway, upstream.url)
    assert served_by(upstream, embedded_gateway, secret, model)

    deployment_move(embedded_gateway, model, second_upstream.url)

    assert poll(lambda: served_by(second_upstream, embedded_gateway, secret, model))


def test_without_redis_a_key_created_by_another_process_works_at_once(embedded_gateway):
    # A key the server has never seen is read from the database on first use: no wait at all.
    _, secret = key_seed(embedded_gateway)

    assert chat_status(embedded_gateway, secret) == 200


def test_without_redis_a_deployment_created_by_another_process_is_served_within_the_bound(
    embedded_gateway, upstream
):
    _, secret = key_seed(embedded_gateway)
    assert chat_status(embedded_gateway, secret) == 200  # the server has loaded its deployments

    model = deployment_seed(embedded_gateway, upstream.url)

    assert poll(lambda: chat_status(embedded_gateway, secret, model) == 200)
