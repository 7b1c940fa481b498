"""Django's own error answers on the full stack (management API, admin, plain views) are JSON.

A bug in any view is a JSON 500 in OpenAI's shape with a request id, in a header and the body, and
the exception is logged under that id; an unknown path is a JSON 404; a Host outside ALLOWED_HOSTS a
JSON 400. The inference paths' own handler is covered in tests/llm_gateway/test_asgi_handlers.py.
"""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import path
from rest_framework.views import APIView

from gateway_project import urls as gateway_urls


def plain_broken(request):
    raise RuntimeError("a bug in a plain view")


class BrokenAPIView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise RuntimeError("a bug in a DRF view")


urlpatterns = [
    path("broken/plain", plain_broken),
    path("broken/api", BrokenAPIView.as_view()),
    *gateway_urls.urlpatterns,
]
# The root URLconf's error views, as the gateway serves them.
handler400 = gateway_urls.handler400
handler403 = gateway_urls.handler403
handler404 = gateway_urls.handler404
handler500 = gateway_urls.handler500


def assert_internal_error(response, caplog, bug: str) -> None:
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert (error["message"], error["type"]) == ("Internal server error", "internal_server_error")
    assert response["x-request-id"] == error["request_id"]
    assert bug not in response.content.decode() and "Traceback" not in response.content.decode()
    logged = [record for record in caplog.records if error["request_id"] in record.getMessage()]
    assert len(logged) == 1
    assert bug in str(logged[0].exc_info[1])


@pytest.mark.parametrize(
    ("route", "bug"), [("/broken/plain", "a bug in a plain view"), ("/broken/api", "a bug in a DRF view")]
)
@override_settings(ROOT_URLCONF=__name__)
def test_a_bug_in_a_view_is_a_json_500_with_a_request_id_the_log_names(route, bug, caplog):
    client = Client(raise_request_exception=False)

    with caplog.at_level(logging.ERROR):
        response = client.get(route)

    assert_internal_error(response, caplog, bug)


@pytest.mark.django_db
def test_a_bug_in_an_admin_page_is_a_json_500(caplog):
    admin = get_user_model().objects.create_superuser("boss", "", "pw-for-tests")
    client = Client(raise_request_exception=False)
    client.force_login(admin)

    # An admin page whose template cannot be found: a real bug of the kind a page can have.
    templates = [{"BACKEND": "django.template.backends.django.DjangoTemplates"}]
    with override_settings(ROOT_URLCONF=__name__, TEMPLATES=templates), caplog.at_level(logging.ERROR):
        response = client.get("/admin/")

    assert_internal_error(response, caplog, "admin/index.html")


@pytest.mark.parametrize("route", ["/nowhere", "/admin-nowhere", "/team/nowhere/at/all"])
def test_an_unknown_path_is_a_json_404(client, route):
    response = client.get(route)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["type"] == "not_found_error"


@override_settings(ALLOWED_HOSTS=["gateway.example"])
def test_a_host_outside_allowed_hosts_is_a_json_400_on_the_full_stack(client):
    response = client.get("/health/liveliness", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["type"] == "invalid_request_error"
