"""The router settings are editable in the admin, checked as the config import checks them."""

import pytest
from django.urls import reverse

from llm_gateway.models import GatewaySettings
from llm_gateway.router.settings import RouterSettings

pytestmark = pytest.mark.django_db


def _form(router_settings: str) -> dict[str, str]:
    return {"router_settings": router_settings, "general_settings": "{}"}


def test_valid_router_settings_are_saved(admin_client):
    url = reverse("admin:llm_gateway_gatewaysettings_add")

    response = admin_client.post(url, _form('{"routing_strategy": "least-busy", "num_retries": 2}'))

    assert response.status_code == 302
    row = GatewaySettings.objects.get()
    assert (row.pk, row.router_settings["routing_strategy"]) == (1, "least-busy")
    settings = RouterSettings.parse(row.router_settings)
    assert (settings.routing_strategy, settings.num_retries) == ("least-busy", 2)


def test_invalid_router_settings_are_refused_with_the_reason(admin_client):
    GatewaySettings.objects.create(pk=1, router_settings={})
    url = reverse("admin:llm_gateway_gatewaysettings_change", args=[1])

    response = admin_client.post(url, _form('{"routing_strategy": "fastest-first"}'))

    assert response.status_code == 200
    assert b"routing_strategy must be one of" in response.content
    assert GatewaySettings.objects.get().router_settings == {}


def test_there_is_one_row_and_it_cannot_be_deleted(admin_client):
    GatewaySettings.objects.create(pk=1)

    assert admin_client.get(reverse("admin:llm_gateway_gatewaysettings_add")).status_code == 403
    assert admin_client.get(reverse("admin:llm_gateway_gatewaysettings_delete", args=[1])).status_code == 403
