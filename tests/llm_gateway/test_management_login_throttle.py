"""Failed logins are limited per client address, on the management API and the admin's login form."""

import itertools
import logging

import pytest
from django.test import Client

from llm_gateway.login_throttle import login_failures_forget
from tests.llm_gateway.factories import PASSWORD, user_make
from tests.llm_gateway.management_factories import MASTER_KEY, assert_openai_error

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db

LIMIT = 3
_addresses = itertools.count(1)


@pytest.fixture
def throttle(settings, master_key):
    """Turn the limit on: LIMIT failures per address within 5 minutes."""
    settings.GATEWAY = {**settings.GATEWAY, "LOGIN_FAILURE_LIMIT": LIMIT, "LOGIN_FAILURE_WINDOW_SECONDS": 300}


@pytest.fixture
def address():
    """A client address of this test's own (the counts live in the shared cache)."""
    value = f"198.51.100.{next(_addresses)}"
    login_failures_forget(address=value)
    yield value
    login_failures_forget(address=value)


@pytest.fixture
def other_address(address):
    value = f"203.0.113.{next(_addresses)}"
    login_failures_forget(address=value)
    yield value
    login_failures_forget(address=value)


def api_get(address: str, key: str):
    return Client().get("/team/list", headers={"Authorization": f"Bearer {key}"}, REMOTE_ADDR=address)


def admin_login(client: Client, address: str, password: str):
    return client.post(
        "/admin/login/", {"username": "root", "password": password, "next": "/admin/"}, REMOTE_ADDR=address
    )


class TestManagementApi:
    def test_it_refuses_an_address_after_too_many_unknown_keys_even_with_the_master_key(
        self, throttle, address, other_address
    ):
        for attempt in range(LIMIT):
            assert_openai_error(api_get(address, f"sk-guess-{attempt}"), 401, "authentication_error")

        refused = api_get(address, MASTER_KEY)
        elsewhere = api_get(other_address, MASTER_KEY)

        assert "Too many failed logins" in assert_openai_error(refused, 429, "rate_limit_error")["message"]
        assert int(refused["Retry-After"]) == 300
        assert elsewhere.status_code == 200

    def test_a_success_does_not_reset_the_count(self, throttle, address):
        for attempt in range(LIMIT - 1):
            api_get(address, f"sk-guess-{attempt}")
        assert api_get(address, MASTER_KEY).status_code == 200
        api_get(address, "sk-guess-last")

        assert_openai_error(api_get(address, MASTER_KEY), 429, "rate_limit_error")

    def test_requests_without_a_key_are_no_failed_logins(self, throttle, address):
        for _ in range(LIMIT + 1):
            Client().get("/team/list", REMOTE_ADDR=address)

        assert api_get(address, MASTER_KEY).status_code == 200

    def test_a_cache_that_is_down_fails_open_with_a_warning(self, throttle, settings, address, caplog):
        settings.CACHES = {
            "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
        }

        with caplog.at_level(logging.WARNING, logger="llm_gateway.login_throttle"):
            statuses = [api_get(address, f"sk-guess-{attempt}").status_code for attempt in range(LIMIT + 1)]
            served = api_get(address, MASTER_KEY)

        assert statuses == [401] * (LIMIT + 1)
        assert served.status_code == 200
        assert "Login throttle off" in caplog.text


class TestAdminLogin:
    def test_it_refuses_an_address_after_too_many_wrong_passwords(self, throttle, address, other_address):
        user_make(username="root", superuser=True)
        client = Client()
        for _ in range(LIMIT):
            assert admin_login(client, address, "wrong password").status_code == 200

        refused = admin_login(client, address, PASSWORD)
        elsewhere = admin_login(Client(), other_address, PASSWORD)

        assert refused.status_code == 200
        assert "Too many failed logins from your address" in refused.content.decode()
        assert "_auth_user_id" not in client.session
        assert elsewhere.status_code == 302

    def test_wrong_passwords_under_the_limit_still_let_the_right_one_in(self, throttle, address):
        user_make(username="root", superuser=True)
        client = Client()
        for _ in range(LIMIT - 1):
            admin_login(client, address, "wrong password")

        response = admin_login(client, address, PASSWORD)

        assert response.status_code == 302
        assert "Too many failed logins" not in response.content.decode()
