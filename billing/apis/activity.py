"""``GET /user/daily/activity`` and ``GET /team/daily/activity``: LiteLLM's daily activity, from rollups.

Each day with requests gets its metrics and a breakdown by model group, provider and key (and, for
teams, by team, each with its keys). Days come newest first, ``page_size`` days a page; the
metadata totals cover the whole range.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.apis import serializers as shapes
from billing.apis.scope import SpendView
from billing.selectors import DailyBreakdownRow, SpendFigures
from llm_gateway.apis.management.permissions import IsKeyHolderOrTeamAdmin, IsTeamAdmin
from llm_gateway.apis.management.serializers.base import ERROR_RESPONSES

TAGS = ["spend"]
BREAKDOWNS = ("models", "model_groups", "providers", "api_keys", "entities", "mcp_servers", "endpoints")


class DailyActivityView(SpendView):
    """The shared half: filters by model and key, then the days in LiteLLM's shape."""

    def activity(self, query: dict[str, Any], filters: dict[str, Any], *, by_team: bool) -> Response:
        if "model" in query:
            filters["model_group"] = query["model"]
        if "api_key" in query:
            filters["key_token"] = self.key_token_filter(query["api_key"])
        rows = selectors.spend_daily_breakdown(start=query["start_date"], end=query["end_date"], **filters)
        body = _activity(rows, page=query["page"], size=query["page_size"], by_team=by_team)
        return Response(shapes.DailyActivityResponse(body).data)


class UserDailyActivityView(DailyActivityView):
    permission_classes = [IsKeyHolderOrTeamAdmin]

    @extend_schema(
        operation_id="user_daily_activity",
        tags=TAGS,
        summary="Daily spend and usage, by model, provider and key",
        description="LiteLLM's daily activity, from the daily rollups. Gateway admins see every key "
        "(or `user_id`'s), team admins their teams' keys, a plain key itself, a logged-in user their "
        "own keys. `start_date` and `end_date` (UTC days, at most 366) are required.",
        parameters=[shapes.UserDailyActivityQuery],
        responses={200: shapes.DailyActivityResponse, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        query = self.query(shapes.UserDailyActivityQuery)
        filters = self.scope.selector_filters()
        if "user_id" in query:
            filters["user_id"] = self.user_id_filter(query["user_id"])
        return self.activity(query, filters, by_team=False)


class TeamDailyActivityView(DailyActivityView):
    permission_classes = [IsTeamAdmin]

    @extend_schema(
        operation_id="team_daily_activity",
        tags=TAGS,
        summary="Daily spend and usage of teams, by team, model, provider and key",
        description="LiteLLM's team daily activity, from the daily rollups: `breakdown.entities` holds "
        "each team (by id, `metadata.team_alias`) with its keys. `team_ids` (comma-separated) "
        "narrows it; team admins see their own teams only, and naming another is refused (403).",
        parameters=[shapes.TeamDailyActivityQuery],
        responses={200: shapes.DailyActivityResponse, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        query = self.query(shapes.TeamDailyActivityQuery)
        filters = self.scope.selector_filters()
        if query.get("team_ids"):
            filters["team_ids"] = self.team_ids_filter(query["team_ids"], param="team_ids")
        return self.activity(query, filters, by_team=True)


def _activity(rows: list[DailyBreakdownRow], *, page: int, size: int, by_team: bool) -> dict[str, Any]:
    """Return LiteLLM's SpendAnalyticsPaginatedResponse for these rows, one page of days."""
    by_day: dict[date, list[DailyBreakdownRow]] = defaultdict(list)
    for row in rows:
        by_day[row.day].append(row)
    days = sorted(by_day, reverse=True)
    shown = days[(page - 1) * size : page * size]
    shown_rows = [row for day in shown for row in by_day[day]]
    key_aliases = selectors.key_aliases(row.key_token for row in shown_rows)
    team_labels = selectors.team_labels(row.team_id for row in shown_rows) if by_team else {}
    total = sum((row.figures for row in rows), SpendFigures())
    return {
        "results": [_day(day, by_day[day], key_aliases, team_labels, by_team=by_team) for day in shown],
        "metadata": {
            "total_spend": total.cost,
            "total_prompt_tokens": total.prompt_tokens,
            "total_completion_tokens": total.completion_tokens,
            "total_tokens": total.total_tokens,
            "total_api_requests": total.requests,
            "total_successful_requests": total.successes,
            "total_failed_requests": total.errors,
            "total_cache_read_input_tokens": total.cached_tokens,
            "total_cache_creation_input_tokens": 0,
            "page": page,
            "total_pages": -(-len(days) // size),
            "has_more": page * size < len(days),
        },
    }


def _day(
    day: date,
    rows: list[DailyBreakdownRow],
    key_aliases: dict[str, str],
    team_labels: dict[str, str],
    *,
    by_team: bool,
) -> dict[str, Any]:
    breakdown: dict[str, dict[str, Any]] = {name: {} for name in BREAKDOWNS}
    for row in rows:
        key_metadata = {"key_alias": key_aliases.get(row.key_token), "team_id": row.team_id or None}
        _add(breakdown["models"], row.model_group, row.figures)
        _add(breakdown["model_groups"], row.model_group, row.figures)
        _add(breakdown["providers"], row.provider, row.figures)
        _add(breakdown["api_keys"], row.key_token, row.figures, key_metadata)
        if by_team:
            team = _add(
                breakdown["entities"], row.team_id, row.figures, {"team_alias": team_labels[row.team_id]}
            )
            _add(team["api_key_breakdown"], row.key_token, row.figures, key_metadata)
    return {
        "date": day,
        "metrics": sum((row.figures for row in rows), SpendFigures()),
        "breakdown": breakdown,
    }


def _add(
    entries: dict[str, Any], name: str, figures: SpendFigures, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    entry = entries.setdefault(
        name, {"metrics": SpendFigures(), "metadata": metadata or {}, "api_key_breakdown": {}}
    )
    entry["metrics"] += figures
    return entry
