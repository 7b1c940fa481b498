"""Virtual keys: the secret is shown once, at creation or regeneration, and only its hash is kept."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.db.models.fields.related import ForeignKey
from django.forms import ModelChoiceField
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from unfold.contrib.filters.admin import BooleanRadioFilter, ChoicesDropdownFilter, RadioFilter
from unfold.contrib.filters.forms import HorizontalRadioForm
from unfold.decorators import action, display
from unfold.utils import display_for_label

from llm_gateway.admin.display import secret_message, usd, usd_text
from llm_gateway.admin.forms import LIMIT_LABELS, JsonShapeForm, aliases_clean
from llm_gateway.admin.team_scope import RelatedOnlyDropdownFilter, TeamScopedAdmin, administered_team_ids
from llm_gateway.admin_locks import LOCKABLE_FIELDS, AdminLockError, admin_locks_lifted
from llm_gateway.crypto import KEY_PREFIX, virtual_key_hash
from llm_gateway.models import Team, VirtualKey
from llm_gateway.selectors import virtual_key_list_manageable
from llm_gateway.services.keys import (
    KEY_FIELDS,
    virtual_key_block,
    virtual_key_create,
    virtual_key_regenerate,
    virtual_key_update,
)


class VirtualKeyForm(JsonShapeForm):
    json_shapes = {
        "models": list,
        "aliases": dict,
        "model_max_budget": dict,
        "allowed_cache_controls": list,
        "metadata": dict,
    }

    class Meta:
        model = VirtualKey
        fields = sorted(KEY_FIELDS)
        labels = {**LIMIT_LABELS, "user": "Owner", "model_max_budget": "Per-model budgets"}

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        team = cleaned_data.get("team") if "team" in self.fields else self.instance.team
        aliases_clean(
            self,
            field="aliases",
            allow_lists=[cleaned_data.get("models", self.instance.models), team.models if team else []],
            owner="this key",
        )
        return cleaned_data


class TeamAdminVirtualKeyForm(VirtualKeyForm):
    """The key form of a team admin: the limits a gateway admin set may be tightened, not lifted."""

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        if self.instance.pk is not None:
            written = {name: cleaned_data[name] for name in LOCKABLE_FIELDS if name in cleaned_data}
            for name in admin_locks_lifted(self.instance, written):
                self.add_error(name, "A gateway admin set this: you may tighten it, not lift it.")
        return cleaned_data


_STATUS_LABELS = {"active": "success", "blocked": "danger", "expired": "warning"}


def key_status(key: VirtualKey) -> tuple[str, str]:
    """Return why a key is refused, or that it is active, as (status, text)."""
    if key.blocked:
        return "blocked", "Blocked"
    if key.team is not None and key.team.blocked:
        return "blocked", "Team blocked"
    if key.is_expired:
        return "expired", "Expired"
    return "active", "Active"


class ExpiredFilter(RadioFilter):
    title = "expired"
    parameter_name = "expired"
    form_class = HorizontalRadioForm  # laid out like the "blocked" filter above it

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(expires__lte=now)
        if self.value() == "no":
            return queryset.filter(Q(expires__isnull=True) | Q(expires__gt=now))
        return queryset


_MODELS = ("Models", {"fields": ["models", "aliases", "allowed_cache_controls"]})
_LIMITS = ("Rate limits", {"fields": ["rpm_limit", "tpm_limit", "max_parallel_requests"]})
_METADATA = ("Metadata", {"fields": ["metadata"]})


@admin.register(VirtualKey)
class VirtualKeyAdmin(TeamScopedAdmin):
    form = VirtualKeyForm
    list_display = [
        "alias",
        "key_prefix",
        "team",
        "owner",
        "spend_usd",
        "max_budget_usd",
        "rpm",
        "tpm",
        "expires",
        "status",
    ]
    list_filter = [
        ("team", RelatedOnlyDropdownFilter),
        ("blocked", BooleanRadioFilter),
        ("key_type", ChoicesDropdownFilter),
        ExpiredFilter,
    ]
    list_filter_submit = True
    search_fields = ["key_alias", "key_prefix", "team__team_alias", "user__username"]
    search_help_text = "Alias, prefix, team, owner or a whole key"
    actions = ["block", "unblock", "regenerate"]
    readonly_preprocess_fields = {"spend": usd_text}
    readonly_fields = [
        "token",
        "key_prefix",
        "status_label",
        "locked",
        "spend",
        "budget_reset_at",
        "created_at",
        "updated_at",
    ]
    add_fieldsets = (
        (None, {"fields": ["key_alias", "key_type", "team", "user", "expires", "blocked"]}),
        _MODELS,
        ("Budget", {"fields": ["max_budget", "soft_budget", "budget_duration", "model_max_budget"]}),
        _LIMITS,
        _METADATA,
    )
    fieldsets = (
        (
            None,
            {"fields": ["key_alias", "key_prefix", "status_label", "locked", "key_type", "team", "user"]},
        ),
        ("Lifetime", {"fields": ["expires", "blocked"]}),
        _MODELS,
        ("Budget", {"fields": ["spend", "max_budget", "soft_budget", "budget_duration", "budget_reset_at"]}),
        ("Per-model budgets", {"fields": ["model_max_budget"]}),
        _LIMITS,
        _METADATA,
        ("Record", {"fields": ["token", "created_at", "updated_at"]}),
    )

    def team_id_of(self, obj: VirtualKey) -> Any:
        return obj.team_id

    def team_queryset(self, request: HttpRequest) -> QuerySet[VirtualKey]:
        return virtual_key_list_manageable(user=request.user)

    def get_queryset(self, request: HttpRequest) -> QuerySet[VirtualKey]:
        return super().get_queryset(request).select_related("team", "user")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[VirtualKey], search_term: str
    ) -> tuple[QuerySet[VirtualKey], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        secret = search_term.strip()
        if secret.startswith(KEY_PREFIX):
            results |= queryset.filter(key_hash=virtual_key_hash(secret))
        return results, may_have_duplicates

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if self.is_team_scoped(request):
            team_ids = administered_team_ids(request)
            if db_field.name == "team":
                # A team admin's key always belongs to one of their teams, or they would lose it.
                kwargs["queryset"] = Team.objects.filter(team_id__in=team_ids)
                kwargs["required"] = True
            elif db_field.name == "user":
                kwargs["queryset"] = (
                    get_user_model().objects.filter(memberships__team_id__in=team_ids).distinct()
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(
        self, request: HttpRequest, obj: VirtualKey | None = None, change: bool = False, **kwargs: Any
    ) -> type[VirtualKeyForm]:
        if self.is_team_scoped(request):
            kwargs["form"] = TeamAdminVirtualKeyForm
        return super().get_form(request, obj, change, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        team_ids = administered_team_ids(request)
        if self.is_team_scoped(request) and len(team_ids) == 1:
            initial.setdefault("team", next(iter(team_ids)))
        return initial

    def save_model(self, request: HttpRequest, obj: VirtualKey, form: VirtualKeyForm, change: bool) -> None:
        fields = {name: value for name, value in form.cleaned_data.items() if name in KEY_FIELDS}
        by_team_admin = self.is_team_scoped(request)
        if change:
            # The form already copied its values onto `obj`: the service compares with the stored row
            # (who set what: llm_gateway.admin_locks).
            virtual_key_update(key=self.model.objects.get(pk=obj.pk), by_team_admin=by_team_admin, **fields)
            obj.refresh_from_db()
            return
        key, secret = virtual_key_create(by_team_admin=by_team_admin, **fields)
        # The admin goes on with `obj` (history entry, redirect): make it the row just created.
        obj.pk = key.pk
        obj.refresh_from_db()
        obj.secret_shown_once = secret

    def response_add(
        self, request: HttpRequest, obj: VirtualKey, post_url_continue: str | None = None
    ) -> HttpResponseRedirect:
        # Whichever save button was used, land on the key's page, where the secret is shown once.
        messages.success(request, secret_message(f"The key “{obj}” was created.", obj.secret_shown_once))
        return HttpResponseRedirect(reverse("admin:llm_gateway_virtualkey_change", args=[obj.pk]))

    @display(description="Alias", ordering="key_alias")
    def alias(self, key: VirtualKey) -> str:
        return key.key_alias or "(no alias)"

    @display(description="Owner", ordering="user__username")
    def owner(self, key: VirtualKey) -> str | None:
        return key.user.get_username() if key.user else None

    @display(description="Spend", ordering="spend")
    def spend_usd(self, key: VirtualKey) -> str:
        return usd(key.spend)

    @display(description="Max budget", ordering="max_budget")
    def max_budget_usd(self, key: VirtualKey) -> str:
        return usd(key.max_budget)

    @display(description="RPM limit", ordering="rpm_limit")
    def rpm(self, key: VirtualKey) -> int | None:
        return key.rpm_limit

    @display(description="TPM limit", ordering="tpm_limit")
    def tpm(self, key: VirtualKey) -> int | None:
        return key.tpm_limit

    @display(description="Status", label=_STATUS_LABELS)
    def status(self, key: VirtualKey) -> tuple[str, str]:
        return key_status(key)

    @display(description="Set by a gateway admin")
    def locked(self, key: VirtualKey) -> str:
        return ", ".join(key.admin_locked) or "-"

    @display(description="Status")
    def status_label(self, key: VirtualKey) -> SafeString:
        # unfold colours `label` displays in lists only; a read-only form field gets the HTML itself.
        return display_for_label(key_status(key), "-", _STATUS_LABELS)

    @action(description="Block selected keys", permissions=["change"], icon="block")
    def block(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in queryset:
            virtual_key_block(key=key, blocked=True, by_team_admin=self.is_team_scoped(request))
        messages.success(request, f"Blocked {len(queryset)} key(s): they are refused from now on.")

    @action(description="Unblock selected keys", permissions=["change"], icon="lock_open")
    def unblock(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        unblocked = 0
        for key in queryset:
            try:
                virtual_key_block(key=key, blocked=False, by_team_admin=self.is_team_scoped(request))
            except AdminLockError:
                messages.error(request, f"The key “{key}” stays blocked: a gateway admin blocked it.")
            else:
                unblocked += 1
        if unblocked:
            messages.success(request, f"Unblocked {unblocked} key(s).")

    @action(description="Regenerate selected keys (the old secrets stop working)", permissions=["change"])
    def regenerate(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in queryset:
            secret = virtual_key_regenerate(key=key)
            messages.success(request, secret_message(f"New secret for the key “{key}”.", secret))
