"""Billing's admin: prices (editable), the ledger, spend rollups and sent budget alerts (read-only).

Operators edit prices; an edited or added price is an admin's (``source="admin"``), which
``manage.py seed_prices`` never overwrites and which wins over the bundled row of the same model. A
per-deployment price is an ordinary price with its deployment's id set.

Team admins (see ``llm_gateway.admin.team_scope``) see their teams' ledger rows and rollups, nothing
else here. The ledger is big: its list never counts more than ``CappedCountPaginator.cap`` rows, its
filters offer values from small tables (teams, deployments, the provider registry) rather than a
``SELECT DISTINCT`` over the ledger, and its search is an exact request id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import (
    BooleanRadioFilter,
    ChoicesDropdownFilter,
    DropdownFilter,
    RadioFilter,
)
from unfold.contrib.filters.forms import HorizontalRadioForm
from unfold.decorators import display
from unfold.widgets import UnfoldAdminSelectWidget

from billing.costs import CACHE_READ, CACHE_WRITE, INPUT, OUTPUT, PER_IMAGE, REASONING
from billing.models import BudgetAlert, LedgerEntry, Price, SpendRollup
from billing.pricing import BUNDLED, PRICE_COLUMNS
from llm_gateway.admin.display import usd
from llm_gateway.admin.team_scope import TeamScopedAdmin, administered_team_ids, has_model_permission
from llm_gateway.models import Deployment, Team
from providers.registry import PROVIDERS

ADMIN_SOURCE = "admin"
_MILLION = Decimal(1_000_000)
_PER_TOKEN_HELP = "USD per token: $2.50 per 1M tokens is 0.0000025. Empty: "


def per_million(price: Decimal | None) -> str:
    """Return a per-token price as dollars per million tokens ($0.15), or a dash."""
    return "-" if price is None else usd(price * _MILLION)


class PriceForm(forms.ModelForm):
    mode = forms.ChoiceField(choices=Deployment.Mode.choices, widget=UnfoldAdminSelectWidget)

    class Meta:
        model = Price
        fields = [
            "model",
            "provider",
            "deployment_id",
            "mode",
            *PRICE_COLUMNS,
            "effective_from",
            "effective_to",
        ]
        labels = {
            "deployment_id": "Deployment ID",
            INPUT: "Input",
            OUTPUT: "Output",
            CACHE_READ: "Cache read",
            CACHE_WRITE: "Cache write",
            REASONING: "Reasoning",
            PER_IMAGE: "Per image",
        }
        help_texts = {
            "provider": "As the deployments name it (openai, azure, anthropic...). Empty: any provider.",
            "deployment_id": (
                "A deployment's model ID: this price then applies to that deployment only, before any other."
            ),
            INPUT: f"{_PER_TOKEN_HELP}free.",
            OUTPUT: f"{_PER_TOKEN_HELP}free.",
            CACHE_READ: f"{_PER_TOKEN_HELP}the input price.",
            CACHE_WRITE: f"{_PER_TOKEN_HELP}the input price.",
            REASONING: f"{_PER_TOKEN_HELP}the output price.",
            PER_IMAGE: "USD per generated image.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].required = False
        self.fields["model"].help_text = "As priced, e.g. gpt-4o-mini. Empty with a deployment: its model."

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        deployment_id = cleaned_data.get("deployment_id")
        if deployment_id:
            deployment = Deployment.objects.filter(model_id=deployment_id).only("model").first()
            # Checked when typed in: the price of a deployment removed since stays editable.
            if deployment is None and "deployment_id" in self.changed_data:
                self.add_error("deployment_id", "No deployment has this model ID.")
            elif deployment is not None and not cleaned_data.get("model"):
                cleaned_data["model"] = deployment.model
        if not cleaned_data.get("model") and "model" not in self.errors:
            self.add_error("model", "Enter the model this price is for.")
        for name in PRICE_COLUMNS:
            if (cleaned_data.get(name) or 0) < 0:
                self.add_error(name, "A price cannot be negative.")
        if all(cleaned_data.get(name) is None for name in PRICE_COLUMNS):
            raise forms.ValidationError("Enter at least one price (0 for a free model).")
        starts, ends = cleaned_data.get("effective_from"), cleaned_data.get("effective_to")
        if starts and ends and ends <= starts:
            self.add_error("effective_to", "The price must end after it starts.")
        return cleaned_data


class ValuesDropdownFilter(DropdownFilter):
    """A dropdown of given values filtering one field exactly (no SELECT DISTINCT over the table)."""

    field_name = ""

    def values(self, request: HttpRequest) -> Iterable[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(value, value) for value in self.values(request)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(**{self.field_name: self.value()}) if self.value() else queryset


class PriceProviderFilter(ValuesDropdownFilter):
    title = "provider"
    parameter_name = field_name = "provider"

    def values(self, request: HttpRequest) -> Iterable[str]:
        # The price table is a few thousand rows: its distinct providers are cheap.
        return Price.objects.order_by("provider").values_list("provider", flat=True).distinct()


class ModeFilter(ValuesDropdownFilter):
    title = "mode"
    parameter_name = field_name = "mode"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(Deployment.Mode.choices)


class SourceFilter(RadioFilter):
    title = "source"
    parameter_name = "source"
    form_class = HorizontalRadioForm

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(BUNDLED, "Bundled"), (ADMIN_SOURCE, "Admin")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == BUNDLED:
            return queryset.filter(source=BUNDLED)
        if self.value() == ADMIN_SOURCE:
            return queryset.exclude(source=BUNDLED)
        return queryset


@admin.register(Price)
class PriceAdmin(ModelAdmin):
    form = PriceForm
    list_display = [
        "model",
        "provider_name",
        "deployment",
        "input_per_million",
        "output_per_million",
        "cache_read_per_million",
        "cache_write_per_million",
        "reasoning_per_million",
        "per_image",
        "effective_from",
        "effective_to",
        "source_label",
    ]
    list_filter = [PriceProviderFilter, ModeFilter, SourceFilter]
    list_filter_submit = True
    search_fields = ["model", "provider", "deployment_id"]
    search_help_text = "Model, provider or deployment ID"
    list_per_page = 100
    readonly_fields = ["source", "updated_at"]
    fieldsets = (
        (None, {"fields": ["model", "provider", "deployment_id", "mode"]}),
        ("Prices", {"fields": list(PRICE_COLUMNS)}),
        ("Effective", {"fields": ["effective_from", "effective_to"]}),
        ("Record", {"fields": ["source", "updated_at"]}),
    )

    def save_model(self, request: HttpRequest, obj: Price, form: PriceForm, change: bool) -> None:
        # An edited bundled row becomes the admin's: seeding again leaves it alone and re-creates the
        # bundled row beside it, which the admin's row outranks.
        obj.source = ADMIN_SOURCE
        super().save_model(request, obj, form, change)

    @display(description="Provider", ordering="provider")
    def provider_name(self, price: Price) -> str:
        return price.provider or "(any)"

    @display(description="Deployment", ordering="deployment_id")
    def deployment(self, price: Price) -> str:
        return price.deployment_id or "-"

    @display(description="Input / 1M", ordering=INPUT)
    def input_per_million(self, price: Price) -> str:
        return per_million(price.input_cost_per_token)

    @display(description="Output / 1M", ordering=OUTPUT)
    def output_per_million(self, price: Price) -> str:
        return per_million(price.output_cost_per_token)

    @display(description="Cache read / 1M", ordering=CACHE_READ)
    def cache_read_per_million(self, price: Price) -> str:
        return per_million(price.cache_read_input_token_cost)

    @display(description="Cache write / 1M", ordering=CACHE_WRITE)
    def cache_write_per_million(self, price: Price) -> str:
        return per_million(price.cache_creation_input_token_cost)

    @display(description="Reasoning / 1M", ordering=REASONING)
    def reasoning_per_million(self, price: Price) -> str:
        return per_million(price.output_cost_per_reasoning_token)

    @display(description="Per image", ordering=PER_IMAGE)
    def per_image(self, price: Price) -> str:
        return usd(price.output_cost_per_image)

    @display(description="Source", ordering="source", label={BUNDLED: None, ADMIN_SOURCE: "info"})
    def source_label(self, price: Price) -> tuple[str, str]:
        return price.source, price.source.capitalize()


class CappedCountPaginator(Paginator):
    """Count at most ``cap`` rows: ``COUNT(*)`` over all of a big ledger reads all of it.

    Past the cap the list offers no more pages; narrow it with the dates and filters instead.
    """

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.cap + 1].count()


def _team_aliases(team_ids: Iterable[str]) -> dict[str, str]:
    """Return the aliases of the teams with these ids (ledger rows keep ids as text)."""
    valid = set()
    for team_id in team_ids:
        try:
            valid.add(uuid.UUID(team_id))
        except ValueError:
            continue
    if not valid:
        return {}
    return {
        str(team_id): alias
        for team_id, alias in Team.objects.filter(pk__in=valid).values_list("pk", "team_alias")
    }


class TeamFilter(ValuesDropdownFilter):
    title = "team"
    parameter_name = field_name = "team_id"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        teams = Team.objects.order_by("team_alias")
        if not model_admin.sees_every_team(request):
            teams = teams.filter(pk__in=administered_team_ids(request))
        return [(str(team_id), alias) for team_id, alias in teams.values_list("pk", "team_alias")]


class ProviderFilter(ValuesDropdownFilter):
    title = "provider"
    parameter_name = field_name = "provider"

    def values(self, request: HttpRequest) -> Iterable[str]:
        return sorted(PROVIDERS)


class ModelGroupFilter(ValuesDropdownFilter):
    title = "model"
    parameter_name = field_name = "model_group"

    def values(self, request: HttpRequest) -> Iterable[str]:
        return Deployment.objects.order_by("model_name").values_list("model_name", flat=True).distinct()


class OperationFilter(ValuesDropdownFilter):
    title = "operation"
    parameter_name = field_name = "operation"

    def values(self, request: HttpRequest) -> Iterable[str]:
        return ["chat", "text_completion", "embedding", "image_generation"]


class TeamSpendAdmin(TeamScopedAdmin):
    """A read-only list of team-owned spend rows: every team for operators, their own for team admins."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would count the whole table per filter value
    list_per_page = 100
    list_filter_submit = True

    def sees_every_team(self, request: HttpRequest) -> bool:
        """Return True if the user reads every team's rows (by model permission), not only their own."""
        return has_model_permission(request, self.model, "view") or has_model_permission(
            request, self.model, "change"
        )

    def team_id_of(self, obj: Model) -> uuid.UUID | None:
        try:
            return uuid.UUID(obj.team_id)
        except ValueError:
            return None

    def team_queryset(self, request: HttpRequest) -> QuerySet:
        return self.model.objects.filter(
            team_id__in=[str(team_id) for team_id in administered_team_ids(request)]
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        # One query for the page's team aliases; the page's rows are read here and reused by the template.
        rows = list(changelist.result_list)
        aliases = _team_aliases({row.team_id for row in rows if row.team_id})
        for row in rows:
            row.team_alias = aliases.get(row.team_id, "")
        return changelist

    @display(description="Team", ordering="team_id")
    def team(self, row: Model) -> str:
        return getattr(row, "team_alias", "") or row.team_id or "-"

    @display(description="Cost", ordering="cost")
    def cost_usd(self, row: Model) -> str:
        return usd(row.cost)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(TeamSpendAdmin):
    list_display = [
        "created_at",
        "request_id",
        "key_alias",
        "team",
        "model_group_name",
        "provider",
        "tokens",
        "cost_usd",
        "status_label",
        "billing_basis",
        "latency",
    ]
    list_filter = [
        ("status", ChoicesDropdownFilter),
        ("billing_basis", ChoicesDropdownFilter),
        TeamFilter,
        ModelGroupFilter,
        ProviderFilter,
        OperationFilter,
        ("cache_hit", BooleanRadioFilter),
    ]
    date_hierarchy = "created_at"
    search_fields = ["=request_id"]
    search_help_text = "A whole request ID (x-litellm-call-id)"
    fieldsets = (
        (
            None,
            {"fields": ["request_id", "created_at", "status", "http_status", "error_type", "billing_basis"]},
        ),
        ("Caller", {"fields": ["key_alias", "key_token", "team_id", "user_id", "end_user"]}),
        (
            "Model",
            {
                "fields": [
                    "model_requested",
                    "model_group",
                    "deployment_id",
                    "provider",
                    "provider_model",
                    "operation",
                ]
            },
        ),
        (
            "Usage",
            {
                "fields": [
                    "prompt_tokens",
                    "completion_tokens",
                    "cached_tokens",
                    "cache_creation_tokens",
                    "reasoning_tokens",
                    "images",
                    "cost",
                    "price",
                ]
            },
        ),
        (
            "Timing",
            {
                "fields": [
                    "stream",
                    "latency_ms",
                    "time_to_first_token_ms",
                    "cache_hit",
                    "retries",
                    "fallbacks",
                ]
            },
        ),
        ("Content", {"fields": ["messages", "response"], "classes": ["collapse"]}),
    )

    @display(description="Model", ordering="model_group")
    def model_group_name(self, entry: LedgerEntry) -> str:
        return entry.model_group or entry.model_requested

    @display(description="Tokens (in / out)")
    def tokens(self, entry: LedgerEntry) -> str:
        return f"{entry.prompt_tokens:,} / {entry.completion_tokens:,}"

    @display(
        description="Status",
        ordering="status",
        label={"success": "success", "error": "danger", "cancelled": "warning"},
    )
    def status_label(self, entry: LedgerEntry) -> tuple[str, str]:
        return entry.status, entry.get_status_display()

    @display(description="Latency", ordering="latency_ms")
    def latency(self, entry: LedgerEntry) -> str:
        return f"{entry.latency_ms:,} ms"


@admin.register(SpendRollup)
class SpendRollupAdmin(TeamSpendAdmin):
    list_display = [
        "day",
        "team",
        "key_token",
        "model_group",
        "provider",
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "average_latency",
    ]
    list_filter = [TeamFilter, ModelGroupFilter, ProviderFilter]
    date_hierarchy = "day"

    @display(description="Average latency")
    def average_latency(self, rollup: SpendRollup) -> str:
        if not rollup.requests:
            return "-"
        return f"{rollup.latency_ms_sum // rollup.requests:,} ms"


class AlertEntityFilter(ValuesDropdownFilter):
    title = "budget of"
    parameter_name = field_name = "entity"

    def values(self, request: HttpRequest) -> Iterable[str]:
        return ["key", "team", "user", "end_user"]


class AlertThresholdFilter(ValuesDropdownFilter):
    title = "threshold"
    parameter_name = field_name = "threshold"

    def values(self, request: HttpRequest) -> Iterable[str]:
        return ["soft", "50", "80", "95"]


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ModelAdmin):
    list_display = ["sent_at", "entity", "entity_id", "threshold", "spend_usd", "limit_usd", "period_start"]
    list_filter = [AlertEntityFilter, AlertThresholdFilter]
    search_fields = ["entity_id"]
    date_hierarchy = "sent_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BudgetAlert | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BudgetAlert | None = None) -> bool:
        return False

    @display(description="Spend", ordering="spend")
    def spend_usd(self, alert: BudgetAlert) -> str:
        return usd(alert.spend)

    @display(description="Limit", ordering="limit")
    def limit_usd(self, alert: BudgetAlert) -> str:
        return usd(alert.limit)
