"""GATEWAY_REDIS_PREFIX: the first part of every Redis key, read once in the settings."""

import json

PRINT_PREFIXES = """
import json, django
django.setup()
from django.conf import settings
from billing.ledger.redis_stream import ledger_stream
from billing.limits import limiter
from llm_gateway.router.cooldowns import cooldowns_prefix
print(json.dumps({
    "gateway": settings.GATEWAY["REDIS_PREFIX"],
    "cache": settings.CACHES["default"].get("KEY_PREFIX"),
    "limiter": limiter().prefix,
    "ledger": ledger_stream(),
    "cooldowns": cooldowns_prefix(),
    "broker": getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get("global_keyprefix"),
}))
"""
REDIS = "redis://127.0.0.1:1/0"  # never connected to: only the names are read


def _prefixes(run_python, **env: str) -> dict:
    result = run_python("-c", PRINT_PREFIXES, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_redis_name_starts_with_llm_gateway_by_default(run_python):
    prefixes = _prefixes(run_python, REDIS_URL=REDIS, CELERY_BROKER_URL=REDIS, GATEWAY_REDIS_PREFIX="")

    assert prefixes == {
        "gateway": "llm_gateway",
        "cache": "llm_gateway",
        "limiter": "llm_gateway:{limits}",
        "ledger": "llm_gateway:ledger",
        "cooldowns": "llm_gateway:{router}",
        "broker": "llm_gateway:celery:",
    }


def test_every_redis_name_starts_with_the_configured_prefix(run_python):
    prefixes = _prefixes(
        run_python, REDIS_URL=REDIS, CELERY_BROKER_URL=REDIS, GATEWAY_REDIS_PREFIX="acme:gw-1"
    )

    assert prefixes == {
        "gateway": "acme:gw-1",
        "cache": "acme:gw-1",
        "limiter": "acme:gw-1:{limits}",
        "ledger": "acme:gw-1:ledger",
        "cooldowns": "acme:gw-1:{router}",
        "broker": "acme:gw-1:celery:",
    }


def test_a_prefix_that_is_not_a_plain_name_stops_the_start(run_python):
    result = run_python("manage.py", "check", env={"GATEWAY_REDIS_PREFIX": "gw*"})

    assert result.returncode != 0
    assert "GATEWAY_REDIS_PREFIX='gw*'" in result.stderr
