"""Production settings behind a TLS-terminating proxy, read in a fresh interpreter as the server would."""

import json
import secrets

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "GATEWAY_TLS": "true",
    "DJANGO_ALLOWED_HOSTS": "gateway.example.com",
}

# Requests through Django's whole stack (middleware included), as the proxy would forward them.
REQUESTS = """
import json
import django
django.setup()
from django.test import Client

client = Client(SERVER_NAME="gateway.example.com")
plain = client.get("/admin/login/")
behind_tls = client.get("/admin/login/", headers={"X-Forwarded-Proto": "https"})
health = client.get("/health/liveliness")
cookies = behind_tls.cookies
print(json.dumps({
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location"),
    "tls_status": behind_tls.status_code,
    "hsts": behind_tls.get("Strict-Transport-Security"),
    "frame": behind_tls.get("X-Frame-Options"),
    "nosniff": behind_tls.get("X-Content-Type-Options"),
    "csrf_secure": bool(cookies["csrftoken"]["secure"]) if "csrftoken" in cookies else None,
    "health_status": health.status_code,
}))
"""

PRINT_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({name: getattr(settings, name, None) for name in [
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_HTTPONLY", "X_FRAME_OPTIONS",
    "SECURE_CONTENT_TYPE_NOSNIFF", "SESSION_COOKIE_AGE",
]}))
"""


def production(**overrides: str) -> dict[str, str]:
    return {**PRODUCTION, "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), **overrides}


def settings_read(run_python, env: dict[str, str]) -> dict:
    result = run_python("-c", PRINT_SETTINGS, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_is_quiet_with_the_production_settings(run_python):
    result = run_python("manage.py", "check", "--deploy", "--fail-level", "WARNING", env=production())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_check_deploy_warns_without_them(run_python):
    result = run_python(
        "manage.py", "check", "--deploy", "--fail-level", "WARNING", env=production(GATEWAY_TLS="false")
    )

    assert result.returncode != 0
    for check_id in ("security.W004", "security.W012", "security.W016"):
        assert check_id in result.stdout + result.stderr


def test_behind_tls_cookies_are_secure_and_hsts_is_on(run_python):
    settings = settings_read(run_python, production(DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="true"))

    assert settings["SESSION_COOKIE_SECURE"] is settings["CSRF_COOKIE_SECURE"] is True
    assert settings["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert settings["SECURE_HSTS_SECONDS"] == 31_536_000
    assert settings["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert settings["SECURE_SSL_REDIRECT"] is True


def test_debug_or_no_tls_keeps_cookies_usable_over_http(run_python):
    for env in (production(GATEWAY_TLS="false"), production(DJANGO_DEBUG="1")):
        settings = settings_read(run_python, env)

        assert settings["SESSION_COOKIE_SECURE"] is False
        assert settings["SECURE_HSTS_SECONDS"] == 0
        assert settings["SECURE_PROXY_SSL_HEADER"] is None


def test_the_browser_protections_are_always_on(run_python):
    settings = settings_read(run_python, {})

    assert settings["SESSION_COOKIE_HTTPONLY"] is True
    assert settings["X_FRAME_OPTIONS"] == "DENY"
    assert settings["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert 0 < settings["SESSION_COOKIE_AGE"] <= 24 * 3600


def test_a_request_behind_the_proxy_gets_the_headers_and_plain_http_is_redirected(run_python):
    result = run_python("-c", REQUESTS, env=production())
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])

    assert answers["plain_status"] == 301
    assert answers["plain_location"] == "https://gateway.example.com/admin/login/"
    assert answers["tls_status"] == 200
    assert answers["hsts"] == "max-age=31536000"
    assert (answers["frame"], answers["nosniff"]) == ("DENY", "nosniff")
    assert answers["csrf_secure"] is True
    # A load balancer's health check over plain HTTP is answered, not redirected.
    assert answers["health_status"] == 200
