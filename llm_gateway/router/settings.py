"""The router's settings: LiteLLM's ``router_settings``, read once per configuration snapshot.

They come from the ``router_settings`` section of the config file or the admin (both write
``GatewaySettings.router_settings``). Names and defaults follow LiteLLM's Router, so a LiteLLM
config behaves the same here; the few settings LiteLLM does not have are marked below. Settings this
router does not use (``redis_host``, ``provider_budget_config``...) are kept in the row but ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.caching import DEFAULT_TTL, NAMESPACE_PATTERN
from providers.exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
    RateLimitError,
    Timeout,
)

STRATEGIES = frozenset(
    {
        "simple-shuffle",
        "least-busy",
        "latency-based-routing",
        "usage-based-routing",
        "cost-based-routing",
    }
)
# LiteLLM's other spellings of the same strategies.
STRATEGY_ALIASES = {"usage-based-routing-v2": "usage-based-routing"}

# LiteLLM's RetryPolicy fields, and the error classes each one covers (most specific first: a
# content-policy error is a bad request too).
RETRY_POLICY_FIELDS: tuple[tuple[str, type[APIError]], ...] = (
    ("ContentPolicyViolationErrorRetries", ContentPolicyViolationError),
    ("BadRequestErrorRetries", BadRequestError),
    ("AuthenticationErrorRetries", AuthenticationError),
    ("TimeoutErrorRetries", Timeout),
    ("RateLimitErrorRetries", RateLimitError),
    ("InternalServerErrorRetries", InternalServerError),
)


# Who shares response cache entries (CacheSettings.scope).
CACHE_SCOPES = ("team", "global")


class RouterSettingsError(ValueError):
    """A router setting has the wrong shape; the message names it."""


@dataclass(frozen=True)
class CacheSettings:
    """The response cache: ``cache_responses`` and ``cache_params`` (``ttl``, ``namespace``, ``scope``).

    ``ttl`` is also the longest a request's own ``ttl`` may keep an entry. ``namespace``, when set, is
    one more key prefix inside the cache's own. ``scope`` (not in LiteLLM) says who shares entries:
    ``team`` (the default: a team's keys share theirs, a key without a team and the master key have
    their own) or ``global`` (every caller shares every entry).
    """

    enabled: bool = False
    ttl: float = DEFAULT_TTL
    namespace: str | None = None
    scope: str = "team"

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> CacheSettings:
        params = _mapping(raw, "cache_params")
        ttl = _seconds(params, "ttl", DEFAULT_TTL) or DEFAULT_TTL
        namespace = params.get("namespace") or None
        if not (namespace is None or (isinstance(namespace, str) and NAMESPACE_PATTERN.fullmatch(namespace))):
            raise RouterSettingsError(
                "router_settings.cache_params.namespace must be 1 to 64 letters, digits or '_.:-', "
                f"not {namespace!r}"
            )
        scope = params.get("scope") or cls.scope
        if scope not in CACHE_SCOPES:
            raise RouterSettingsError(
                f"router_settings.cache_params.scope must be one of {', '.join(CACHE_SCOPES)}, not {scope!r}"
            )
        return cls(
            enabled=bool(raw.get("cache_responses", False)), ttl=ttl, namespace=namespace, scope=scope
        )


def _int(raw: Mapping[str, Any], name: str, default: int) -> int:
    value = raw.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RouterSettingsError(f"router_settings.{name} must be a whole number >= 0, not {value!r}")
    return value


def _seconds(raw: Mapping[str, Any], name: str, default: float | None) -> float | None:
    value = raw.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise RouterSettingsError(f"router_settings.{name} must be a number of seconds >= 0, not {value!r}")
    return float(value)


def _strategy(value: Any, where: str) -> str:
    value = STRATEGY_ALIASES.get(value, value)
    if value not in STRATEGIES:
        raise RouterSettingsError(f"{where} must be one of {', '.join(sorted(STRATEGIES))}, not {value!r}")
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise RouterSettingsError(f"{where} must be a list of model names")
    return tuple(value)


def _fallbacks(raw: Mapping[str, Any], name: str) -> dict[str, tuple[str, ...]]:
    """Read LiteLLM's ``[{"group": ["fallback", ...]}, ...]`` (a plain mapping is accepted too)."""
    value = raw.get(name) or []
    entries = [value] if isinstance(value, Mapping) else value
    if not isinstance(entries, list) or not all(isinstance(entry, Mapping) for entry in entries):
        raise RouterSettingsError(f'router_settings.{name} must be a list of {{"model": ["fallback", ...]}}')
    merged: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        for group, targets in entry.items():
            merged[str(group)] = _names(targets, f"router_settings.{name}[{group!r}]")
    return merged


def _retry_policy(value: Any, where: str) -> dict[type[APIError], int]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise RouterSettingsError(f"{where} must be a mapping like {{'RateLimitErrorRetries': 3}}")
    classes = dict(RETRY_POLICY_FIELDS)
    unknown = sorted(set(value) - set(classes))
    if unknown:
        raise RouterSettingsError(
            f"{where}: unknown fields {', '.join(unknown)}; known: {', '.join(classes)}"
        )
    return {classes[name]: _int(value, name, 0) for name in value if value[name] is not None}


def _aliases(raw: Mapping[str, Any]) -> tuple[dict[str, str], frozenset[str]]:
    """Read ``model_group_alias``: ``{"alias": "group"}`` or LiteLLM's ``{"alias": {"model": "group",
    "hidden": true}}``; return the aliases and the hidden ones.

    An alias only renames a group: who may call it is decided on the group it resolves to (the
    router's access check), so a router alias cannot reach a group the caller's lists do not allow.
    """
    aliases, hidden = {}, set()
    for alias, target in raw.items():
        where = f"router_settings.model_group_alias[{alias!r}]"
        if isinstance(target, Mapping):
            if not isinstance(target.get("hidden", False), bool):
                raise RouterSettingsError(f"{where}.hidden must be true or false")
            if target.get("hidden"):
                hidden.add(str(alias))
            target = target.get("model")
        if not isinstance(alias, str) or not alias or not isinstance(target, str) or not target:
            raise RouterSettingsError(f'{where} must name a model group: "alias": "group"')
        aliases[alias] = target
    return aliases, frozenset(hidden)


def _mapping(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, Mapping):
        raise RouterSettingsError(f"router_settings.{name} must be a mapping")
    return value


@dataclass(frozen=True)
class RouterSettings:
    routing_strategy: str = "simple-shuffle"
    # Not in LiteLLM: a strategy for some model groups, overriding routing_strategy for them.
    model_group_routing_strategy: dict[str, str] = field(default_factory=dict)
    model_group_alias: dict[str, str] = field(default_factory=dict)
    hidden_aliases: frozenset[str] = frozenset()  # aliases /v1/models does not list
    num_retries: int = 0
    retry_policy: dict[type[APIError], int] = field(default_factory=dict)
    model_group_retry_policy: dict[str, dict[type[APIError], int]] = field(default_factory=dict)
    allowed_fails: int = 3  # failures in a minute that send a deployment into cooldown
    cooldown_time: float = 5.0
    disable_cooldowns: bool = False
    fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    context_window_fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    content_policy_fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default_fallbacks: tuple[str, ...] = ()
    timeout: float | None = None  # per attempt, for deployments without their own timeout
    # Not in LiteLLM: the time one request may take over all its retries and fallbacks.
    total_timeout: float | None = None
    enable_pre_call_checks: bool = True  # skip deployments whose context window the prompt exceeds
    # Not in LiteLLM: route around deployments the health-check task found unhealthy.
    skip_unhealthy_deployments: bool = True
    cache: CacheSettings = field(default_factory=CacheSettings)

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> RouterSettings:
        """Return the settings in ``raw`` (a router_settings mapping); raise RouterSettingsError."""
        raw = raw or {}
        if not isinstance(raw, Mapping):
            raise RouterSettingsError("router_settings must be a mapping")
        groups = _mapping(raw, "model_group_routing_strategy")
        group_policies = _mapping(raw, "model_group_retry_policy")
        aliases, hidden_aliases = _aliases(_mapping(raw, "model_group_alias"))
        return cls(
            routing_strategy=_strategy(
                raw.get("routing_strategy") or "simple-shuffle", "router_settings.routing_strategy"
            ),
            model_group_routing_strategy={
                str(group): _strategy(value, f"router_settings.model_group_routing_strategy[{group!r}]")
                for group, value in groups.items()
            },
            model_group_alias=aliases,
            hidden_aliases=hidden_aliases,
            num_retries=_int(raw, "num_retries", 0),
            retry_policy=_retry_policy(raw.get("retry_policy"), "router_settings.retry_policy"),
            model_group_retry_policy={
                str(group): _retry_policy(policy, f"router_settings.model_group_retry_policy[{group!r}]")
                for group, policy in group_policies.items()
            },
            allowed_fails=_int(raw, "allowed_fails", 3),
            cooldown_time=_seconds(raw, "cooldown_time", 5.0) or 0.0,
            disable_cooldowns=bool(raw.get("disable_cooldowns", False)),
            fallbacks=_fallbacks(raw, "fallbacks"),
            context_window_fallbacks=_fallbacks(raw, "context_window_fallbacks"),
            content_policy_fallbacks=_fallbacks(raw, "content_policy_fallbacks"),
            default_fallbacks=_names(raw.get("default_fallbacks") or [], "router_settings.default_fallbacks"),
            timeout=_seconds(raw, "timeout", None),
            total_timeout=_seconds(raw, "total_timeout", None),
            enable_pre_call_checks=bool(raw.get("enable_pre_call_checks", True)),
            skip_unhealthy_deployments=bool(raw.get("skip_unhealthy_deployments", True)),
            cache=CacheSettings.parse(raw),
        )

    def strategy_for(self, group: str) -> str:
        return self.model_group_routing_strategy.get(group, self.routing_strategy)

    def retries_for(self, group: str, error: APIError) -> int:
        """Return how many retries ``error`` allows in ``group``: the retry policy, else num_retries
        for errors a retry can help with, else none."""
        for policy in (self.model_group_retry_policy.get(group), self.retry_policy):
            for error_class, retries in (policy or {}).items():
                if isinstance(error, error_class):
                    return retries
        return self.num_retries if error.retryable else 0

    def fallbacks_for(self, group: str, error: APIError) -> tuple[str, ...]:
        """Return the groups to try after ``group`` failed with ``error``, in order."""
        specific: tuple[str, ...] = ()
        if isinstance(error, ContextWindowExceededError):
            specific = self.context_window_fallbacks.get(group, ())
        elif isinstance(error, ContentPolicyViolationError):
            specific = self.content_policy_fallbacks.get(group, ())
        elif isinstance(error, BadRequestError) or error.status_code == 422:
            return ()  # the caller's request is at fault: another model would refuse it too
        return specific or self.fallbacks.get(group) or self.default_fallbacks


DEFAULT_SETTINGS = RouterSettings()
