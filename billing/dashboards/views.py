"""The spend dashboard page and its CSV exports."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views import View

from billing import selectors
from billing.dashboards import charts
from billing.dashboards.access import may_view_spend_dashboard, visible_team_ids
from billing.dashboards.forms import SpendFilterForm
from billing.dashboards.tables import (
    SHOWN_ROWS,
    TABLE_NAMES,
    Table,
    TableFilters,
    count,
    milliseconds,
    percent,
    tables_build,
)
from billing.selectors import SpendFigures
from llm_gateway.admin.display import usd
from llm_gateway.models import Team

TEMPLATE = "billing/spend_dashboard.html"
# The page shows the top spenders from "by_key"; "top_keys" exists for its CSV export.
PAGE_TABLES = [name for name in TABLE_NAMES if name != "top_keys"]
BREAKDOWNS = ["by_team", "by_key", "by_model", "by_provider", "by_user"]
BUDGETS = ["budget_teams", "budget_keys"]


class SpendDashboardView(View):
    """Show spend from the rollups for a range of days and a team; ``?format=csv&table=...`` exports."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not may_view_spend_dashboard(request):
            raise PermissionDenied("The spend dashboard is for finance and team admins.")
        visible = visible_team_ids(request)
        teams = Team.objects.order_by("team_alias")
        if visible is not None:
            teams = teams.filter(team_id__in=visible)
        now = timezone.now()
        form = SpendFilterForm(request.GET, teams=list(teams), sees_all=visible is None, today=now.date())
        if not form.is_valid():
            return self.render(request, form, status=400)
        filters = TableFilters(
            start=form.cleaned_data["start"],
            end=form.cleaned_data["end"],
            team_ids=form.team_ids(visible),
            now=now,
        )
        if request.GET.get("format") == "csv":
            return self.csv_export(request.GET.get("table", ""), filters)
        return self.render(request, form, filters=filters)

    def csv_export(self, name: str, filters: TableFilters) -> HttpResponse:
        if name not in TABLE_NAMES:
            return HttpResponseBadRequest(
                f"No table {name!r}; choose one of {', '.join(TABLE_NAMES)}.", content_type="text/plain"
            )
        table = tables_build(filters, [name])[name]
        return table.csv_response(f"spend-{name}-{filters.start}-{filters.end}.csv")

    def render(
        self,
        request: HttpRequest,
        form: SpendFilterForm,
        filters: TableFilters | None = None,
        status: int = 200,
    ) -> TemplateResponse:
        request.current_app = admin.site.name
        context: dict[str, Any] = {
            **admin.site.each_context(request),
            "title": "Spend",
            "form": form,
        }
        if filters is not None:
            context |= page_context(filters, request.GET.copy())
        return TemplateResponse(request, TEMPLATE, context, status=status)


def page_context(filters: TableFilters, query: QueryDict) -> dict[str, Any]:
    """Return the page's figures: headline numbers, the daily chart, breakdowns and budget burn.

    The tables hold their first SHOWN_ROWS rows (their CSV exports hold them all); the totals add up
    the days, which cover the whole range.
    """
    tables = tables_build(filters, PAGE_TABLES, limit=SHOWN_ROWS)
    exports = {}
    for name in TABLE_NAMES:
        query["format"], query["table"] = "csv", name
        exports[name] = f"?{query.urlencode()}"
    totals = sum((row.figures for row in tables["by_day"].rows), SpendFigures())
    latency = selectors.latency_percentiles(start=filters.start, end=filters.end, team_ids=filters.team_ids)
    sample = (
        f"latest {latency.sample_size:,} requests" if latency.is_sampled else "all requests, from the ledger"
    )
    return {
        "kpis": [
            {"id": "total-spend", "label": "Total spend", "value": usd(totals.cost)},
            {"id": "requests", "label": "Requests", "value": count(totals.requests)},
            {"id": "tokens", "label": "Tokens", "value": count(totals.total_tokens)},
            {"id": "error-rate", "label": "Error rate", "value": percent(totals.error_rate)},
            {"id": "latency", "label": "Average latency", "value": milliseconds(totals.average_latency_ms)},
            {
                "id": "percentiles",
                "label": "p50 / p95 latency",
                "value": f"{milliseconds(latency.p50_ms)} / {milliseconds(latency.p95_ms)}",
                "note": sample,
            },
        ],
        "timeline": {"chart": charts.spend_over_time(tables["by_day"].rows), "export": exports["by_day"]},
        "breakdowns": [
            _section(tables[name], exports[name], charts.spend_bars(tables[name].rows)) for name in BREAKDOWNS
        ],
        "budgets": [_section(tables[name], exports[name]) for name in BUDGETS],
    }


def _section(table: Table, export: str, chart: str | None = None) -> dict[str, Any]:
    return {
        "name": table.name,
        "title": table.title,
        "table": table.page_table(),
        "chart": chart,
        "export": export,
        "row_count": table.row_count,
        "shown_count": len(table.rows),
    }
