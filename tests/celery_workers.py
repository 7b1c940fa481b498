"""Celery workers in subprocesses, and the database they share with the test that starts them.

The workers are subprocesses, so they cannot see pytest-django's test database: each test gets its
own migrated database that every process reaches through the environment, a SQLite file in a
temporary folder or, when DATABASE_URL points at PostgreSQL, a fresh database on that server.
tests/conftest.py makes one per test (the ``worker_database`` fixture).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

REPO_ROOT = Path(__file__).resolve().parents[1]
# What selects servers and runtime files; a worker gets the test's own values instead.
# GATEWAY_REDIS_PREFIX is not among them: a worker writes under the test session's prefix.
CONFIGURATION_VARIABLES = {
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "GATEWAY_VAR_DIR",
}


@dataclass
class WorkerDatabase:
    """A migrated database and the environment that points a process at it."""

    env: dict[str, str]
    _admin_url: str | None = None
    _name: str | None = None
    logs: list[Path] = field(default_factory=list)

    @classmethod
    def create(cls, var_dir: Path) -> WorkerDatabase:
        env = {name: value for name, value in os.environ.items() if name not in CONFIGURATION_VARIABLES}
        env["GATEWAY_VAR_DIR"] = str(var_dir)  # SQLite database, secret key and embedded broker go here
        env.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
        database = cls(env=env)
        url = os.environ.get("DATABASE_URL", "")
        if url.startswith(("postgres://", "postgresql://")):
            parts = urlsplit(url)
            database._admin_url = parts._replace(path="/postgres").geturl()
            database._name = f"gateway_worker_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(database._admin_url, autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{database._name}"')
            env["DATABASE_URL"] = parts._replace(path=f"/{database._name}").geturl()
        database.run("manage.py", "migrate", "--verbosity", "0")
        return database

    def run(self, *arguments: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [sys.executable, *arguments],
            cwd=REPO_ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def python(self, code: str, env: dict[str, str] | None = None) -> str:
        """Run Django-aware Python against this database; return what it printed."""
        return self.run("-c", "import django\ndjango.setup()\n" + code, env=env)

    def destroy(self) -> None:
        if self._name and self._admin_url:
            with psycopg.connect(self._admin_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')


@contextmanager
def worker_process(database: WorkerDatabase, env: dict[str, str], queue: str, log: Path) -> Iterator[None]:
    """Run `celery worker` on ``queue`` until the block ends (a warm shutdown, then SIGKILL)."""
    with open(log, "w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "gateway_project",
                "worker",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "--concurrency",
                "1",
                "--loglevel",
                "warning",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO_ROOT,
            env={**database.env, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the pool's children are stopped with it
        )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
