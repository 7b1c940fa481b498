"""Management hardening against a live gateway, served by `manage.py serve` as in production.

Secrets in query strings and paths are redacted from the access log and from /ollama_logs; a team
admin cannot enlist users outside their teams; answers carrying a secret are never cached; a user's
first key calls no model unless given; failed logins are limited per client address (behind a proxy,
the address uvicorn reads from X-Forwarded-For). With DATABASE_URL/REDIS_URL set the gateway runs on
PostgreSQL and Redis (the failure counts then live in Redis).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_process import MASTER_KEY, REPO_ROOT, GatewayProcess, free_port

QUERY_SECRET = "sk-query-secret-0123456789abcdefghij"
PATH_SECRET = "sk-path-secret-0123456789abcdefghijk"
FAILURE_LIMIT = 3

SEED = """
import json
from llm_gateway.models import Membership, VirtualKey
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
from llm_gateway.services.teams import membership_add, team_create
from llm_gateway.services.users import user_create

deployment_create(model_name="demo", provider="mock", model="demo", extra_params={"mock_response": "hi"})
team_a = team_create(team_alias="team-a")
team_b = team_create(team_alias="team-b")
_, manager = virtual_key_create(team=team_a, key_type=VirtualKey.KeyType.MANAGEMENT)
b_member, _, _ = user_create(username="b-member", email="b@b.example")
membership_add(team=team_b, user=b_member)
user_create(username="root", email="root@gateway.example", is_admin=True)
print(json.dumps({"team_a": str(team_a.team_id), "manager": manager}))
"""


class ServedGateway:
    """`manage.py serve` on a migrated GatewayProcess's database, its stdout and stderr in files."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.port = free_port()
        self.stdout_path = gateway.var_dir / "serve.stdout"
        self.stderr_path = gateway.var_dir / "serve.stderr"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port), "--workers", "1"],
            cwd=REPO_ROOT,
            # Unbuffered: each access-log line is in the file as soon as it is written.
            env={**self.gateway.environment, "PYTHONUNBUFFERED": "1"},
            stdout=self.stdout_path.open("w"),
            stderr=self.stderr_path.open("w"),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.logs()
            try:
                if httpx.get(f"{self.url}/health/liveliness", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"the gateway did not answer within 30 s:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(Path(path).read_text() for path in (self.stdout_path, self.stderr_path))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    gateway = GatewayProcess.create(
        tmp_path_factory.mktemp("hardening"), {"GATEWAY_LOGIN_FAILURE_LIMIT": str(FAILURE_LIMIT)}
    )
    server = ServedGateway(gateway)
    server.start()
    yield server
    server.stop()
    gateway.destroy()


@pytest.fixture(scope="module")
def seeded(served) -> dict[str, str]:
    return json.loads(served.gateway.run_python(SEED))


@pytest.fixture(scope="module")
def client(served):
    with httpx.Client(base_url=served.url, timeout=30) as client:
        yield client


def master(**headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {MASTER_KEY}", **headers}


def test_key_query_values_and_path_secrets_are_redacted_in_every_log(served, client):
    client.get(f"/v1/models?key={QUERY_SECRET}")
    client.get(f"/v1/models?api_key={QUERY_SECRET}&x=1")
    client.post(f"/key/{PATH_SECRET}/regenerate", json={}, headers=master())

    lines = client.get("/ollama_logs", params={"lines": 2000}, headers=master()).json()["lines"]
    captured = served.logs()

    for where in ("\n".join(lines), captured):
        assert "GET /v1/models?key=[REDACTED]" in where, where
        assert "GET /v1/models?api_key=[REDACTED]&x=1" in where, where
        assert "POST /key/sk-[REDACTED]/regenerate" in where, where
        assert QUERY_SECRET not in where and PATH_SECRET not in where
        assert MASTER_KEY not in where


def test_a_team_admin_cannot_enlist_outsiders_whoever_they_are(client, seeded):
    manager = {"Authorization": f"Bearer {seeded['manager']}"}
    bodies = []
    outsiders = [{"user_id": name} for name in ("b-member", "root", "ghost")]
    outsiders.append({"user_email": "b@b.example"})
    for member in outsiders:
        response = client.post(
            "/team/member_add", json={"team_id": seeded["team_a"], "member": member}, headers=manager
        )
        assert response.status_code == 403, response.text
        bodies.append(response.json())

    assert all(body == bodies[0] for body in bodies), bodies
    assert "b@b.example" not in json.dumps(bodies[0])
    info = client.get("/team/info", params={"team_id": seeded["team_a"]}, headers=master()).json()
    assert info["team_memberships"] == []


def test_secrets_are_never_cached_and_a_new_users_key_calls_no_model(client, seeded):
    generated = client.post("/key/generate", json={}, headers=master())
    created = client.post("/user/new", json={"user_id": "newcomer"}, headers=master())
    chat = {"model": "demo", "messages": [{"role": "user", "content": "Hi"}]}

    refused = client.post(
        "/v1/chat/completions", json=chat, headers={"Authorization": f"Bearer {created.json()['key']}"}
    )

    for response in (generated, created):
        assert response.status_code == 200, response.text
        assert "no-store" in response.headers["Cache-Control"]
    assert 400 <= refused.status_code < 500, refused.text
    assert set(refused.json()) == {"error"}


def test_failed_logins_are_limited_per_client_address(client, seeded):
    attacker, bystander = {"X-Forwarded-For": "192.0.2.7"}, {"X-Forwarded-For": "192.0.2.8"}
    for attempt in range(FAILURE_LIMIT):
        guess = {"Authorization": f"Bearer sk-guess-{attempt}", **attacker}
        assert client.get("/team/list", headers=guess).status_code == 401

    refused = client.get("/team/list", headers=master(**attacker))
    served_elsewhere = client.get("/team/list", headers=master(**bystander))

    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert "Retry-After" in refused.headers
    assert served_elsewhere.status_code == 200
