"""Fixtures shared by every test package: the servers some tests need.

A test that needs Redis or PostgreSQL says so with the `redis_url` / `postgres_url` fixture or the
`redis` / `postgres` marker. When the server does not answer, the test is skipped with the reason,
except under CI=true, where a missing server fails the run instead of hiding tests.

Redis is the one REDIS_URL names, and no other: without REDIS_URL the suite starts a `redis-server`
of its own on a free port (when the binary exists) and stops it at the end. Every key the session
writes starts with its own prefix (`SESSION_REDIS_PREFIX`, put in GATEWAY_REDIS_PREFIX before any
gateway or worker subprocess starts); at the end the session deletes the keys under that prefix and
nothing else. Tests never flush a database or the server's scripts: the Redis may be shared.
"""

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from django.conf import settings

from tests.celery_workers import WorkerDatabase
from tests.e2e.gateway_process import free_port
from tests.fakes.anthropic_responses import install_anthropic_routes
from tests.fakes.openai_responses import install_openai_routes
from tests.fakes.upstream import FakeUpstream
from tests.redis_keys import keys_delete

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
SESSION_REDIS_PREFIX = f"test-{secrets.token_hex(6)}"


def _session_prefix_install() -> None:
    """Make SESSION_REDIS_PREFIX the gateway's Redis prefix, here and in every subprocess."""
    os.environ["GATEWAY_REDIS_PREFIX"] = SESSION_REDIS_PREFIX
    # pytest-django loaded the settings before this file (it sets Django up first), so this process's
    # own settings get the prefix here; no cache connection exists yet to have read the old one.
    settings.GATEWAY["REDIS_PREFIX"] = SESSION_REDIS_PREFIX
    settings.CACHES["default"]["KEY_PREFIX"] = SESSION_REDIS_PREFIX


_session_prefix_install()


def _login_throttle_off() -> None:
    """Turn the failed-login limit off, here and in every subprocess; its own tests turn it on.

    The suite makes many failed logins from 127.0.0.1 on purpose: counted, they would lock the
    tests that follow out of the management API.
    """
    os.environ["GATEWAY_LOGIN_FAILURE_LIMIT"] = "0"
    settings.GATEWAY["LOGIN_FAILURE_LIMIT"] = 0


_login_throttle_off()


class _SuiteRedis:
    """A `redis-server` the suite started itself, in a temporary folder, on a free port."""

    def __init__(self, binary: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="test-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log = open(self.folder / "redis.log", "w")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait(self) -> str | None:
        """Return None once the server answers, else why it does not."""
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"the suite's redis-server exited: {(self.folder / 'redis.log').read_text()}"
            try:
                client.ping()
                return None
            except redis.ConnectionError:
                time.sleep(0.05)
        return "the suite's redis-server did not answer within 20 s"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_suite_redis: _SuiteRedis | None = None


@cache
def _redis_server() -> tuple[str | None, str | None]:
    """Return the tests' Redis URL (or None) and why there is none: REDIS_URL, else one started here."""
    global _suite_redis
    url = os.environ.get("REDIS_URL")
    if url:
        return url, None
    binary = shutil.which("redis-server")
    if binary is None:
        return None, "REDIS_URL is not set and there is no redis-server binary to start one"
    _suite_redis = _SuiteRedis(binary)
    reason = _suite_redis.wait()
    return (None, reason) if reason else (_suite_redis.url, None)


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
        url, reason = _redis_server()
        if url is None:
            return f"Redis is not available: {reason}"
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


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Return the URL of the tests' Redis database (REDIS_URL, else a server the suite started)."""
    _require("redis")
    url, _ = _redis_server()
    return url


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    """Return the session's Redis key prefix: a test's own keys go under `<prefix>:`."""
    return SESSION_REDIS_PREFIX


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _suite_redis is not None:
        _suite_redis.stop()  # the whole server was this session's
        return
    url = os.environ.get("REDIS_URL")  # used by this process's settings too, not only by redis tests
    if url:
        try:
            keys_delete(url, SESSION_REDIS_PREFIX)
        except redis.RedisError as error:
            print(f"\nThe session's Redis keys ({SESSION_REDIS_PREFIX}:*) could not be deleted: {error}")


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
