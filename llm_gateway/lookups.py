"""In-process snapshots of keys, teams and deployments, so the request path makes no database query.

A key is read from the database the first time it is seen (with its team, its owner and the owner's
budget), then served from memory. Every write to a key, team, membership, user budget or deployment
(admin, management API, config import) clears this process's snapshots at once and writes a new
generation value to the shared Django cache (Redis in production, a file cache in the embedded
default); other instances compare that value at most every ``CONFIG_REFRESH_SECONDS`` (default 2 s)
and drop their snapshots when it changed. A revoked key therefore stops working everywhere within
that bound, plus the time of one request.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from llm_gateway.conf import gateway_setting
from llm_gateway.crypto import credential_decrypt
from llm_gateway.end_user_scopes import EndUserScope
from llm_gateway.env_references import env_reference_allowed, env_reference_refusal
from llm_gateway.models import Deployment, EndUser, GatewaySettings, VirtualKey
from llm_gateway.router.settings import DEFAULT_SETTINGS, RouterSettings, RouterSettingsError
from llm_gateway.single_flight import SingleFlight
from providers.credentials import EnvReferenceError, credentials_from_environment, env_reference
from providers.price_table import PRICE_FIELDS, context_window
from providers.registry import PROVIDERS, ProviderSpec
from providers.upstream import DEFAULT_TIMEOUT, ResolvedDeployment

logger = logging.getLogger(__name__)

GENERATION_CACHE_KEY = "llm_gateway:config-generation"
MAX_CACHED_KEYS = 100_000
SNAPSHOT_MAX_AGE = 60.0
MAX_UNKNOWN_KEYS = 10_000  # remembered misses, so a flood of bad keys cannot reach the database


@dataclass(frozen=True, slots=True)
class LimitsSnapshot:
    """The budget and rate limits of a key, team, user or end user, as of the snapshot."""

    max_budget: Decimal | None = None
    spend: Decimal = Decimal("0")
    budget_duration: str = ""
    budget_reset_at: datetime | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None

    @classmethod
    def of(cls, row: Any) -> LimitsSnapshot:
        return cls(
            max_budget=row.max_budget,
            spend=row.spend,
            budget_duration=row.budget_duration,
            budget_reset_at=row.budget_reset_at,
            rpm_limit=getattr(row, "rpm_limit", None),
            tpm_limit=getattr(row, "tpm_limit", None),
            max_parallel_requests=getattr(row, "max_parallel_requests", None),
        )


NO_LIMITS = LimitsSnapshot()


@dataclass(frozen=True, slots=True)
class KeySnapshot:
    """What the request path needs to know about a virtual key, its team and its owner."""

    token: str
    key_alias: str
    key_type: str
    team_id: str | None
    team_alias: str | None
    user_id: int | None
    models: frozenset[str]
    team_models: frozenset[str]
    aliases: dict[str, str]
    team_aliases: dict[str, str]
    blocked: bool
    team_blocked: bool
    expires: datetime | None
    metadata: dict[str, Any]
    limits: LimitsSnapshot = NO_LIMITS
    team_limits: LimitsSnapshot = NO_LIMITS
    user_name: str | None = None
    user_blocked: bool = False
    user_limits: LimitsSnapshot = NO_LIMITS
    model_max_budget: dict[str, Any] = field(default_factory=dict)
    store_prompts: bool = False
    allowed_cache_controls: frozenset[str] = frozenset()

    @classmethod
    def from_key(cls, key: VirtualKey) -> KeySnapshot:
        team, user = key.team, key.user
        # A user without a UserBudget row has no budget or limits of their own.
        budget = getattr(user, "budget", None) if user else None
        return cls(
            token=str(key.token),
            key_alias=key.key_alias,
            key_type=key.key_type,
            team_id=str(team.team_id) if team else None,
            team_alias=team.team_alias if team else None,
            user_id=key.user_id,
            models=frozenset(key.models or ()),
            team_models=frozenset(team.models or ()) if team else frozenset(),
            aliases=dict(key.aliases or {}),
            team_aliases=dict(team.model_aliases or {}) if team else {},
            blocked=key.blocked,
            team_blocked=bool(team and team.blocked),
            expires=key.expires,
            metadata=dict(key.metadata or {}),
            limits=LimitsSnapshot.of(key),
            team_limits=LimitsSnapshot.of(team) if team else NO_LIMITS,
            user_name=user.get_username() if user else None,
            user_blocked=bool(budget and budget.blocked),
            user_limits=LimitsSnapshot.of(budget) if budget else NO_LIMITS,
            model_max_budget=dict(key.model_max_budget or {}),
            store_prompts=bool(team and team.store_prompts),
            allowed_cache_controls=frozenset(key.allowed_cache_controls or ()),
        )

    def is_expired(self) -> bool:
        return self.expires is not None and self.expires <= timezone.now()


@dataclass(frozen=True, slots=True)
class DeploymentSnapshot:
    """A deployment ready to call: its routing fields and its resolved upstream."""

    model_id: str
    model_name: str
    mode: str
    weight: float
    order: int
    rpm: int | None
    tpm: int | None
    spec: ProviderSpec
    upstream: ResolvedDeployment
    default_params: dict[str, Any]
    timeout: float | None = None  # the deployment's own; None: the router's default
    health_status: str = "unknown"
    max_input_tokens: int | None = None  # the context window, when known
    cooldown_time: float | None = None  # the deployment's own; None: the router's
    # Why the deployment must not be called (an environment variable it may not read), else None.
    refused: str | None = None


# LiteLLM litellm_params that configure the call (or the router, or pricing) rather than being
# request parameters: they are never sent upstream. Anything else in extra_params is a default
# request parameter (temperature, max_tokens, top_k, mock_response...) that the caller may override.
CALL_OPTIONS = (
    frozenset(
        {
            "drop_params",
            "extra_headers",
            "organization",
            "stream_timeout",
            "max_retries",
            "num_retries",
            "timeout",
            "rpm",
            "tpm",
            "weight",
            "order",
            "tags",
            "region_name",
            "custom_llm_provider",
            "base_model",
            "input_cost_per_token",
            "output_cost_per_token",
            "input_cost_per_second",
            "output_cost_per_second",
            "max_parallel_requests",
            "litellm_credential_name",
            "use_in_pass_through",
            "cooldown_time",
            "merge_reasoning_content_in_choices",
            "configurable_clientside_auth_params",
            "model_info",
        }
    )
    | PRICE_FIELDS
)  # per-deployment prices (LiteLLM's custom pricing) are read by billing, never sent


def _referenced(value: str | None) -> str | None:
    """Return ``value`` with an ``os.environ/NAME`` reference read, if a deployment may read NAME."""
    return env_reference(value, allowed=env_reference_allowed)


def _extra_headers(extra: dict[str, Any]) -> dict[str, str]:
    headers = {
        str(name): _referenced(str(value)) or "" for name, value in (extra.get("extra_headers") or {}).items()
    }
    if extra.get("organization"):
        headers.setdefault("OpenAI-Organization", str(_referenced(extra["organization"])))
    return headers


def _upstream(deployment: Deployment, spec: ProviderSpec, extra: dict[str, Any]) -> ResolvedDeployment:
    """Return where and how to call the deployment; raise EnvReferenceError before reading a variable
    the deployment may not read."""
    environment = credentials_from_environment(spec)
    if deployment.credential:
        api_key = credential_decrypt(deployment.credential)
    elif deployment.credential_env:
        api_key = _referenced(f"os.environ/{deployment.credential_env}")
    else:
        api_key = environment["api_key"]
    return ResolvedDeployment(
        provider=spec.name,
        model=deployment.model,
        api_base=_referenced(deployment.api_base) or environment["api_base"] or spec.api_base,
        api_key=api_key,
        api_version=_referenced(deployment.api_version) or environment["api_version"],
        extra_headers=_extra_headers(extra),
        timeout=deployment.timeout or DEFAULT_TIMEOUT,
        drop_params=bool(extra.get("drop_params")),
    )


def deployment_snapshot(deployment: Deployment) -> DeploymentSnapshot:
    """Return a deployment with its credential decrypted (or read from its environment variable).

    A deployment referencing a variable it may not read (a row written around the admin's and the
    API's checks) gets no credential, headers or address at all, and ``refused`` says why: the
    router does not call it.
    """
    spec = PROVIDERS[deployment.provider]
    extra = dict(deployment.extra_params or {})
    refused = None
    try:
        upstream = _upstream(deployment, spec, extra)
    except EnvReferenceError as error:
        refused = f"Deployment '{deployment.model_id}' is not called. {env_reference_refusal([error.name])}"
        logger.error("%s", refused)
        upstream = ResolvedDeployment(provider=spec.name, model=deployment.model, api_base=None, api_key=None)
    return DeploymentSnapshot(
        model_id=deployment.model_id,
        model_name=deployment.model_name,
        mode=deployment.mode,
        weight=deployment.weight,
        order=deployment.order,
        rpm=deployment.rpm,
        tpm=deployment.tpm,
        spec=spec,
        upstream=upstream,
        default_params={name: value for name, value in extra.items() if name not in CALL_OPTIONS},
        timeout=deployment.timeout,
        health_status=deployment.health_status,
        max_input_tokens=_context_window(deployment, extra),
        cooldown_time=_seconds(extra.get("cooldown_time")),
        refused=refused,
    )


def _context_window(deployment: Deployment, extra: dict[str, Any]) -> int | None:
    """Return the deployment's input token limit: its model_info's, else the price table's."""
    info = deployment.model_info or {}
    declared = info.get("max_input_tokens") or info.get("max_tokens")
    if isinstance(declared, int) and declared > 0:
        return declared
    for model in filter(None, (info.get("base_model"), extra.get("base_model"), deployment.model)):
        window = context_window(str(model), PROVIDERS[deployment.provider].name)
        if window:
            return int(window)
    return None


def _seconds(value: Any) -> float | None:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None
    )


class ConfigSnapshots:
    """This process's snapshots and the generation they were taken at."""

    def __init__(self) -> None:
        self.keys: OrderedDict[str, KeySnapshot] = OrderedDict()
        self.unknown_keys: OrderedDict[str, None] = OrderedDict()
        self.deployments: dict[str, tuple[DeploymentSnapshot, ...]] | None = None
        self.router_settings: RouterSettings | None = None
        self._loads = SingleFlight()
        self.epoch = 0
        self.end_users: OrderedDict[str, tuple[LimitsSnapshot, bool] | None] = OrderedDict()
        self.generation: str | None = None
        self.checked_at = 0.0
        self.taken_at = 0.0

    def clear(self) -> None:
        self.epoch += 1  # a load under way when the snapshots are dropped must not put its row back
        self.end_users.clear()
        self.keys.clear()
        self.unknown_keys.clear()
        self.deployments = None
        self.router_settings = None

    async def refresh_if_stale(self) -> None:
        """Drop the snapshots if another instance changed the configuration, or if they are too old."""
        now = time.monotonic()
        if now - self.checked_at < gateway_setting("CONFIG_REFRESH_SECONDS"):
            return
        self.checked_at = now
        generation = await cache.aget(GENERATION_CACHE_KEY)
        # The age limit is a backstop for a change whose signal never came (a raw SQL write, an
        # evicted cache entry): such a change still takes effect within SNAPSHOT_MAX_AGE seconds.
        if generation != self.generation or now - self.taken_at > SNAPSHOT_MAX_AGE:
            self.clear()
            self.generation = generation
            self.taken_at = now

    async def key_get(self, key_hash: str) -> KeySnapshot | None:
        """Return the snapshot of the key with this hash, or None if there is no such key."""
        await self.refresh_if_stale()
        snapshot = self.keys.get(key_hash)
        if snapshot is not None or key_hash in self.unknown_keys:
            return snapshot
        return await self._loads.run(("key", key_hash, self.epoch), lambda: self._key_load(key_hash))

    async def _key_load(self, key_hash: str) -> KeySnapshot | None:
        epoch = self.epoch
        keys = VirtualKey.objects.select_related("team", "user__budget")
        key = await keys.filter(key_hash=key_hash).afirst()
        snapshot = None if key is None else KeySnapshot.from_key(key)
        if epoch != self.epoch:  # the snapshots were dropped meanwhile: don't keep a stale row
            return snapshot
        if snapshot is None:
            self.unknown_keys[key_hash] = None
            if len(self.unknown_keys) > MAX_UNKNOWN_KEYS:
                self.unknown_keys.popitem(last=False)
            return None
        self.keys[key_hash] = snapshot
        if len(self.keys) > MAX_CACHED_KEYS:
            self.keys.popitem(last=False)
        return snapshot

    async def end_user_get(self, scope: EndUserScope, user_id: str) -> tuple[LimitsSnapshot, bool]:
        """Return ``scope``'s end user's limits and whether it is blocked (no row: no limits)."""
        await self.refresh_if_stale()
        cache_id = scope.limiter_id(user_id)
        if cache_id in self.end_users:
            cached = self.end_users[cache_id]
        else:
            cached = await self._loads.run(
                ("end_user", cache_id, self.epoch), lambda: self._end_user_load(scope, user_id, cache_id)
            )
        return cached if cached is not None else (NO_LIMITS, False)

    async def _end_user_load(
        self, scope: EndUserScope, user_id: str, cache_id: str
    ) -> tuple[LimitsSnapshot, bool] | None:
        epoch = self.epoch
        row = await EndUser.objects.filter(**scope.filters, user_id=user_id).afirst()
        cached = None if row is None else (LimitsSnapshot.of(row), row.blocked)
        if epoch == self.epoch:
            self.end_users[cache_id] = cached
            if len(self.end_users) > MAX_CACHED_KEYS:
                self.end_users.popitem(last=False)
        return cached

    async def deployments_get(self) -> dict[str, tuple[DeploymentSnapshot, ...]]:
        """Return every enabled deployment, grouped by the model name clients ask for."""
        await self.refresh_if_stale()
        if self.deployments is not None:
            return self.deployments
        return await self._loads.run(("deployments", self.epoch), self._deployments_load)

    async def _deployments_load(self) -> dict[str, tuple[DeploymentSnapshot, ...]]:
        epoch = self.epoch
        groups: dict[str, list[DeploymentSnapshot]] = {}
        async for deployment in Deployment.objects.filter(enabled=True).order_by("order", "model_id"):
            groups.setdefault(deployment.model_name, []).append(deployment_snapshot(deployment))
        deployments = {name: tuple(group) for name, group in groups.items()}
        if epoch == self.epoch:
            self.deployments = deployments
        return deployments

    async def router_settings_get(self) -> RouterSettings:
        """Return the router's settings (the defaults when the row is missing or invalid)."""
        await self.refresh_if_stale()
        if self.router_settings is not None:
            return self.router_settings
        return await self._loads.run(("router_settings", self.epoch), self._router_settings_load)

    async def _router_settings_load(self) -> RouterSettings:
        epoch = self.epoch
        row = await GatewaySettings.objects.filter(pk=1).afirst()
        try:
            settings = RouterSettings.parse(row.router_settings if row else None)
        except RouterSettingsError as error:
            # The admin and the config import validate; this is a row written some other way.
            logger.error("Invalid router_settings, using the defaults: %s", error)
            settings = DEFAULT_SETTINGS
        if epoch == self.epoch:
            self.router_settings = settings
        return settings


snapshots = ConfigSnapshots()


def config_changed() -> None:
    """Forget this process's snapshots and tell the other instances to forget theirs."""
    snapshots.clear()
    # A fresh random value rather than an increment: two writers can never produce the same value,
    # so no instance can mistake a second change for the first one it already saw.
    cache.set(GENERATION_CACHE_KEY, uuid.uuid4().hex, timeout=None)
