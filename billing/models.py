"""Prices, the request ledger, daily spend rollups and sent budget alerts.

The ledger is the source of truth for spend: one append-only row per request, written off the request
path in batches and idempotent by ``request_id``. It stores plain ids (not foreign keys) so that rows
outlive the keys and deployments they name, and so that bulk inserts touch one table only.
Dashboards read the rollups, never the ledger.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

# Costs keep 18 decimal places: per-token prices reach 1e-11 USD, and a row must hold the exact
# product of price and tokens, as the response's x-litellm-response-cost header says it.
MONEY = {"max_digits": 30, "decimal_places": 18}
PRICE = {"max_digits": 24, "decimal_places": 18}  # per-token prices go down to 1e-9 USD and below


class Price(models.Model):
    """What one model costs, per token bucket, per image; optionally for one deployment only."""

    model = models.CharField(max_length=300, db_index=True, help_text="Model as priced, e.g. gpt-4o-mini.")
    provider = models.CharField(max_length=64, blank=True, default="")
    deployment_id = models.CharField(
        max_length=200,
        blank=True,
        default="",
        db_index=True,
        help_text="A deployment's model_id: this price overrides the model's for that deployment only.",
    )
    mode = models.CharField(max_length=24, blank=True, default="chat")
    input_cost_per_token = models.DecimalField(**PRICE, null=True, blank=True)
    output_cost_per_token = models.DecimalField(**PRICE, null=True, blank=True)
    cache_read_input_token_cost = models.DecimalField(**PRICE, null=True, blank=True)
    cache_creation_input_token_cost = models.DecimalField(**PRICE, null=True, blank=True)
    output_cost_per_reasoning_token = models.DecimalField(**PRICE, null=True, blank=True)
    output_cost_per_image = models.DecimalField(**PRICE, null=True, blank=True)
    effective_from = models.DateTimeField(null=True, blank=True, help_text="Empty: since always.")
    effective_to = models.DateTimeField(null=True, blank=True, help_text="Empty: until further notice.")
    source = models.CharField(max_length=32, default="admin", help_text="bundled (seeded) or admin.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "provider", "deployment_id", "-effective_from"]
        indexes = [models.Index(fields=["model", "provider"], name="price_model_provider")]

    def __str__(self) -> str:
        scope = f" @ {self.deployment_id}" if self.deployment_id else ""
        return f"{self.provider + '/' if self.provider else ''}{self.model}{scope}"


class LedgerEntry(models.Model):
    class Status(models.TextChoices):
        SUCCESS = "success", "Success"
        ERROR = "error", "Error"
        # The client went away before its answer: billed for what the upstream was asked to do.
        CANCELLED = "cancelled", "Cancelled by the client"

    class BillingBasis(models.TextChoices):
        PROVIDER_REPORTED = "provider_reported", "Provider-reported usage"
        ESTIMATED = "estimated", "Estimated (counted by the gateway)"
        PARTIAL = "partial", "Partial (stream cut short)"

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_index=True)
    key_token = models.CharField(max_length=36, blank=True, default="", db_index=True)
    key_alias = models.CharField(max_length=200, blank=True, default="")
    team_id = models.CharField(max_length=36, blank=True, default="", db_index=True)
    user_id = models.CharField(max_length=150, blank=True, default="")
    end_user = models.CharField(max_length=200, blank=True, default="")
    model_requested = models.CharField(max_length=300, blank=True, default="")
    model_group = models.CharField(max_length=200, blank=True, default="")
    deployment_id = models.CharField(max_length=200, blank=True, default="")
    provider = models.CharField(max_length=64, blank=True, default="")
    provider_model = models.CharField(max_length=300, blank=True, default="")
    operation = models.CharField(max_length=24, default="chat")
    stream = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0, help_text="Cache reads (part of prompt tokens).")
    cache_creation_tokens = models.PositiveIntegerField(default=0, help_text="Cache writes (part of prompt).")
    reasoning_tokens = models.PositiveIntegerField(default=0, help_text="Part of completion tokens.")
    images = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(**MONEY, default=Decimal("0"))
    price = models.JSONField(default=dict, blank=True, help_text="The prices this row was charged at.")
    latency_ms = models.PositiveIntegerField(default=0)
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUCCESS)
    http_status = models.PositiveSmallIntegerField(default=200)
    error_type = models.CharField(max_length=64, blank=True, default="")
    cache_hit = models.BooleanField(default=False)
    retries = models.PositiveSmallIntegerField(default=0)
    fallbacks = models.PositiveSmallIntegerField(default=0)
    billing_basis = models.CharField(
        max_length=24, choices=BillingBasis.choices, default=BillingBasis.PROVIDER_REPORTED
    )
    messages = models.JSONField(null=True, blank=True, help_text="Stored only for teams that opted in.")
    response = models.JSONField(null=True, blank=True, help_text="Stored only for teams that opted in.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["team_id", "created_at"], name="ledger_team_created")]

    def __str__(self) -> str:
        return self.request_id


class SpendRollup(models.Model):
    """One day of one key x team x user x model x deployment: what the dashboards read."""

    day = models.DateField()
    key_token = models.CharField(max_length=36, blank=True, default="")
    team_id = models.CharField(max_length=36, blank=True, default="")
    user_id = models.CharField(max_length=150, blank=True, default="")
    end_user = models.CharField(max_length=200, blank=True, default="")
    model_group = models.CharField(max_length=200, blank=True, default="")
    deployment_id = models.CharField(max_length=200, blank=True, default="")
    provider = models.CharField(max_length=64, blank=True, default="")
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(**MONEY, default=Decimal("0"))
    latency_ms_sum = models.PositiveBigIntegerField(default=0)
    time_to_first_token_ms_sum = models.PositiveBigIntegerField(default=0)
    streamed_requests = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "day",
                    "key_token",
                    "team_id",
                    "user_id",
                    "end_user",
                    "model_group",
                    "deployment_id",
                    "provider",
                ],
                name="one_rollup_per_day_and_dimensions",
            )
        ]
        indexes = [models.Index(fields=["team_id", "day"], name="rollup_team_day")]


class BudgetAlert(models.Model):
    """A budget alert that was sent: at most one per budget, period and threshold."""

    entity = models.CharField(max_length=16, help_text="key, team, user or end_user")
    entity_id = models.CharField(max_length=200)
    period_start = models.DateTimeField()
    threshold = models.CharField(max_length=16, help_text="soft, 50, 80 or 95")
    spend = models.DecimalField(**MONEY)
    limit = models.DecimalField(**MONEY)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "entity_id", "period_start", "threshold"],
                name="one_alert_per_budget_period_threshold",
            )
        ]
