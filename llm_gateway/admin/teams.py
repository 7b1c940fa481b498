"""Teams and their memberships. A team admin sees their team, edits its members, not its budget."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet
from django.db.models.fields.related import ForeignKey
from django.forms import ModelChoiceField
from django.http import HttpRequest
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import BooleanRadioFilter
from unfold.decorators import action, display

from llm_gateway.admin.display import usd, usd_text
from llm_gateway.admin.forms import LIMIT_LABELS, JsonShapeForm, aliases_clean
from llm_gateway.admin.team_scope import TeamScopedAdmin, administered_team_ids, has_model_permission
from llm_gateway.models import Membership, Team

_TEAM_FIELDS = [
    "team_alias",
    "models",
    "model_aliases",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "blocked",
    "metadata",
]


class TeamForm(JsonShapeForm):
    json_shapes = {"models": list, "model_aliases": dict, "metadata": dict}

    class Meta:
        model = Team
        fields = _TEAM_FIELDS
        labels = LIMIT_LABELS

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        models = cleaned_data.get("models", self.instance.models)
        aliases_clean(self, field="model_aliases", allow_lists=[models], owner="this team")
        return cleaned_data


class MembershipInline(TabularInline):
    """The members of a team; its team admins manage them without model permissions."""

    model = Membership
    fields = ["user", "role"]
    extra = 0
    hide_title = True  # each row would repeat "user in team (role)" above its own fields

    def _administers(self, request: HttpRequest, team: Team | None) -> bool:
        # Without a team (the inline's queryset check), any team admin qualifies: the formset only
        # ever holds the members of the team whose page it is on, and those pages are scoped.
        team_ids = administered_team_ids(request)
        return bool(team_ids) if team is None else team.pk in team_ids

    def has_view_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        return super().has_view_permission(request, obj) or self._administers(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Team | None) -> bool:
        return super().has_add_permission(request, obj) or self._administers(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        return super().has_change_permission(request, obj) or self._administers(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        return super().has_delete_permission(request, obj) or self._administers(request, obj)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.name == "user":
            kwargs["queryset"] = get_user_model().objects.filter(is_active=True).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin):
    form = TeamForm
    team_admin_may_add = False
    team_admin_may_delete = False
    inlines = [MembershipInline]
    list_display = [
        "team_alias",
        "member_count",
        "key_count",
        "spend_usd",
        "max_budget_usd",
        "rpm",
        "tpm",
        "blocked",
    ]
    list_filter = [("blocked", BooleanRadioFilter)]
    list_filter_submit = True
    search_fields = ["team_alias"]
    actions = ["block", "unblock"]
    readonly_preprocess_fields = {"spend": usd_text, "max_budget": usd_text, "soft_budget": usd_text}
    fieldsets = (
        (None, {"fields": ["team_alias", "blocked", "models", "model_aliases"]}),
        (
            "Budget",
            {"fields": ["spend", "max_budget", "soft_budget", "budget_duration", "budget_reset_at"]},
        ),
        ("Rate limits", {"fields": ["rpm_limit", "tpm_limit", "max_parallel_requests"]}),
        ("Metadata", {"fields": ["metadata"]}),
        ("Record", {"fields": ["team_id", "created_at", "updated_at"]}),
    )
    add_fieldsets = fieldsets[:4]

    def team_id_of(self, obj: Team) -> Any:
        return obj.pk

    def team_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return Team.objects.filter(team_id__in=administered_team_ids(request))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Count("memberships", distinct=True), key_count=Count("keys", distinct=True)
            )
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Team | None = None) -> list[str]:
        readonly = ["team_id", "spend", "budget_reset_at", "created_at", "updated_at"]
        if self.is_team_scoped(request):
            # The operator sets a team's budget and limits; its team admins only manage its members.
            readonly += _TEAM_FIELDS
        return readonly

    def has_block_permission(self, request: HttpRequest) -> bool:
        return has_model_permission(request, Team, "change")

    @display(description="Members", ordering="member_count")
    def member_count(self, team: Team) -> int:
        return team.member_count

    @display(description="Keys", ordering="key_count")
    def key_count(self, team: Team) -> int:
        return team.key_count

    @display(description="Spend", ordering="spend")
    def spend_usd(self, team: Team) -> str:
        return usd(team.spend)

    @display(description="Max budget", ordering="max_budget")
    def max_budget_usd(self, team: Team) -> str:
        return usd(team.max_budget)

    @display(description="RPM limit", ordering="rpm_limit")
    def rpm(self, team: Team) -> int | None:
        return team.rpm_limit

    @display(description="TPM limit", ordering="tpm_limit")
    def tpm(self, team: Team) -> int | None:
        return team.tpm_limit

    @action(description="Block selected teams (all their keys are refused)", permissions=["block"])
    def block(self, request: HttpRequest, queryset: QuerySet[Team]) -> None:
        self._blocked_set(request, queryset, blocked=True)

    @action(description="Unblock selected teams", permissions=["block"])
    def unblock(self, request: HttpRequest, queryset: QuerySet[Team]) -> None:
        self._blocked_set(request, queryset, blocked=False)

    def _blocked_set(self, request: HttpRequest, queryset: QuerySet[Team], *, blocked: bool) -> None:
        # One save per team, not queryset.update(): the save signal invalidates the request path's cache.
        for team in queryset:
            team.blocked = blocked
            team.save(update_fields=["blocked", "updated_at"])
        messages.success(request, f"{'Blocked' if blocked else 'Unblocked'} {len(queryset)} team(s).")
