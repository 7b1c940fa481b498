"""unfold's sidebar with the spend dashboard in it: ``UNFOLD["SIDEBAR"]["navigation"]`` names this.

With a navigation of its own, unfold stops listing the admin's apps in the sidebar; this one lists
them as Django's app list does (each user sees the models their permissions and team-admin role
open to them), then adds "Spend" under Billing for finance and team admins.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse

from billing.dashboards.access import may_view_spend_dashboard


def sidebar_navigation(request: HttpRequest) -> list[dict[str, Any]]:
    """Return the sidebar's groups: every app the user may open, and the spend dashboard."""
    groups = [
        {
            "app_label": app["app_label"],
            "title": app["name"],
            "items": [
                {"title": model["name"], "link": model["admin_url"]}
                for model in app["models"]
                if model.get("admin_url")
            ],
        }
        for app in admin.site.get_app_list(request)
    ]
    if may_view_spend_dashboard(request):
        billing = next((group for group in groups if group["app_label"] == "billing"), None)
        if billing is None:
            billing = {"app_label": "billing", "title": "Billing", "items": []}
            groups.append(billing)
        billing["items"].insert(
            0, {"title": "Spend", "icon": "monitoring", "link": reverse("spend_dashboard:index")}
        )
    return groups
