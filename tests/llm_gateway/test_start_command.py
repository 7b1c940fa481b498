"""`manage.py start` and `serve`, run as an operator runs them: in a subprocess, on a fresh var/."""

import hashlib
import itertools
import json
import os
import re
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from django.contrib.auth.hashers import check_password

from llm_gateway.services.bootstrap import DEMO_REPLY

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def printed_password(output: str) -> str:
    match = re.search(r"^  Password: (\S+)  \(saved in ", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def admin_password_hash(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT password FROM auth_user WHERE username = 'admin' AND is_superuser AND is_staff"
        ).fetchone()
    assert row, "no admin superuser in the database"
    return row[0]


def printed_demo_key(output: str) -> str:
    match = re.search(r"^  Key:      (sk-\S+)  \(saved in ", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def printed_command(output: str, start: str) -> str:
    """Return the printed example line that starts with `start` (indentation removed)."""
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith(start)]
    assert len(lines) == 1, output
    return lines[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    log_path: Path
    process: subprocess.Popen

    @property
    def output(self) -> str:
        return self.log_path.read_text()


@contextmanager
def gateway_server(command: list[str], env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    """Run `manage.py <command> --port <free port>` until it answers; stop it (SIGTERM) on exit."""
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *command, "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", log_path, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"the server exited early:\n{server.output}"
            assert time.monotonic() < deadline, f"no answer within 60 s:\n{server.output}"
            try:
                httpx.get(f"{server.url}/health/liveliness", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_it_creates_the_admin_and_prints_a_login_that_works(run_python, var_dir):
    result = run_python("manage.py", "start", "--no-serve")

    assert result.returncode == 0, result.stderr
    assert "URL:      http://127.0.0.1:8000/admin/" in result.stdout
    assert "User:     admin" in result.stdout
    password = printed_password(result.stdout)
    assert check_password(password, admin_password_hash(var_dir / "gateway.sqlite3"))


def test_it_prints_the_same_password_on_every_start(run_python):
    first = run_python("manage.py", "start", "--no-serve")
    second = run_python("manage.py", "start", "--no-serve", "--port", "9001")

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "Created the admin user." in first.stdout
    assert "Admin login:" in second.stdout
    assert "URL:      http://127.0.0.1:9001/admin/" in second.stdout
    assert printed_password(second.stdout) == printed_password(first.stdout)


def test_it_says_how_to_reset_a_password_it_no_longer_has(run_python, var_dir):
    run_python("manage.py", "start", "--no-serve")
    (var_dir / "admin_password").unlink()

    result = run_python("manage.py", "start", "--no-serve")

    assert result.returncode == 0, result.stderr
    assert "python manage.py changepassword admin" in result.stdout


def test_it_prints_the_library_demo_reply(run_python):
    result = run_python("manage.py", "start", "--no-serve")

    assert result.returncode == 0, result.stderr
    assert DEMO_REPLY in result.stdout


@pytest.mark.postgres
def test_it_sets_up_a_fresh_postgres_database(run_python, postgres_url):
    name = f"gateway_start_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin_connection:
        admin_connection.execute(f'CREATE DATABASE "{name}"')
    database_url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        result = run_python("manage.py", "start", "--no-serve", env={"DATABASE_URL": database_url})

        assert result.returncode == 0, result.stderr
        with psycopg.connect(database_url) as connection:
            row = connection.execute("SELECT password FROM auth_user WHERE username = 'admin'").fetchone()
        assert row and check_password(printed_password(result.stdout), row[0])
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin_connection:
            admin_connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_it_serves_health_the_admin_and_its_static_files(embedded_env, tmp_path):
    with gateway_server(["start"], embedded_env, tmp_path) as server:
        health = httpx.get(f"{server.url}/health/liveliness", timeout=10)
        login = httpx.get(f"{server.url}/admin/login/", timeout=10)
        stylesheet = httpx.get(f"{server.url}/static/admin/css/base.css", timeout=10)

    assert health.status_code == 200
    assert health.json() == {"status": "healthy"}
    assert login.status_code == 200
    assert "LLM Gateway admin" in login.text
    assert stylesheet.status_code == 200
    assert stylesheet.headers["content-type"].startswith("text/css")


def test_it_prints_the_same_demo_key_on_every_start(run_python, var_dir):
    first = run_python("manage.py", "start", "--no-serve")
    second = run_python("manage.py", "start", "--no-serve")

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    secret = printed_demo_key(first.stdout)
    assert printed_demo_key(second.stdout) == secret
    with sqlite3.connect(var_dir / "gateway.sqlite3") as connection:
        rows = connection.execute(
            "SELECT key_hash FROM llm_gateway_virtualkey WHERE key_alias = 'demo'"
        ).fetchall()
    assert rows == [(hashlib.sha256(secret.encode()).hexdigest(),)]


def _curl(command: str) -> str:
    """Run the printed curl command: with curl when installed, else the same request with httpx."""
    if shutil.which("curl"):
        result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout
    arguments = shlex.split(command)
    url, options = arguments[1], arguments[2:]
    headers = dict(value.split(": ", 1) for flag, value in itertools.pairwise(options) if flag == "-H")
    body = options[options.index("-d") + 1]
    return httpx.post(url, headers=headers, content=body, timeout=60).text


def test_the_printed_curl_and_openai_examples_work_as_printed(embedded_env, tmp_path):
    with gateway_server(["start"], embedded_env, tmp_path) as server:
        curl_output = _curl(printed_command(server.output, "curl "))
        sdk_command = shlex.split(printed_command(server.output, "python -c "))
        sdk = subprocess.run(
            [sys.executable, *sdk_command[1:]], env=embedded_env, capture_output=True, text=True, timeout=60
        )

    assert json.loads(curl_output)["choices"][0]["message"]["content"] == DEMO_REPLY
    assert sdk.returncode == 0, sdk.stderr
    assert sdk.stdout == DEMO_REPLY + "\n"


def test_it_takes_the_master_key_from_the_gateway_config_file(embedded_env, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - {model_name: from-config, litellm_params: {model: mock/echo}}\n"
        "general_settings:\n"
        "  master_key: os.environ/TEST_CONFIG_MASTER_KEY\n"
    )
    env = {**embedded_env, "GATEWAY_CONFIG": str(config), "TEST_CONFIG_MASTER_KEY": "sk-from-the-config"}

    with gateway_server(["start"], env, tmp_path) as server:
        accepted = httpx.get(
            f"{server.url}/v1/models", headers={"Authorization": "Bearer sk-from-the-config"}
        )
        refused = httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer sk-guessed"})

    assert accepted.status_code == 200, accepted.text
    assert {model["id"] for model in accepted.json()["data"]} == {"demo", "from-config"}
    assert refused.status_code == 401
    assert f"Imported {config}: 1 created" in server.output


def test_it_stops_on_a_broken_gateway_config(run_python):
    result = run_python(
        "manage.py", "start", "--no-serve", env={"GATEWAY_CONFIG": str(FIXTURES / "unknown_provider.yaml")}
    )

    assert result.returncode == 1
    assert "unknown_provider.yaml, line 7: model_list[1].litellm_params.model" in result.stderr


def test_serve_runs_workers_and_stops_cleanly(run_python, embedded_env, tmp_path):
    migrate = run_python("manage.py", "migrate", "--verbosity", "0")
    assert migrate.returncode == 0, migrate.stderr

    with gateway_server(["serve", "--workers", "2"], embedded_env, tmp_path) as server:
        liveliness = httpx.get(f"{server.url}/health/liveliness", timeout=10)
        readiness = httpx.get(f"{server.url}/health/readiness", timeout=10)
        deadline = time.monotonic() + 60
        while len(re.findall(r"Application startup complete", server.output)) < 2:
            assert time.monotonic() < deadline, server.output
            time.sleep(0.2)

    assert liveliness.json() == {"status": "healthy"}
    assert readiness.status_code == 200, readiness.text
    assert server.process.returncode == 0, server.output
    workers = set(re.findall(r"Started server process \[(\d+)\]", server.output))
    assert len(workers) == 2
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
