"""End users: the OpenAI ``user`` field's callers, tracked for spend and optional budgets.

Each belongs to a team, or to a key owner (for keys without a team), or to neither: the gateway's own,
named by the master key's requests (llm_gateway.end_user_scopes).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import BooleanRadioFilter
from unfold.decorators import action, display

from llm_gateway.admin.display import usd, usd_text
from llm_gateway.admin.forms import JsonShapeForm
from llm_gateway.models import EndUser


class EndUserForm(JsonShapeForm):
    json_shapes = {"metadata": dict}

    class Meta:
        model = EndUser
        fields = ["user_id", "team", "owner", "alias", "max_budget", "budget_duration", "blocked", "metadata"]


@admin.register(EndUser)
class EndUserAdmin(ModelAdmin):
    form = EndUserForm
    list_display = [
        "user_id",
        "team",
        "owner",
        "alias",
        "spend_usd",
        "max_budget_usd",
        "budget_duration",
        "blocked",
        "created_at",
    ]
    list_filter = [("blocked", BooleanRadioFilter), "team"]
    list_select_related = ["team", "owner"]
    autocomplete_fields = ["team", "owner"]
    list_filter_submit = True
    search_fields = ["user_id", "alias", "team__team_alias", "owner__username"]
    actions = ["block", "unblock"]
    readonly_preprocess_fields = {"spend": usd_text}
    readonly_fields = ["spend", "budget_reset_at", "created_at", "updated_at"]
    fieldsets = (
        (None, {"fields": ["user_id", "alias", "blocked"]}),
        ("Scope", {"fields": ["team", "owner"], "description": "Neither: the gateway's own end user."}),
        ("Budget", {"fields": ["spend", "max_budget", "budget_duration", "budget_reset_at"]}),
        ("Metadata", {"fields": ["metadata"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: EndUser | None = None) -> list[str]:
        # The id is what callers send as `user`: renaming it would split one end user's spend in two.
        # The scope may change: end users from before scoping are the gateway's until moved to a team.
        return [*self.readonly_fields, "user_id"] if obj is not None else self.readonly_fields

    @display(description="Spend", ordering="spend")
    def spend_usd(self, end_user: EndUser) -> str:
        return usd(end_user.spend)

    @display(description="Max budget", ordering="max_budget")
    def max_budget_usd(self, end_user: EndUser) -> str:
        return usd(end_user.max_budget)

    @action(description="Block selected end users", permissions=["change"], icon="block")
    def block(self, request: HttpRequest, queryset: QuerySet[EndUser]) -> None:
        self._blocked_set(request, queryset, blocked=True)

    @action(description="Unblock selected end users", permissions=["change"], icon="lock_open")
    def unblock(self, request: HttpRequest, queryset: QuerySet[EndUser]) -> None:
        self._blocked_set(request, queryset, blocked=False)

    def _blocked_set(self, request: HttpRequest, queryset: QuerySet[EndUser], *, blocked: bool) -> None:
        # One save per row, not queryset.update(), so save signals (cache invalidation) still fire.
        for end_user in queryset:
            end_user.blocked = blocked
            end_user.save(update_fields=["blocked", "updated_at"])
        messages.success(request, f"{'Blocked' if blocked else 'Unblocked'} {len(queryset)} end user(s).")
