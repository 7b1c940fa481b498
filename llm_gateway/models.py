"""Teams, memberships, virtual keys, users' budgets, deployments (with their health checks) and end users.

Field names follow LiteLLM's (``key_alias``, ``max_budget``, ``budget_duration``, ``rpm_limit``...) so
its users find what they know. Keys are stored only as a SHA-256 hash plus a display prefix; provider
credentials on deployments are encrypted at rest or kept as ``os.environ/NAME`` references.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from llm_gateway.budget_durations import validate_budget_duration
from llm_gateway.end_user_scopes import EndUserScope
from providers.registry import PROVIDERS

MONEY = {"max_digits": 20, "decimal_places": 10}


class BudgetFields(models.Model):
    """Budget and rate-limit fields shared by teams, keys and users (enforced by billing)."""

    max_budget = models.DecimalField(**MONEY, null=True, blank=True, help_text="Hard limit in USD.")
    soft_budget = models.DecimalField(**MONEY, null=True, blank=True, help_text="Alert threshold in USD.")
    budget_duration = models.CharField(
        max_length=16,
        blank=True,
        default="",
        validators=[validate_budget_duration],
        help_text="Reset period: 30s, 10m, 1h, 1d, 1w or 1mo. Empty: never resets.",
    )
    budget_reset_at = models.DateTimeField(null=True, blank=True)
    spend = models.DecimalField(**MONEY, default=Decimal("0"))
    rpm_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute.")
    tpm_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute.")
    max_parallel_requests = models.PositiveIntegerField(null=True, blank=True)
    blocked = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Team(BudgetFields):
    team_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team_alias = models.CharField(max_length=200, unique=True)
    model_aliases = models.JSONField(
        default=dict, blank=True, help_text="Requested name -> model group, for every key of the team."
    )
    store_prompts = models.BooleanField(
        default=False, help_text="Store prompts and completions in the ledger (off: only usage and cost)."
    )
    # Declared last: from here on, the name `models` in this class body is this field, not the module.
    models = models.JSONField(default=list, blank=True, help_text="Allowed model names; empty allows all.")

    class Meta:
        ordering = ["team_alias"]

    def __str__(self) -> str:
        return self.team_alias


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Team admin"
        MEMBER = "member", "Member"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="one_membership_per_user_and_team")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class VirtualKey(BudgetFields):
    class KeyType(models.TextChoices):
        LLM_API = "llm_api", "Inference only"
        MANAGEMENT = "management", "Inference and management of its own team"

    token = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, help_text="The key's id (not the secret)."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(max_length=32, editable=False, help_text="Shown to identify the key.")
    key_alias = models.CharField(max_length=200, blank=True, default="")
    key_type = models.CharField(max_length=16, choices=KeyType.choices, default=KeyType.LLM_API)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="keys")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="virtual_keys",
    )
    aliases = models.JSONField(default=dict, blank=True, help_text="Requested name -> model name.")
    model_max_budget = models.JSONField(default=dict, blank=True, help_text="Model name -> USD limit.")
    allowed_cache_controls = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Cache controls requests may use (no-cache, no-store, ttl, namespace); "
            "empty allows all but namespace."
        ),
    )
    expires = models.DateTimeField(null=True, blank=True)
    admin_locked = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Limits a gateway admin set, which team admins may tighten but not lift "
        "(llm_gateway.admin_locks).",
    )
    # Declared last: from here on, the name `models` in this class body is this field, not the module.
    models = models.JSONField(default=list, blank=True, help_text="Allowed model names; empty allows all.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["team", "-created_at"], name="key_team_created")]

    def __str__(self) -> str:
        return self.key_alias or self.key_prefix

    @property
    def is_expired(self) -> bool:
        return self.expires is not None and self.expires <= timezone.now()


class UserBudget(BudgetFields):
    """The budget and limits of a user, across every key they own (LiteLLM's per-user budget).

    A user without this row has no budget or limits of their own.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="budget"
    )

    def __str__(self) -> str:
        return f"Budget of {self.user}"


class Deployment(models.Model):
    class Mode(models.TextChoices):
        CHAT = "chat", "Chat"
        COMPLETION = "completion", "Text completion"
        EMBEDDING = "embedding", "Embedding"
        IMAGE_GENERATION = "image_generation", "Image generation"

    class Health(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        HEALTHY = "healthy", "Healthy"
        UNHEALTHY = "unhealthy", "Unhealthy"

    model_id = models.CharField(
        max_length=200,
        unique=True,
        default=uuid.uuid4,
        help_text="LiteLLM's model_info.id: a stable id for this deployment.",
    )
    model_name = models.CharField(max_length=200, db_index=True, help_text="The name clients ask for.")
    provider = models.CharField(max_length=64, choices=sorted((name, name) for name in PROVIDERS))
    model = models.CharField(max_length=300, help_text="The provider's model id (or Azure deployment).")
    mode = models.CharField(max_length=24, choices=Mode.choices, default=Mode.CHAT)
    api_base = models.CharField(max_length=500, blank=True, default="")
    api_version = models.CharField(max_length=64, blank=True, default="")
    credential = models.TextField(
        blank=True, default="", editable=False, help_text="Encrypted API key (never shown back)."
    )
    credential_env = models.CharField(
        max_length=200, blank=True, default="", help_text="Environment variable holding the API key instead."
    )
    rpm = models.PositiveIntegerField(null=True, blank=True)
    tpm = models.PositiveIntegerField(null=True, blank=True)
    weight = models.FloatField(default=1.0)
    order = models.PositiveIntegerField(default=1, help_text="Priority tier: lower tiers are used first.")
    timeout = models.FloatField(null=True, blank=True)
    extra_params = models.JSONField(default=dict, blank=True, help_text="Other litellm_params, passed on.")
    model_info = models.JSONField(
        default=dict, blank=True, help_text="LiteLLM's model_info (prices, base_model)."
    )
    enabled = models.BooleanField(default=True)
    health_status = models.CharField(max_length=16, choices=Health.choices, default=Health.UNKNOWN)
    # The latest health check, copied here so the list view and the router need no join.
    health_checked_at = models.DateTimeField(null=True, blank=True)
    health_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    health_error = models.TextField(blank=True, default="", help_text="Empty when the check passed.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_name", "order", "model_id"]

    def __str__(self) -> str:
        return f"{self.model_name} -> {self.provider}/{self.model}"

    def clean(self) -> None:
        if self.provider and self.provider not in PROVIDERS:
            raise ValidationError({"provider": f"Unknown provider {self.provider!r}."})
        if self.weight < 0:
            raise ValidationError({"weight": "Weight cannot be negative."})


class DeploymentHealthCheck(models.Model):
    """One probe of a deployment (llm_gateway.services.health_checks); kept HEALTH_CHECK_RETENTION_DAYS."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="health_checks")
    checked_at = models.DateTimeField(db_index=True)
    healthy = models.BooleanField()
    latency_ms = models.PositiveIntegerField()
    error_type = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="", help_text="Credentials redacted, truncated.")
    http_status = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The status the upstream answered a failed probe with."
    )

    class Meta:
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["deployment", "-checked_at"], name="health_check_deployment")]

    def __str__(self) -> str:
        verdict = "healthy" if self.healthy else "unhealthy"
        return f"{self.deployment}: {verdict} at {self.checked_at:%Y-%m-%d %H:%M:%S}"


class EndUser(models.Model):
    """A caller's own customer, named by OpenAI's ``user`` field (LiteLLM's "customer"), in one scope.

    The scope (llm_gateway.end_user_scopes) is the team of the keys that name it; for keys without a
    team, their owner; with neither (the master key's requests), the gateway's own. The same
    ``user_id`` in two scopes is two end users, each with its own budget, spend and block.
    """

    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="end_users")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="end_users",
        help_text="For the keys of this user that have no team. Empty with no team: the gateway's own.",
    )
    user_id = models.CharField(max_length=200, help_text="The `user` the callers send.")
    alias = models.CharField(max_length=200, blank=True, default="")
    max_budget = models.DecimalField(**MONEY, null=True, blank=True)
    budget_duration = models.CharField(
        max_length=16, blank=True, default="", validators=[validate_budget_duration]
    )
    budget_reset_at = models.DateTimeField(null=True, blank=True)
    spend = models.DecimalField(**MONEY, default=Decimal("0"))
    blocked = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user_id", "id"]
        # NULLs are distinct in a plain unique index (on SQLite and PostgreSQL alike): one partial
        # index per scope kind keeps a user_id unique within its team, its owner, and the gateway.
        constraints = [
            models.CheckConstraint(
                condition=models.Q(team__isnull=True) | models.Q(owner__isnull=True),
                name="end_user_team_or_owner",
            ),
            models.UniqueConstraint(
                fields=["team", "user_id"],
                condition=models.Q(team__isnull=False),
                name="one_end_user_per_team_and_id",
            ),
            models.UniqueConstraint(
                fields=["owner", "user_id"],
                condition=models.Q(owner__isnull=False),
                name="one_end_user_per_owner_and_id",
            ),
            models.UniqueConstraint(
                fields=["user_id"],
                condition=models.Q(team__isnull=True, owner__isnull=True),
                name="one_gateway_end_user_per_id",
            ),
        ]

    def __str__(self) -> str:
        return self.alias or self.user_id

    @property
    def scope(self) -> EndUserScope:
        return EndUserScope.of_key(team_id=self.team_id, owner_id=self.owner_id)


class GatewaySettings(models.Model):
    """The gateway-wide settings of the imported config file: a single row (pk 1).

    ``router_settings`` is kept as written (``os.environ/NAME`` references unresolved) for the router
    to read; ``general_settings`` without its secrets (``master_key``, ``database_url``), which the
    gateway takes from its environment and config file, never from the database.
    """

    router_settings = models.JSONField(default=dict, blank=True, help_text="LiteLLM's router_settings.")
    general_settings = models.JSONField(
        default=dict, blank=True, help_text="LiteLLM's general_settings, secrets removed."
    )
    config_model_ids = models.JSONField(
        default=list,
        blank=True,
        help_text="model_ids of the deployments the config file defines (the ones --prune may remove).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "gateway settings"
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="gateway_settings_single_row")]

    def __str__(self) -> str:
        return "Gateway settings"
