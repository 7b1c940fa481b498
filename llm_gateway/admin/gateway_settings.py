"""The gateway-wide settings row: LiteLLM's router_settings (strategies, retries, fallbacks, cooldowns,
cache) and general_settings, editable here as they are in the config file.

The router reads the row through the configuration snapshots, so a saved change reaches every
instance within ``GATEWAY_CONFIG_REFRESH_SECONDS``. An invalid setting is refused with the message
the config import would give.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from unfold.admin import ModelAdmin

from llm_gateway.admin.forms import JsonShapeForm
from llm_gateway.models import GatewaySettings
from llm_gateway.router.settings import RouterSettings, RouterSettingsError


class GatewaySettingsForm(JsonShapeForm):
    json_shapes = {"router_settings": dict, "general_settings": dict}

    class Meta:
        model = GatewaySettings
        fields = ["router_settings", "general_settings"]

    def clean_router_settings(self) -> dict:
        value = self.cleaned_data.get("router_settings") or {}
        try:
            RouterSettings.parse(value)
        except RouterSettingsError as error:
            raise forms.ValidationError(str(error)) from None
        return value


@admin.register(GatewaySettings)
class GatewaySettingsAdmin(ModelAdmin):
    form = GatewaySettingsForm
    list_display = ["__str__", "updated_at"]
    readonly_fields = ["config_model_ids", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One row (pk 1): created by the config import, or here when there is none yet.
        return super().has_add_permission(request) and not GatewaySettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: GatewaySettings | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: GatewaySettings, form, change: bool) -> None:
        obj.pk = 1
        super().save_model(request, obj, form, change)
