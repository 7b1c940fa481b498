"""A real gateway process for end-to-end tests: its own database, a free port, uvicorn.

The database is SQLite in a temporary folder, or a fresh PostgreSQL database when DATABASE_URL
points at PostgreSQL (CI's first pass). With Redis, its keys go under a prefix of its own inside the
test session's (``redis_prefix``): gateways made by ``create`` never share a ledger stream or counters
unless a test copies one's environment to another. Tests seed it through ``run_python`` (the
services, in a subprocess with the same environment) and talk to it over HTTP like any client would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

REPO_ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-master-e2e-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_database(url: str) -> tuple[str, str]:
    """Create a fresh database on DATABASE_URL's server; return its URL and the admin URL."""
    parts = urlsplit(url)
    admin_url = parts._replace(path="/postgres").geturl()
    name = f"gateway_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return parts._replace(path=f"/{name}").geturl(), admin_url


@dataclass
class GatewayProcess:
    var_dir: Path
    environment: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen | None = None
    _admin_url: str | None = None
    _database: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redis_prefix(self) -> str:
        """Return the prefix of every Redis key this gateway writes."""
        return self.environment["GATEWAY_REDIS_PREFIX"]

    @classmethod
    def create(cls, var_dir: Path, extra_environment: dict[str, str] | None = None) -> GatewayProcess:
        environment = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
        session_prefix = os.environ.get("GATEWAY_REDIS_PREFIX", "test")
        environment.update(
            {
                "GATEWAY_VAR_DIR": str(var_dir),
                "GATEWAY_MASTER_KEY": MASTER_KEY,
                "GATEWAY_CONFIG_REFRESH_SECONDS": "0.2",
                "PYTHONPATH": str(REPO_ROOT),
                "GATEWAY_REDIS_PREFIX": f"{session_prefix}:gw-{uuid.uuid4().hex[:8]}",
            }
        )
        gateway = cls(var_dir=var_dir, environment=environment)
        database_url = os.environ.get("DATABASE_URL", "")
        if database_url.startswith(("postgres://", "postgresql://")):
            environment["DATABASE_URL"], gateway._admin_url = _postgres_database(database_url)
            gateway._database = urlsplit(environment["DATABASE_URL"]).path.lstrip("/")
        else:
            environment.pop("DATABASE_URL", None)
        environment.update(extra_environment or {})
        gateway.manage("migrate", "--verbosity", "0")
        return gateway

    def manage(self, *arguments: str) -> subprocess.CompletedProcess:
        """Run a manage.py command against this gateway's database; raise if it fails."""
        result = subprocess.run(
            [sys.executable, "manage.py", *arguments],
            cwd=REPO_ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr + result.stdout
        return result

    def run_python(self, code: str) -> str:
        """Run Django-aware Python against this gateway's database and return what it printed."""
        script = (
            "import django, os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'gateway_project.settings')\n"
        )
        script += "django.setup()\n" + code
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO_ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def start(self, *, workers: int = 1) -> GatewayProcess:
        self.port = free_port()
        log = open(self.var_dir / f"server-{self.port}.log", "w")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "gateway_project.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ],
            cwd=REPO_ROOT,
            env=self.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if httpx.get(f"{self.url}/health/liveliness", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"the gateway did not answer within 30 s:\n{self.log()}")

    def log(self) -> str:
        return "\n".join(path.read_text() for path in sorted(self.var_dir.glob("server-*.log")))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def destroy(self) -> None:
        self.stop()
        if self._database and self._admin_url:
            with psycopg.connect(self._admin_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self._database}" WITH (FORCE)')
