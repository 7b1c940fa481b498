"""GET /, /health/liveliness, /health/readiness and /ollama_logs."""

import logging
import uuid

import pytest
from django.conf import settings
from django.test import override_settings

from llm_gateway.apis.health import VERSION
from tests.llm_gateway.factories import key_make, user_make

MASTER_KEY = "sk-master-health-tests"
UNREACHABLE_REDIS = {
    "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


@pytest.fixture
def master_key():
    with override_settings(GATEWAY={**settings.GATEWAY, "MASTER_KEY": MASTER_KEY}):
        yield MASTER_KEY


@pytest.mark.parametrize("path", ["/", "/health/liveliness"])
async def test_it_reports_healthy(async_client, path):
    response = await async_client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "healthy"}


async def test_it_refuses_a_post(async_client):
    response = await async_client.post("/health/liveliness")

    assert response.status_code == 405


@pytest.mark.django_db
def test_readiness_reports_the_database_the_cache_and_the_version(client):
    response = client.get("/health/readiness")

    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "db": "connected",
        "cache": "connected",
        "version": VERSION,
    }
    assert VERSION == "0.1.0"


@pytest.mark.django_db
def test_readiness_is_503_when_the_cache_does_not_answer(client):
    with override_settings(CACHES=UNREACHABLE_REDIS):
        response = client.get("/health/readiness")

    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert response.json()["cache"] == "disconnected"
    assert response.json()["db"] == "connected"


def test_logs_need_credentials(client, master_key):
    response = client.get("/ollama_logs")

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.django_db
def test_logs_refuse_an_unknown_key(client, master_key):
    response = client.get("/ollama_logs", headers={"Authorization": "Bearer sk-not-a-key"})

    assert response.status_code == 401


@pytest.mark.django_db
def test_logs_refuse_a_virtual_key(client, master_key):
    _, secret = key_make()

    response = client.get("/ollama_logs", headers={"Authorization": f"Bearer {secret}"})

    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


@pytest.mark.django_db
def test_logs_refuse_a_staff_user_who_is_not_a_superuser(client):
    client.force_login(user_make(staff=True))

    response = client.get("/ollama_logs")

    assert response.status_code == 403


def test_logs_show_a_line_just_logged_to_the_master_key(client, master_key):
    marker = f"health-test-{uuid.uuid4().hex}"
    logging.getLogger("llm_gateway.tests").info("something happened: %s", marker)

    response = client.get("/ollama_logs", headers={"Authorization": f"Bearer {MASTER_KEY}"})

    assert response.status_code == 200
    assert any(
        line.endswith(f"INFO llm_gateway.tests: something happened: {marker}")
        for line in response.json()["lines"]
    )


@pytest.mark.django_db
def test_logs_are_shown_to_a_superuser_session(client):
    client.force_login(user_make(superuser=True))
    marker = f"health-test-{uuid.uuid4().hex}"
    logging.getLogger("django.request").warning(marker)

    response = client.get("/ollama_logs", {"lines": "1"})

    assert response.status_code == 200
    [line] = response.json()["lines"]
    assert line.endswith(f"WARNING django.request: {marker}")


@pytest.mark.parametrize("lines", ["0", "-3", "many", "100000"])
def test_logs_refuse_a_bad_line_count(client, master_key, lines):
    response = client.get("/ollama_logs", {"lines": lines}, headers={"Authorization": f"Bearer {MASTER_KEY}"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "lines"
