"""Fixtures shared by every test package: the servers some tests need.

A test that needs Redis or PostgreSQL says so with the `redis_url` / `postgres_url` fixture or the
`redis` / `postgres` marker. When the server does not answer, the test is skipped with the reason,
except under CI=true, where a missing server fails the run instead of hiding tests.
"""

import os
from collections.abc import Iterator
from functools import cache
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

from tests.celery_workers import WorkerDatabase
from tests.fakes.anthropic_responses import install_anthropic_routes
from tests.fakes.openai_responses import install_openai_routes
from tests.fakes.upstream import FakeUpstream

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def _redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def _postgres_url() -> str:
    """Return the server of DATABASE_URL when it is PostgreSQL, with its `postgres` maintenance database.

    The database DATABASE_URL names may not exist yet: pytest-django creates test_<name> from the
    maintenance database too.
    """
    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    if parts.scheme not in ("postgres", "postgresql"):
        return DEFAULT_POSTGRES_URL
    return parts._replace(path="/postgres").geturl()


def _where(url: str) -> str:
    """Return host:port of `url`, leaving any password out of test reports."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


@cache
def _unavailable_reason(service: str) -> str | None:
    """Return why `service` cannot be used, or None when it answers."""
    if service == "redis":
        url = _redis_url()
        try:
            redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
        except redis.RedisError as error:
            return f"Redis cannot be reached at {_where(url)} (REDIS_URL): {error}"
        return None
    url = _postgres_url()
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        return f"PostgreSQL cannot be reached at {_where(url)} (DATABASE_URL): {error}"
    return None


def _require(service: str) -> None:
    reason = _unavailable_reason(service)
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} [CI=true: a missing server fails the run]", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for service in ("redis", "postgres"):
        if item.get_closest_marker(service):
            _require(service)


@pytest.fixture
def redis_url() -> str:
    """Return the URL of a reachable Redis database for tests (REDIS_URL, default db 15)."""
    _require("redis")
    return _redis_url()


@pytest.fixture
def postgres_url() -> str:
    """Return the URL of a reachable PostgreSQL server's maintenance database (see _postgres_url)."""
    _require("postgres")
    return _postgres_url()


@pytest.fixture(scope="session")
def _upstream_server():
    server = FakeUpstream()
    install_openai_routes(server)
    install_anthropic_routes(server)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def upstream(_upstream_server):
    """The fake upstream on loopback, with no scripted replies or recorded requests left from other tests."""
    _upstream_server.reset()
    yield _upstream_server
    _upstream_server.reset()


@pytest.fixture
def worker_database(tmp_path) -> Iterator[WorkerDatabase]:
    """A migrated database of the test's own that Celery worker subprocesses can reach too."""
    database = WorkerDatabase.create(tmp_path / "var")
    yield database
    database.destroy()
