"""Django's users and groups, registered again with unfold's classes and forms so they match the rest.

A user's page also holds their budget and limits (``UserBudget``), which apply to every key they own.
"""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from unfold.admin import ModelAdmin, StackedInline
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from llm_gateway.admin.display import usd_text
from llm_gateway.admin.forms import LIMIT_LABELS, JsonShapeForm
from llm_gateway.models import UserBudget

admin.site.unregister(User)
admin.site.unregister(Group)


class UserBudgetForm(JsonShapeForm):
    json_shapes = {"metadata": dict}

    class Meta:
        model = UserBudget
        fields = [
            "max_budget",
            "soft_budget",
            "budget_duration",
            "rpm_limit",
            "tpm_limit",
            "max_parallel_requests",
            "blocked",
            "metadata",
        ]
        labels = {**LIMIT_LABELS, "blocked": "Blocked (every key the user owns is refused)"}


class UserBudgetInline(StackedInline):
    """The user's budget and limits; a user without one has no limits of their own."""

    model = UserBudget
    form = UserBudgetForm
    verbose_name = verbose_name_plural = "Budget and limits"
    can_delete = False  # emptied fields lift the limits; the row keeps counting the user's spend
    readonly_preprocess_fields = {"spend": usd_text}
    readonly_fields = ["spend", "budget_reset_at"]
    fieldsets = (
        ("Budget", {"fields": ["spend", "max_budget", "soft_budget", "budget_duration", "budget_reset_at"]}),
        ("Rate limits", {"fields": ["rpm_limit", "tpm_limit", "max_parallel_requests"]}),
        (None, {"fields": ["blocked", "metadata"]}),
    )


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    inlines = [UserBudgetInline]


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass
