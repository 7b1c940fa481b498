"""Deployments and their health. The provider credential is write-only: the form never renders it back.

The change page shows the latest health check and the last HEALTH_HISTORY_ROWS of them; the
"Run health check now" action probes the selected deployments at once, enabled or not, instead of
waiting for the periodic task.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import BooleanRadioFilter, ChoicesDropdownFilter
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminPasswordWidget, UnfoldBooleanSwitchWidget

from llm_gateway.admin.forms import LIMIT_LABELS, JsonShapeForm
from llm_gateway.env_references import env_reference_refusal, env_references_refused
from llm_gateway.models import Deployment, DeploymentHealthCheck
from llm_gateway.selectors import deployment_health_history
from llm_gateway.services.deployments import DEPLOYMENT_FIELDS, deployment_create, deployment_update
from llm_gateway.services.health_checks import deployments_health_check
from providers.credentials import ENV_REFERENCE_PREFIX

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HEALTH_HISTORY_ROWS = 20


class DeploymentForm(JsonShapeForm):
    json_shapes = {"extra_params": dict, "model_info": dict}

    api_key = forms.CharField(
        label="API key",
        required=False,
        # render_value=False: a stored or just-typed key never travels back in the HTML.
        widget=UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=(
            "Leave blank to keep the current key; os.environ/NAME to read it from the environment "
            "variable NAME (a provider's own variable, or one starting with LLM_ unless "
            "GATEWAY_ENV_REFERENCE_PREFIXES says otherwise). Stored encrypted, never shown again."
        ),
    )
    api_key_remove = forms.BooleanField(
        label="Remove the stored credential",
        required=False,
        widget=UnfoldBooleanSwitchWidget,
        help_text="For a provider that needs no key (a local server, for example).",
    )

    class Meta:
        model = Deployment
        fields = sorted(DEPLOYMENT_FIELDS)
        labels = {
            **LIMIT_LABELS,
            "api_base": "API base",
            "api_version": "API version",
            "model_id": "Model ID",
        }

    def clean_api_key(self) -> str:
        api_key = self.cleaned_data["api_key"]
        if api_key.startswith(ENV_REFERENCE_PREFIX):
            name = api_key[len(ENV_REFERENCE_PREFIX) :]
            if not _VARIABLE_NAME.fullmatch(name):
                raise forms.ValidationError(
                    f"{name!r} is not an environment variable name: use os.environ/NAME, e.g. "
                    "os.environ/OPENAI_API_KEY."
                )
        return self._references_clean(api_key)

    def clean_api_base(self) -> str:
        return self._references_clean(self.cleaned_data["api_base"])

    def clean_api_version(self) -> str:
        return self._references_clean(self.cleaned_data["api_version"])

    def clean_extra_params(self) -> Any:
        return self._references_clean(self.cleaned_data["extra_params"])

    def _references_clean(self, value: Any) -> Any:
        """Refuse a value referencing an environment variable a deployment may not read."""
        refused = env_references_refused(value)
        if refused:
            raise forms.ValidationError(env_reference_refusal(refused))
        return value

    def api_key_to_save(self) -> str | None:
        """Return the credential for the service: None keeps the stored one, "" removes it."""
        if self.cleaned_data.get("api_key"):
            return self.cleaned_data["api_key"]
        return "" if self.cleaned_data.get("api_key_remove") else None


class HealthCheckInline(TabularInline):
    """The deployment's latest health checks, newest first; read-only, the health check writes them."""

    model = DeploymentHealthCheck
    fields = ["checked_at", "healthy", "latency_ms", "http_status", "error_type", "error"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = f"Latest {HEALTH_HISTORY_ROWS} health checks"

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeploymentHealthCheck]:
        object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if object_id is None or not self.has_view_permission(request):
            return DeploymentHealthCheck.objects.none()
        return deployment_health_history(deployment_id=unquote(object_id), limit=HEALTH_HISTORY_ROWS)

    def has_add_permission(self, request: HttpRequest, obj: Deployment | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Deployment | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Deployment | None = None) -> bool:
        return False


@admin.register(Deployment)
class DeploymentAdmin(ModelAdmin):
    form = DeploymentForm
    inlines = [HealthCheckInline]
    list_display = [
        "model_name",
        "provider",
        "model",
        "mode",
        "base_url",
        "enabled",
        "health",
        "latency",
        "order",
        "weight",
        "rpm_capacity",
        "tpm_capacity",
    ]
    list_filter = [
        ("provider", ChoicesDropdownFilter),
        ("mode", ChoicesDropdownFilter),
        ("enabled", BooleanRadioFilter),
        ("health_status", ChoicesDropdownFilter),
    ]
    list_filter_submit = True
    search_fields = ["model_name", "model", "model_id", "api_base"]
    actions = ["enable", "disable", "health_check"]
    readonly_fields = [
        "credential_status",
        "health_status",
        "last_checked",
        "latency",
        "last_error",
        "created_at",
        "updated_at",
    ]
    fieldsets = (
        (None, {"fields": ["model_name", "provider", "model", "mode", "enabled"]}),
        (
            "Connection",
            {
                "fields": [
                    "api_base",
                    "api_version",
                    "credential_status",
                    "api_key",
                    "api_key_remove",
                    "timeout",
                ]
            },
        ),
        ("Routing", {"fields": ["order", "weight", "rpm", "tpm"]}),
        ("Health", {"fields": ["health_status", "last_checked", "latency", "last_error"]}),
        ("Advanced", {"fields": ["model_id", "extra_params", "model_info"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    )
    add_fieldsets = (
        (None, {"fields": ["model_name", "provider", "model", "mode", "enabled"]}),
        ("Connection", {"fields": ["api_base", "api_version", "api_key", "timeout"]}),
        ("Routing", {"fields": ["order", "weight", "rpm", "tpm"]}),
        ("Advanced", {"fields": ["model_id", "extra_params", "model_info"]}),
    )

    def get_inlines(self, request: HttpRequest, obj: Deployment | None) -> list:
        return self.inlines if obj is not None else []  # a deployment being added has no history

    def save_model(self, request: HttpRequest, obj: Deployment, form: DeploymentForm, change: bool) -> None:
        fields = {name: value for name, value in form.cleaned_data.items() if name in DEPLOYMENT_FIELDS}
        if change:
            deployment_update(deployment=obj, api_key=form.api_key_to_save(), **fields)
            return
        created = deployment_create(api_key=form.api_key_to_save(), **fields)
        # The admin goes on with `obj` (history entry, redirect): make it the row just created.
        obj.pk = created.pk
        obj.refresh_from_db()

    @display(description="API base", ordering="api_base")
    def base_url(self, deployment: Deployment) -> str | None:
        return deployment.api_base or None

    @display(description="RPM", ordering="rpm")
    def rpm_capacity(self, deployment: Deployment) -> int | None:
        return deployment.rpm

    @display(description="TPM", ordering="tpm")
    def tpm_capacity(self, deployment: Deployment) -> int | None:
        return deployment.tpm

    @display(description="Credential")
    def credential_status(self, deployment: Deployment) -> str:
        if deployment.credential_env:
            return f"from ${deployment.credential_env}"
        if deployment.credential:
            return "encrypted key set"
        return "none"

    @display(
        description="Health",
        ordering="health_status",
        label={
            Deployment.Health.HEALTHY: "success",
            Deployment.Health.UNHEALTHY: "danger",
            Deployment.Health.UNKNOWN: None,  # unfold's grey label
        },
    )
    def health(self, deployment: Deployment) -> tuple[str, str]:
        return deployment.health_status, deployment.get_health_status_display()

    @display(description="Latency", ordering="health_latency_ms")
    def latency(self, deployment: Deployment) -> str | None:
        return None if deployment.health_latency_ms is None else f"{deployment.health_latency_ms} ms"

    @display(description="Last checked")
    def last_checked(self, deployment: Deployment) -> datetime | None:
        return deployment.health_checked_at

    @display(description="Last error")
    def last_error(self, deployment: Deployment) -> str | None:
        return deployment.health_error or None

    @action(description="Enable selected deployments", permissions=["change"], icon="play_arrow")
    def enable(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        self._enabled_set(request, queryset, enabled=True)

    @action(description="Disable selected deployments", permissions=["change"], icon="pause")
    def disable(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        self._enabled_set(request, queryset, enabled=False)

    @action(description="Run health check now", permissions=["change"], icon="monitor_heart")
    def health_check(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        model_ids = list(queryset.values_list("model_id", flat=True))
        counts = async_to_sync(deployments_health_check)(model_ids=model_ids)
        level = messages.SUCCESS if not counts["unhealthy"] else messages.WARNING
        self.message_user(
            request,
            f"Checked {counts['checked']} deployment(s): {counts['healthy']} healthy, "
            f"{counts['unhealthy']} unhealthy.",
            level,
        )

    def _enabled_set(self, request: HttpRequest, queryset: QuerySet[Deployment], *, enabled: bool) -> None:
        for deployment in queryset:
            deployment_update(deployment=deployment, enabled=enabled)
        messages.success(request, f"{'Enabled' if enabled else 'Disabled'} {len(queryset)} deployment(s).")
