"""Deployment health checks: the probes, what they record, GET /health, the admin, the Celery task.

Probes go over real loopback HTTP to the fake upstream (tests/fakes/upstream.py), which records each
request and answers with scripted faults: a 500, a 401 echoing the key, a reply slower than the
probe may wait.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from llm_gateway.lookups import GENERATION_CACHE_KEY
from llm_gateway.models import Deployment, DeploymentHealthCheck
from llm_gateway.services.health_checks import MAX_ERROR_CHARS, deployments_health_check
from llm_gateway.tasks import deployments_health_check_task
from tests.celery_workers import worker_process
from tests.fakes.openai_responses import chat_completion, openai_error
from tests.fakes.upstream import Reply
from tests.llm_gateway.factories import deployment_make, key_make, user_make

pytestmark = pytest.mark.django_db

MASTER_KEY = "sk-master-health-check-tests"
API_KEY = "sk-proj-health0check0secret0key0A1B2"
SLOW = 3.0  # seconds the fake takes to answer a probe that must time out first


@pytest.fixture
def run_checks(django_capture_on_commit_callbacks):
    """Return a runner of the health check that also runs what it defers to the commit."""

    def run(**arguments: Any) -> dict[str, int]:
        with django_capture_on_commit_callbacks(execute=True):
            return async_to_sync(deployments_health_check)(**arguments)

    return run


@pytest.fixture
def master_key():
    with override_settings(GATEWAY={**settings.GATEWAY, "MASTER_KEY": MASTER_KEY}):
        yield MASTER_KEY


def gateway_settings(**knobs: Any):
    return override_settings(GATEWAY={**settings.GATEWAY, **knobs})


def upstream_deployment(upstream, **fields: Any) -> Deployment:
    fields.setdefault("model_name", "gpt-4o")
    return deployment_make(api_base=upstream.url, api_key=API_KEY, **fields)


def only_check(deployment: Deployment) -> DeploymentHealthCheck:
    [check] = DeploymentHealthCheck.objects.filter(deployment=deployment)
    return check


class TestProbes:
    def test_a_chat_deployment_gets_a_one_token_chat(self, upstream, run_checks):
        upstream_deployment(upstream)

        counts = run_checks()

        [request] = upstream.requests
        assert (request.method, request.path) == ("POST", "/chat/completions")
        assert request.json == {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "ping"}],
            "max_tokens": 1,
        }
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        assert counts == {"checked": 1, "healthy": 1, "unhealthy": 0, "changed": 1, "pruned": 0}

    @pytest.mark.parametrize(
        ("mode", "method", "path", "body"),
        [
            ("completion", "POST", "/completions", {"model": "gpt-4o", "prompt": "ping", "max_tokens": 1}),
            ("embedding", "POST", "/embeddings", {"model": "gpt-4o", "input": "ping"}),
            ("image_generation", "GET", "/models", None),
        ],
    )
    def test_each_mode_gets_its_cheapest_call(self, upstream, run_checks, mode, method, path, body):
        deployment = upstream_deployment(upstream, mode=mode)

        run_checks()

        [request] = upstream.requests
        assert (request.method, request.path, request.json) == (method, path, body)
        assert only_check(deployment).healthy

    def test_the_deployment_s_default_params_go_with_the_probe(self, upstream, run_checks):
        upstream_deployment(upstream, extra_params={"temperature": 0, "drop_params": True})

        run_checks()

        assert upstream.last.json["temperature"] == 0
        assert "drop_params" not in upstream.last.json

    def test_a_mock_deployment_is_probed_without_a_network(self, upstream, run_checks):
        deployment = deployment_make(model_name="demo", provider="mock", model="demo")
        images = deployment_make(
            model_name="demo-images", provider="mock", model="demo", mode="image_generation"
        )

        counts = run_checks()

        assert upstream.requests == []
        assert counts["healthy"] == 2
        assert only_check(deployment).healthy and only_check(images).healthy

    def test_a_mock_deployment_told_to_time_out_is_unhealthy(self, run_checks):
        deployment = deployment_make(
            model_name="demo", provider="mock", model="demo", timeout=0.1, extra_params={"mock_timeout": True}
        )

        run_checks()

        check = only_check(deployment)
        assert (check.healthy, check.error_type) == (False, "timeout")

    def test_disabled_deployments_are_left_alone(self, upstream, run_checks):
        disabled = upstream_deployment(upstream, enabled=False)

        counts = run_checks()

        assert counts["checked"] == 0
        assert upstream.requests == []
        disabled.refresh_from_db()
        assert disabled.health_status == Deployment.Health.UNKNOWN
        assert not disabled.health_checks.exists()

    def test_every_deployment_is_probed_within_the_concurrency_bound(self, upstream, run_checks):
        deployments = [upstream_deployment(upstream, model_name=f"group-{n}") for n in range(5)]

        with gateway_settings(HEALTH_CHECK_CONCURRENCY=2):
            counts = run_checks()

        assert counts["checked"] == counts["healthy"] == 5
        assert len(upstream.requests) == 5
        assert all(only_check(deployment).healthy for deployment in deployments)


class TestResults:
    def test_a_healthy_probe_is_recorded_and_copied_onto_the_deployment(self, upstream, run_checks):
        deployment = upstream_deployment(upstream)
        before = timezone.now()

        run_checks()

        check = only_check(deployment)
        assert (check.healthy, check.error_type, check.error, check.http_status) == (True, "", "", None)
        assert check.checked_at >= before
        assert check.latency_ms >= 0
        deployment.refresh_from_db()
        assert deployment.health_status == Deployment.Health.HEALTHY
        assert deployment.health_checked_at == check.checked_at
        assert deployment.health_latency_ms == check.latency_ms
        assert deployment.health_error == ""

    def test_a_500_makes_the_deployment_unhealthy(self, upstream, run_checks):
        deployment = upstream_deployment(upstream)
        upstream.enqueue(
            openai_error(500, "The server had an error processing your request.", "server_error")
        )

        counts = run_checks()

        check = only_check(deployment)
        assert (check.healthy, check.http_status, check.error_type) == (False, 500, "api_error")
        assert check.error == "openai/gpt-4o: The server had an error processing your request."
        deployment.refresh_from_db()
        assert deployment.health_status == Deployment.Health.UNHEALTHY
        assert deployment.health_error == check.error
        assert (counts["healthy"], counts["unhealthy"]) == (0, 1)

    def test_a_refused_key_is_recorded_with_the_key_masked(self, upstream, run_checks):
        deployment = upstream_deployment(upstream)
        upstream.enqueue(
            openai_error(
                401, f"Incorrect API key provided: {API_KEY}.", "invalid_request_error", "invalid_api_key"
            )
        )

        run_checks()

        check = only_check(deployment)
        assert (check.healthy, check.http_status, check.error_type) == (False, 401, "authentication_error")
        assert API_KEY not in check.error
        assert check.error == "openai/gpt-4o: Incorrect API key provided: sk-...A1B2."
        deployment.refresh_from_db()
        assert API_KEY not in deployment.health_error

    def test_a_secret_in_an_extra_header_is_masked_too(self, upstream, run_checks):
        header_secret = "tenant-secret-0123456789"
        deployment = upstream_deployment(
            upstream, extra_params={"extra_headers": {"X-Tenant": header_secret}}
        )
        upstream.enqueue(
            openai_error(403, f"Tenant {header_secret} may not use this model.", "permission_error")
        )

        run_checks()

        check = only_check(deployment)
        assert header_secret not in check.error
        assert check.http_status == 403

    @pytest.mark.parametrize(
        ("setting", "deployment_timeout"),
        [(0.3, None), (30.0, 0.3)],
        ids=["the setting's timeout", "a shorter deployment timeout"],
    )
    def test_a_probe_slower_than_its_timeout_is_unhealthy(
        self, upstream, run_checks, setting, deployment_timeout
    ):
        deployment = upstream_deployment(upstream, timeout=deployment_timeout)
        upstream.enqueue(Reply(json=chat_completion("gpt-4o"), delay=SLOW))

        with gateway_settings(HEALTH_CHECK_TIMEOUT_SECONDS=setting):
            run_checks()

        check = only_check(deployment)
        assert (check.healthy, check.error_type, check.http_status) == (False, "timeout", None)
        assert check.error.startswith("openai/gpt-4o: Request timed out after 0.3s")

    def test_a_long_error_is_cut_short(self, upstream, run_checks):
        deployment = upstream_deployment(upstream)
        upstream.enqueue(openai_error(500, "x" * 5000, "server_error"))

        run_checks()

        assert len(only_check(deployment).error) == MAX_ERROR_CHARS

    def test_an_unreadable_credential_is_an_unhealthy_deployment_not_a_failed_run(self, upstream, run_checks):
        broken = upstream_deployment(upstream)
        Deployment.objects.filter(pk=broken.pk).update(credential="not-a-fernet-token")
        working = upstream_deployment(upstream, model_name="other")

        counts = run_checks()

        assert (counts["healthy"], counts["unhealthy"]) == (1, 1)
        assert only_check(broken).error_type == "credential_error"
        assert only_check(working).healthy

    def test_history_past_the_retention_is_pruned(self, upstream, run_checks):
        deployment = upstream_deployment(upstream)
        expired, kept = (
            DeploymentHealthCheck.objects.create(
                deployment=deployment,
                checked_at=timezone.now() - timedelta(days=days),
                healthy=True,
                latency_ms=5,
            )
            for days in (8, 6)
        )

        with gateway_settings(HEALTH_CHECK_RETENTION_DAYS=7):
            counts = run_checks()

        assert counts["pruned"] == 1
        remaining = set(deployment.health_checks.values_list("pk", flat=True))
        assert expired.pk not in remaining
        assert kept.pk in remaining
        assert len(remaining) == 2  # the one kept and the one just made


class TestInvalidation:
    def generation(self) -> str | None:
        return cache.get(GENERATION_CACHE_KEY)

    def test_only_a_status_change_tells_the_instances_to_reload(self, upstream, run_checks):
        deployment = upstream_deployment(upstream)
        first = self.generation()

        assert run_checks()["changed"] == 1  # unknown -> healthy
        second = self.generation()
        assert run_checks()["changed"] == 0  # healthy again
        third = self.generation()
        upstream.enqueue(openai_error(503, "Overloaded.", "server_error"))
        assert run_checks()["changed"] == 1  # healthy -> unhealthy
        fourth = self.generation()

        assert second != first
        assert third == second
        assert fourth != third
        assert deployment.health_checks.count() == 3


class TestHealthEndpoint:
    def seed(self) -> dict[str, Deployment]:
        checked_at = timezone.now()
        healthy = deployment_make(model_name="gpt-4o", api_base="https://eu.example/v1")
        unhealthy = deployment_make(model_name="gpt-4o", model="gpt-4o-2024-08-06")
        unchecked = deployment_make(model_name="embed", model="text-embedding-3-small", mode="embedding")
        disabled = deployment_make(model_name="gpt-4o", enabled=False)
        Deployment.objects.filter(pk=healthy.pk).update(
            health_status=Deployment.Health.HEALTHY, health_checked_at=checked_at, health_latency_ms=42
        )
        Deployment.objects.filter(pk__in=[unhealthy.pk, disabled.pk]).update(
            health_status=Deployment.Health.UNHEALTHY,
            health_checked_at=checked_at,
            health_latency_ms=7,
            health_error="openai/gpt-4o-2024-08-06: Incorrect API key provided: sk-...A1B2.",
        )
        rows = {"healthy": healthy, "unhealthy": unhealthy, "unchecked": unchecked}
        for row in rows.values():
            row.refresh_from_db()
        return rows

    def test_it_lists_the_latest_results_by_status(self, client, master_key):
        rows = self.seed()

        response = client.get("/health", headers={"Authorization": f"Bearer {MASTER_KEY}"})

        assert response.status_code == 200
        healthy, unhealthy = rows["healthy"], rows["unhealthy"]
        assert response.json() == {
            "healthy_endpoints": [
                {
                    "model": "gpt-4o",
                    "model_id": healthy.model_id,
                    "provider": "openai",
                    "api_base": "https://eu.example/v1",
                    "latency_ms": 42,
                    "checked_at": healthy.health_checked_at.isoformat(),
                    "error": None,
                }
            ],
            "unhealthy_endpoints": [
                {
                    "model": "gpt-4o",
                    "model_id": unhealthy.model_id,
                    "provider": "openai",
                    "api_base": "https://api.openai.com/v1",
                    "latency_ms": 7,
                    "checked_at": unhealthy.health_checked_at.isoformat(),
                    "error": "openai/gpt-4o-2024-08-06: Incorrect API key provided: sk-...A1B2.",
                }
            ],
            "healthy_count": 1,
            "unhealthy_count": 1,
            "unchecked_count": 1,
        }

    def test_it_shows_one_model_group(self, client, master_key):
        self.seed()

        response = client.get(
            "/health", {"model": "embed"}, headers={"Authorization": f"Bearer {MASTER_KEY}"}
        )

        body = response.json()
        assert (body["healthy_count"], body["unhealthy_count"], body["unchecked_count"]) == (0, 0, 1)

    def test_an_unknown_model_group_is_404(self, client, master_key):
        response = client.get("/health", {"model": "nope"}, headers={"Authorization": f"Bearer {MASTER_KEY}"})

        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found_error"
        assert response.json()["error"]["param"] == "model"

    def test_a_superuser_session_may_read_it(self, client):
        client.force_login(user_make(superuser=True))

        assert client.get("/health").status_code == 200

    def test_it_needs_credentials(self, client, master_key):
        response = client.get("/health")

        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"

    def test_it_refuses_a_virtual_key(self, client, master_key):
        _, secret = key_make()

        response = client.get("/health", headers={"Authorization": f"Bearer {secret}"})

        assert response.status_code == 403
        assert response.json()["error"] == {
            "message": "Only the master key or an admin may read the deployments' health.",
            "type": "permission_error",
            "param": None,
            "code": "forbidden",
        }

    def test_it_refuses_a_staff_user_who_is_not_a_superuser(self, client):
        client.force_login(user_make(staff=True))

        assert client.get("/health").status_code == 403

    @pytest.mark.parametrize("path", ["/", "/health/liveliness", "/health/readiness"])
    def test_the_probes_beside_it_still_answer_without_credentials(self, client, path):
        assert client.get(path).status_code == 200


class TestAdmin:
    def change_url(self, deployment: Deployment) -> str:
        return reverse("admin:llm_gateway_deployment_change", args=[deployment.pk])

    def test_the_change_page_shows_the_latest_result_and_twenty_checks(self, admin_client):
        deployment = deployment_make()
        now = timezone.now()
        for n in range(25):
            DeploymentHealthCheck.objects.create(
                deployment=deployment,
                checked_at=now - timedelta(minutes=25 - n),
                healthy=False,
                latency_ms=100 + n,
                error_type="api_error",
                error=f"failure number {n:02d}",
                http_status=500,
            )
        Deployment.objects.filter(pk=deployment.pk).update(
            health_status=Deployment.Health.UNHEALTHY, health_latency_ms=124, health_error="failure number 24"
        )

        html = admin_client.get(self.change_url(deployment)).content.decode()

        assert "Latest 20 health checks" in html
        shown = {n for n in range(25) if f"failure number {n:02d}" in html}
        assert shown == set(range(5, 25))
        assert "124 ms" in html

    def test_the_list_shows_each_deployment_s_latency(self, admin_client):
        deployment = deployment_make()
        Deployment.objects.filter(pk=deployment.pk).update(
            health_status=Deployment.Health.HEALTHY, health_latency_ms=321
        )

        html = admin_client.get(reverse("admin:llm_gateway_deployment_changelist")).content.decode()

        assert "321 ms" in html

    def test_the_add_page_has_no_history(self, admin_client):
        html = admin_client.get(reverse("admin:llm_gateway_deployment_add")).content.decode()

        assert "Latest 20 health checks" not in html
        assert "Add deployment" in html

    def test_run_health_check_now_probes_the_selected_deployments(self, admin_client, upstream):
        selected = upstream_deployment(upstream, enabled=False)
        other = upstream_deployment(upstream, model_name="other")

        response = admin_client.post(
            reverse("admin:llm_gateway_deployment_changelist"),
            {"action": "health_check", "_selected_action": [str(selected.pk)]},
            follow=True,
        )

        assert "Checked 1 deployment(s): 1 healthy, 0 unhealthy." in response.content.decode()
        assert len(upstream.requests) == 1
        selected.refresh_from_db()
        assert selected.health_status == Deployment.Health.HEALTHY
        assert not other.health_checks.exists()


class TestCeleryTask:
    def test_the_task_runs_the_check_and_returns_its_counts(
        self, upstream, django_capture_on_commit_callbacks
    ):
        deployment = upstream_deployment(upstream)

        with django_capture_on_commit_callbacks(execute=True):
            counts = deployments_health_check_task.apply().get()

        assert counts == {"checked": 1, "healthy": 1, "unhealthy": 0, "changed": 1, "pruned": 0}
        assert only_check(deployment).healthy

    def test_a_worker_runs_the_task(self, upstream, worker_database, tmp_path):
        """A real `celery worker` on the embedded broker probes the fake upstream and records it."""
        queue = f"health-test-{uuid.uuid4().hex[:10]}"  # this test's own: no other worker takes its task
        worker_database.python(
            "from tests.llm_gateway.factories import deployment_make\n"
            f"deployment_make(model_name='gpt-4o', api_base={upstream.url!r}, api_key={API_KEY!r})\n"
        )
        enqueue = (
            "from llm_gateway.tasks import deployments_health_check_task\n"
            f"deployments_health_check_task.apply_async(queue={queue!r})\n"
        )
        checks = (
            "import json\n"
            "from llm_gateway.models import DeploymentHealthCheck\n"
            "rows = DeploymentHealthCheck.objects.values_list('healthy', 'deployment__health_status')\n"
            "print(json.dumps([list(row) for row in rows]))\n"
        )

        with worker_process(worker_database, {}, queue, tmp_path / "worker.log"):
            worker_database.python(enqueue)
            deadline = time.monotonic() + 120
            while not (recorded := json.loads(worker_database.python(checks))):
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                time.sleep(0.5)

        assert recorded == [[True, "healthy"]]
        [request] = upstream.requests
        assert request.json["max_tokens"] == 1
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
