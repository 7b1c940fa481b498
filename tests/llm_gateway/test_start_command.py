"""`manage.py start`, run as an operator runs it: in a subprocess on a fresh runtime directory."""

import re
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from django.contrib.auth.hashers import check_password

from llm_gateway.services.bootstrap import DEMO_REPLY

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
    port = free_port()
    log_path = tmp_path / "server.log"
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "start", "--port", str(port)],
            cwd=REPO_ROOT,
            env=embedded_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        health = None
        deadline = time.monotonic() + 30
        while health is None and time.monotonic() < deadline:
            assert server.poll() is None, f"the server exited early:\n{log_path.read_text()}"
            try:
                health = httpx.get(f"{base_url}/health/liveliness", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None, f"no answer within 30 s:\n{log_path.read_text()}"
        assert health.status_code == 200
        assert health.json() == {"status": "healthy"}

        login = httpx.get(f"{base_url}/admin/login/", timeout=10)
        assert login.status_code == 200
        assert "LLM Gateway admin" in login.text

        stylesheet = httpx.get(f"{base_url}/static/admin/css/base.css", timeout=10)
        assert stylesheet.status_code == 200
        assert stylesheet.headers["content-type"].startswith("text/css")
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
