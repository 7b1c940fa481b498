"""Query parameters and response shapes of the spend APIs, with LiteLLM's JSON names.

Amounts are JSON numbers (as LiteLLM renders them) holding the stored Decimal to 10 places; days
are UTC dates, ``YYYY-MM-DD``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.validators import MaxValueValidator
from rest_framework import serializers

from billing.selectors import SpendFigures
from billing.selectors.rollups import LAST_DAY
from llm_gateway.apis.management.serializers.base import money_output, page_field

# Rollups add up a row per day and dimension: a year is as far as one report reaches.
MAX_REPORT_DAYS = 366


def day_field(help_text: str, *, required: bool = True) -> serializers.DateField:
    """Return a query parameter holding a UTC day, YYYY-MM-DD, up to ``LAST_DAY``."""
    return serializers.DateField(
        required=required, help_text=help_text, validators=[MaxValueValidator(LAST_DAY)]
    )


class DateRangeQuery(serializers.Serializer):
    """``start_date`` and ``end_date``: UTC days, both included."""

    start_date = day_field("First day (UTC), YYYY-MM-DD.")
    end_date = day_field("Last day (UTC), YYYY-MM-DD, included.")
    max_days: int | None = MAX_REPORT_DAYS

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start and end and end < start:
            raise serializers.ValidationError({"end_date": "end_date comes before start_date."})
        if start and end and self.max_days and (end - start).days + 1 > self.max_days:
            raise serializers.ValidationError(
                {"end_date": f"Ask for at most {self.max_days} days at a time."}
            )
        return attrs


class CommaListField(serializers.CharField):
    """A comma-separated list in one query parameter (LiteLLM's ``team_ids=a,b``)."""

    def to_internal_value(self, data: Any) -> list[str]:
        return [item.strip() for item in super().to_internal_value(data).split(",") if item.strip()]


class SpendLogsQuery(DateRangeQuery):
    start_date = day_field("First day (UTC), YYYY-MM-DD.", required=False)
    end_date = day_field("Last day (UTC), YYYY-MM-DD, included.", required=False)
    max_days = None  # a page of rows costs the same whatever the range
    api_key = serializers.CharField(max_length=200, required=False, help_text="A key: its secret or token.")
    user_id = serializers.CharField(max_length=150, required=False, help_text="The key owner's user id.")
    request_id = serializers.CharField(max_length=64, required=False)
    summarize = serializers.BooleanField(
        required=False, help_text="Only false is supported: this endpoint returns rows, never summaries."
    )
    page = page_field()
    page_size = serializers.IntegerField(min_value=1, max_value=1000, default=50)

    def validate_summarize(self, value: bool) -> bool:
        if value:
            raise serializers.ValidationError(
                "Summaries come from /global/spend/report and /user/daily/activity; use summarize=false."
            )
        return value


class GlobalSpendReportQuery(DateRangeQuery):
    group_by = serializers.ChoiceField(
        choices=["team", "customer", "api_key", "key"],
        default="team",
        help_text="team (per day), customer (per day) or api_key (alias: key; totals over the range).",
    )
    api_key = serializers.CharField(
        max_length=200, required=False, help_text="Only this key (api_key shape)."
    )
    internal_user_id = serializers.CharField(
        max_length=150, required=False, help_text="Only this user's keys (api_key shape)."
    )
    team_id = serializers.CharField(max_length=64, required=False)
    customer_id = serializers.CharField(max_length=200, required=False, help_text="Only this end user.")


class DailyActivityQuery(DateRangeQuery):
    model = serializers.CharField(max_length=200, required=False, help_text="Only this model group.")
    api_key = serializers.CharField(
        max_length=200, required=False, help_text="Only this key: secret or token."
    )
    page = page_field()
    page_size = serializers.IntegerField(min_value=1, max_value=1000, default=50, help_text="Days per page.")


class UserDailyActivityQuery(DailyActivityQuery):
    user_id = serializers.CharField(max_length=150, required=False, help_text="Only this user's keys.")


class TeamDailyActivityQuery(DailyActivityQuery):
    team_ids = CommaListField(
        max_length=10_000,
        required=False,
        help_text="Comma-separated team ids; default: every team you may read.",
    )


class SpendMetricsSerializer(serializers.Serializer):
    """LiteLLM's SpendMetrics, from rollup figures."""

    spend = money_output(source="cost")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cache_read_input_tokens = serializers.IntegerField(source="cached_tokens")
    cache_creation_input_tokens = serializers.SerializerMethodField(
        help_text="Always 0: the rollups do not keep cache writes yet."
    )
    api_requests = serializers.IntegerField(source="requests")
    successful_requests = serializers.IntegerField(source="successes")
    failed_requests = serializers.IntegerField(source="errors")

    def get_cache_creation_input_tokens(self, _figures: SpendFigures) -> int:
        return 0


class KeyMetadataSerializer(serializers.Serializer):
    key_alias = serializers.CharField(allow_null=True)
    team_id = serializers.CharField(allow_null=True)


class KeyMetricSerializer(serializers.Serializer):
    metrics = SpendMetricsSerializer()
    metadata = KeyMetadataSerializer()


class MetricSerializer(serializers.Serializer):
    metrics = SpendMetricsSerializer()
    metadata = serializers.DictField()
    api_key_breakdown = serializers.DictField(child=KeyMetricSerializer())


class BreakdownSerializer(serializers.Serializer):
    models = serializers.DictField(child=MetricSerializer(), help_text="By model group.")
    model_groups = serializers.DictField(child=MetricSerializer())
    providers = serializers.DictField(child=MetricSerializer())
    api_keys = serializers.DictField(child=KeyMetricSerializer(), help_text="By key token.")
    entities = serializers.DictField(child=MetricSerializer(), help_text="By team id (team activity only).")
    mcp_servers = serializers.DictField(child=MetricSerializer(), help_text="Always empty.")
    endpoints = serializers.DictField(child=MetricSerializer(), help_text="Always empty.")


class DailySpendSerializer(serializers.Serializer):
    date = serializers.DateField()
    metrics = SpendMetricsSerializer()
    breakdown = BreakdownSerializer()


class DailySpendMetadataSerializer(serializers.Serializer):
    total_spend = money_output()
    total_prompt_tokens = serializers.IntegerField()
    total_completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    total_api_requests = serializers.IntegerField()
    total_successful_requests = serializers.IntegerField()
    total_failed_requests = serializers.IntegerField()
    total_cache_read_input_tokens = serializers.IntegerField()
    total_cache_creation_input_tokens = serializers.IntegerField()
    page = serializers.IntegerField()
    total_pages = serializers.IntegerField()
    has_more = serializers.BooleanField()


class DailyActivityResponse(serializers.Serializer):
    """LiteLLM's SpendAnalyticsPaginatedResponse: days with activity, newest first, paged."""

    results = DailySpendSerializer(many=True)
    metadata = DailySpendMetadataSerializer()


class SpendLogSerializer(serializers.Serializer):
    """One ledger row in LiteLLM's SpendLogs shape; our own columns are under ``metadata``."""

    request_id = serializers.CharField()
    call_type = serializers.CharField(source="operation")
    api_key = serializers.CharField(source="key_token", help_text="The key's token (never its secret).")
    spend = money_output(source="cost")
    total_tokens = serializers.SerializerMethodField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    startTime = serializers.DateTimeField(source="created_at")
    endTime = serializers.SerializerMethodField()
    completionStartTime = serializers.SerializerMethodField()
    model = serializers.CharField(source="model_requested")
    model_id = serializers.CharField(source="deployment_id")
    model_group = serializers.CharField()
    custom_llm_provider = serializers.CharField(source="provider")
    user = serializers.SerializerMethodField(help_text="The key owner's user id.")
    end_user = serializers.CharField()
    team_id = serializers.CharField()
    cache_hit = serializers.BooleanField()
    status = serializers.SerializerMethodField(help_text="success or failure.")
    metadata = serializers.SerializerMethodField()
    messages = serializers.JSONField(help_text="Only for teams that store prompts.")
    response = serializers.JSONField(help_text="Only for teams that store prompts.")

    def get_total_tokens(self, entry: Any) -> int:
        return entry.prompt_tokens + entry.completion_tokens

    def get_endTime(self, entry: Any) -> str:
        return serializers.DateTimeField().to_representation(entry.created_at + _ms(entry.latency_ms))

    def get_completionStartTime(self, entry: Any) -> str | None:
        if entry.time_to_first_token_ms is None:
            return None
        return serializers.DateTimeField().to_representation(
            entry.created_at + _ms(entry.time_to_first_token_ms)
        )

    def get_user(self, entry: Any) -> str:
        return self.context["usernames"].get(entry.user_id, entry.user_id)

    def get_status(self, entry: Any) -> str:
        return "failure" if entry.status == "error" else "success"

    def get_metadata(self, entry: Any) -> dict[str, Any]:
        return {
            "key_alias": entry.key_alias,
            "provider_model": entry.provider_model,
            "stream": entry.stream,
            "cached_tokens": entry.cached_tokens,
            "cache_creation_tokens": entry.cache_creation_tokens,
            "reasoning_tokens": entry.reasoning_tokens,
            "images": entry.images,
            "latency_ms": entry.latency_ms,
            "time_to_first_token_ms": entry.time_to_first_token_ms,
            "http_status": entry.http_status,
            "error_type": entry.error_type,
            "retries": entry.retries,
            "fallbacks": entry.fallbacks,
            "billing_basis": entry.billing_basis,
            "price": entry.price,
        }


def _ms(milliseconds: int) -> timedelta:
    return timedelta(milliseconds=milliseconds)


class ReportModelSpendSerializer(serializers.Serializer):
    model = serializers.CharField()
    api_key = serializers.CharField()
    spend = money_output()
    total_tokens = serializers.IntegerField()


class TeamSpendSerializer(serializers.Serializer):
    team_name = serializers.CharField(help_text="The team's alias; 'Unassigned Team' for keys without one.")
    total_spend = money_output()
    metadata = ReportModelSpendSerializer(many=True)


class TeamReportDaySerializer(serializers.Serializer):
    group_by_day = serializers.DateField()
    teams = TeamSpendSerializer(many=True)


class CustomerSpendSerializer(serializers.Serializer):
    customer = serializers.CharField(help_text="The end user (OpenAI's `user` field); empty for none.")
    total_spend = money_output()
    metadata = ReportModelSpendSerializer(many=True)


class CustomerReportDaySerializer(serializers.Serializer):
    group_by_day = serializers.DateField()
    customers = CustomerSpendSerializer(many=True)


class KeyModelDetailSerializer(serializers.Serializer):
    model = serializers.CharField()
    total_cost = money_output()
    total_input_tokens = serializers.IntegerField()
    total_output_tokens = serializers.IntegerField()


class KeyReportSerializer(serializers.Serializer):
    api_key = serializers.CharField(help_text="The key's token.")
    total_cost = money_output()
    total_input_tokens = serializers.IntegerField()
    total_output_tokens = serializers.IntegerField()
    model_details = KeyModelDetailSerializer(many=True)


class UsageFiguresSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(allow_null=True, help_text="Null for a lifetime budget.")
    requests = serializers.IntegerField(source="figures.requests")
    successful_requests = serializers.IntegerField(source="figures.successes")
    failed_requests = serializers.IntegerField(source="figures.errors")
    prompt_tokens = serializers.IntegerField(source="figures.prompt_tokens")
    completion_tokens = serializers.IntegerField(source="figures.completion_tokens")
    total_tokens = serializers.IntegerField(source="figures.total_tokens")
    spend = money_output(source="figures.cost")


class KeyUsageOfSerializer(serializers.Serializer):
    today = UsageFiguresSerializer(help_text="Since midnight UTC.")
    period = UsageFiguresSerializer(
        help_text="The current budget period; since the key was made without one."
    )


class KeyIdentitySerializer(serializers.Serializer):
    token = serializers.UUIDField(help_text="The key's id (never its secret).")
    key_alias = serializers.CharField(allow_null=True)
    key_name = serializers.CharField(help_text="The key's display form.")


class KeyLimitsSerializer(serializers.Serializer):
    rpm_limit = serializers.IntegerField(allow_null=True)
    tpm_limit = serializers.IntegerField(allow_null=True)
    max_parallel_requests = serializers.IntegerField(allow_null=True)
    max_budget = money_output()
    budget_duration = serializers.CharField(allow_null=True)
    budget_reset_at = serializers.DateTimeField(allow_null=True, help_text="When the current period ends.")


class KeyBudgetSerializer(serializers.Serializer):
    spend = money_output(help_text="The budget's counter for the current period: what the limit applies to.")
    held = money_output(help_text="Reserved by requests in flight.")
    remaining = money_output(help_text="max_budget - spend - held; null without a budget.")


class KeyUsageResponse(serializers.Serializer):
    key = KeyIdentitySerializer()
    usage = KeyUsageOfSerializer()
    limits = KeyLimitsSerializer()
    budget = KeyBudgetSerializer()
