"""System checks that catch a misconfigured gateway at start-up instead of at the first request.

DATABASE_URL is validated in settings instead: Django loads the database backend before checks run.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from kombu.transport import TRANSPORT_ALIASES

from llm_gateway.conf import gateway_setting
from llm_gateway.env_references import (
    NEVER_REFERENCED_NAMES,
    NEVER_REFERENCED_PREFIXES,
    env_reference_forbidden,
)

REDIS_SCHEMES = {"redis", "rediss", "unix"}


@register()
def redis_url_check(app_configs, **kwargs) -> list[CheckMessage]:
    """Flag a REDIS_URL that redis-py cannot connect with."""
    redis_url = gateway_setting("REDIS_URL")
    if not redis_url or urlsplit(redis_url).scheme in REDIS_SCHEMES:
        return []
    return [
        Error(
            f"REDIS_URL has the scheme {urlsplit(redis_url).scheme!r}; Redis URLs start with redis://, "
            "rediss:// (TLS) or unix://.",
            hint="For example REDIS_URL=redis://127.0.0.1:6379/0, or unset it to run without Redis.",
            id="llm_gateway.E001",
        )
    ]


@register()
def celery_broker_check(app_configs, **kwargs) -> list[CheckMessage]:
    """Flag a CELERY_BROKER_URL whose transport kombu does not know."""
    errors = []
    # Celery accepts a ;-separated failover list; "sqla+postgresql://" names the transport first.
    for broker_url in settings.CELERY_BROKER_URL.split(";"):
        transport = urlsplit(broker_url.strip()).scheme.partition("+")[0]
        if transport not in TRANSPORT_ALIASES:
            errors.append(
                Error(
                    f"CELERY_BROKER_URL names the transport {transport!r}, which Celery does not know.",
                    hint="Use redis://, amqp:// (RabbitMQ), or unset it for filesystem broker.",
                    id="llm_gateway.E002",
                )
            )
    return errors


@register(Tags.security)
def secret_key_check(app_configs, **kwargs) -> list[CheckMessage]:
    """Flag a shared-database deployment that relies on the per-machine generated secret key."""
    secret_key_file = gateway_setting("SECRET_KEY_FILE")
    shared_database = settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3"
    if settings.DEBUG or secret_key_file is None or not shared_database:
        return []
    return [
        Warning(
            "DJANGO_SECRET_KEY is not set, so this instance signs sessions and tokens with the key it "
            f"generated in {secret_key_file}; other instances sharing the database generate their own "
            "keys and reject each other's sessions.",
            hint="Set DJANGO_SECRET_KEY to the same long random value on every instance.",
            id="llm_gateway.W001",
        )
    ]


@register()
def health_check_settings_check(app_configs, **kwargs) -> list[CheckMessage]:
    """Flag health-check knobs that would make every probe fail or the task do nothing."""
    errors = []
    if gateway_setting("HEALTH_CHECK_TIMEOUT_SECONDS") <= 0:
        errors.append(
            Error(
                "GATEWAY_HEALTH_CHECK_TIMEOUT_SECONDS must be more than 0: every probe would time out.",
                hint="The default is 30 seconds.",
                id="llm_gateway.E003",
            )
        )
    if gateway_setting("HEALTH_CHECK_CONCURRENCY") < 1:
        errors.append(
            Error(
                "GATEWAY_HEALTH_CHECK_CONCURRENCY must be at least 1: no deployment would be probed.",
                hint="The default is 10 probes at once.",
                id="llm_gateway.E004",
            )
        )
    if gateway_setting("HEALTH_CHECK_RETENTION_DAYS") < 0:
        errors.append(
            Error(
                "GATEWAY_HEALTH_CHECK_RETENTION_DAYS cannot be negative.",
                hint="0 keeps every health check; the default is 7 days.",
                id="llm_gateway.E005",
            )
        )
    return errors


def _prefix_reaches_forbidden(prefix: str) -> bool:
    """Return True if names starting with ``prefix`` include some of the gateway's own variables."""
    return (
        env_reference_forbidden(prefix)
        or any(forbidden.startswith(prefix) for forbidden in NEVER_REFERENCED_PREFIXES)
        or any(name.startswith(prefix) for name in NEVER_REFERENCED_NAMES)
    )


@register(Tags.security)
def env_reference_settings_check(app_configs, **kwargs) -> list[CheckMessage]:
    """Refuse settings that would let deployments read the gateway's own environment variables."""
    errors = []
    names = sorted(name for name in gateway_setting("ENV_REFERENCE_NAMES") if env_reference_forbidden(name))
    if names:
        errors.append(
            Error(
                f"GATEWAY_ENV_REFERENCE_NAMES lists {', '.join(names)}: deployments may never read the "
                "gateway's own variables (they would be sent to the deployment's upstream).",
                hint=f"Remove them. Never allowed: {', '.join(NEVER_REFERENCED_PREFIXES)}* and "
                f"{', '.join(sorted(NEVER_REFERENCED_NAMES))}.",
                id="llm_gateway.E010",
            )
        )
    prefixes = [
        prefix for prefix in gateway_setting("ENV_REFERENCE_PREFIXES") if _prefix_reaches_forbidden(prefix)
    ]
    if prefixes:
        errors.append(
            Error(
                f"GATEWAY_ENV_REFERENCE_PREFIXES has {', '.join(map(repr, prefixes))}, which would let "
                "deployments read the gateway's own variables (they would be sent to the upstream).",
                hint="Use a prefix of your provider variables' own, such as the default LLM_.",
                id="llm_gateway.E011",
            )
        )
    return errors
