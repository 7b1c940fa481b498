"""Who may read the spend dashboard, and which teams' spend they see."""

from __future__ import annotations

from django.http import HttpRequest

from llm_gateway.admin.team_scope import administered_team_ids

# Django's own view permission on the rollups: the grant for finance, who read every team's spend.
FINANCE_PERMISSION = "billing.view_spendrollup"


def visible_team_ids(request: HttpRequest) -> frozenset[str] | None:
    """Return the ids of the teams whose spend the user may see, or None for every team."""
    if request.user.has_perm(FINANCE_PERMISSION):
        return None
    return frozenset(str(team_id) for team_id in administered_team_ids(request))


def may_view_spend_dashboard(request: HttpRequest) -> bool:
    """Return True for finance (every team) and for team admins (their teams)."""
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return visible_team_ids(request) is None or bool(administered_team_ids(request))
