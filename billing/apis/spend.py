"""``GET /spend/logs`` (ledger rows) and ``GET /global/spend/report`` (rollups), at LiteLLM's paths."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.apis import serializers as shapes
from billing.apis.scope import SpendView
from billing.selectors import ZERO, SpendFigures
from llm_gateway.apis.management.permissions import IsKeyHolderOrTeamAdmin, IsTeamAdmin
from llm_gateway.apis.management.serializers.base import ERROR_RESPONSES

TAGS = ["spend"]
UNASSIGNED_TEAM = "Unassigned Team"  # LiteLLM's name for spend without a team


class SpendLogsView(SpendView):
    permission_classes = [IsKeyHolderOrTeamAdmin]

    @extend_schema(
        operation_id="spend_logs",
        tags=TAGS,
        summary="List request logs (ledger rows)",
        description="One row per request, newest first, in LiteLLM's SpendLogs shape, by page (`page` "
        "from 1, `page_size` up to 1000). The body is the list; the `Link` header names the next page "
        '(`rel="next"`) when there is one, and `X-Page`/`X-Page-Size` echo the page. Gateway admins '
        "read every row, team admins their teams' rows, a plain key only its own. `api_key` takes a "
        "secret or a token; a key outside your scope is refused (403).",
        parameters=[shapes.SpendLogsQuery],
        responses={200: shapes.SpendLogSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        query = self.query(shapes.SpendLogsQuery)
        filters = self.scope.selector_filters()
        # The filters can only narrow the scope: they are checked against it (403 outside).
        if "api_key" in query:
            filters["key_token"] = self.key_token_filter(query["api_key"])
        if "user_id" in query:
            filters["user_id"] = self.user_id_filter(query["user_id"])
        entries = selectors.ledger_entry_list(
            **filters,
            request_id=query.get("request_id"),
            start=query.get("start_date"),
            end=query.get("end_date"),
        )
        page, size = query["page"], query["page_size"]
        rows = list(entries[(page - 1) * size : page * size + 1])
        has_next, rows = len(rows) > size, rows[:size]
        usernames = selectors.usernames(entry.user_id for entry in rows)
        body = shapes.SpendLogSerializer(rows, many=True, context={"usernames": usernames}).data
        headers = {"X-Page": str(page), "X-Page-Size": str(size)}
        if has_next:
            following = request.query_params.copy()
            following["page"] = str(page + 1)
            headers["Link"] = (
                f'<{request.build_absolute_uri(request.path)}?{following.urlencode()}>; rel="next"'
            )
        return Response(body, headers=headers)


class GlobalSpendReportView(SpendView):
    permission_classes = [IsTeamAdmin]

    @extend_schema(
        operation_id="global_spend_report",
        tags=TAGS,
        summary="Report spend per day and team, per day and customer, or per key",
        description="From the daily rollups. `group_by=team` (default): per day, each team's spend with "
        "its model x key split; `group_by=customer`: the same per end user; `group_by=api_key` (or "
        "`key`), or any `api_key`/`internal_user_id` filter: per key over the whole range, with its "
        "models. Days are UTC, `group_by_day` is YYYY-MM-DD. Team admins see their teams only; a "
        "`team_id` outside them is refused (403).",
        parameters=[shapes.GlobalSpendReportQuery],
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="GlobalSpendReport",
                    serializers=[
                        shapes.TeamReportDaySerializer,
                        shapes.CustomerReportDaySerializer,
                        shapes.KeyReportSerializer,
                    ],
                    resource_type_field_name=None,
                    many=True,
                ),
                description="A list: team days, customer days or keys, by `group_by`.",
            ),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        query = self.query(shapes.GlobalSpendReportQuery)
        filters = self.scope.selector_filters()
        if "team_id" in query:
            filters["team_ids"] = self.team_ids_filter([query["team_id"]])
        if "customer_id" in query:
            filters["end_user"] = query["customer_id"]
        key_shape = query["group_by"] in ("api_key", "key")
        if "api_key" in query:
            filters["key_token"], key_shape = self.key_token_filter(query["api_key"]), True
        if "internal_user_id" in query:
            filters["user_id"], key_shape = self.user_id_filter(query["internal_user_id"]), True
        dates = {"start": query["start_date"], "end": query["end_date"]}
        if key_shape:
            rows = selectors.spend_report_rows(**dates, group="key_token", daily=False, **filters)
            return Response(shapes.KeyReportSerializer(_key_report(rows), many=True).data)
        if query["group_by"] == "customer":
            rows = selectors.spend_report_rows(**dates, group="end_user", daily=True, **filters)
            days = _day_report(rows, "customers", "customer", lambda group: group)
            return Response(shapes.CustomerReportDaySerializer(days, many=True).data)
        rows = selectors.spend_report_rows(**dates, group="team_id", daily=True, **filters)
        labels = selectors.team_labels(row.group for row in rows)
        days = _day_report(
            rows, "teams", "team_name", lambda group: labels[group] if group else UNASSIGNED_TEAM
        )
        return Response(shapes.TeamReportDaySerializer(days, many=True).data)


def _day_report(rows: list[selectors.ReportRow], items: str, name: str, label: Any) -> list[dict]:
    """Return LiteLLM's per-day report: each day's groups with their spend and model x key split."""
    days: dict[Any, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        days[row.day][row.group].append(row)
    return [
        {
            "group_by_day": day,
            items: [
                {
                    name: label(group),
                    "total_spend": sum((row.figures.cost for row in group_rows), ZERO),
                    "metadata": [
                        {
                            "model": row.model_group,
                            "api_key": row.key_token,
                            "spend": row.figures.cost,
                            "total_tokens": row.figures.total_tokens,
                        }
                        for row in group_rows
                    ],
                }
                for group, group_rows in groups.items()
            ],
        }
        for day, groups in days.items()
    ]


def _key_report(rows: list[selectors.ReportRow]) -> list[dict]:
    """Return LiteLLM's per-key report, biggest spender first."""
    keys: dict[str, list[selectors.ReportRow]] = defaultdict(list)
    for row in rows:
        keys[row.key_token].append(row)
    report = []
    for token, key_rows in keys.items():
        total = sum((row.figures for row in key_rows), SpendFigures())
        report.append(
            {
                "api_key": token,
                "total_cost": total.cost,
                "total_input_tokens": total.prompt_tokens,
                "total_output_tokens": total.completion_tokens,
                "model_details": [
                    {
                        "model": row.model_group,
                        "total_cost": row.figures.cost,
                        "total_input_tokens": row.figures.prompt_tokens,
                        "total_output_tokens": row.figures.completion_tokens,
                    }
                    for row in key_rows
                ],
            }
        )
    return sorted(report, key=lambda item: (-item["total_cost"], item["api_key"]))
