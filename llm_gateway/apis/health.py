"""Health endpoints for load balancers and orchestrators; deployments' health and log lines for admins.

Paths and shapes follow LiteLLM's proxy: ``/health/liveliness`` (the process answers),
``/health/readiness`` (its database and cache answer too), ``/health`` (each deployment's latest
health check; the Celery task of ``llm_gateway.services.health_checks`` makes them, so reading this
calls no upstream), ``/ollama_logs`` (LiteLLM's name for the server's recent log lines; here, this
process's, from ``llm_gateway.log_buffer``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from importlib.metadata import PackageNotFoundError, version

import redis
from asgiref.sync import sync_to_async
from django import db
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from django_redis.exceptions import ConnectionInterrupted

from llm_gateway.apis.errors import error_response
from llm_gateway.authentication import caller_authenticate, presented_key
from llm_gateway.log_buffer import recent_lines
from llm_gateway.models import Deployment
from llm_gateway.selectors import deployment_health_list
from providers.exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from providers.registry import PROVIDERS

logger = logging.getLogger(__name__)

try:
    VERSION = version("llm-gateway")
except PackageNotFoundError:  # run from a checkout that was never installed
    VERSION = "unknown"

PROBE_TIMEOUT = 5.0  # seconds; orchestrators' readiness probes usually give up after 1-10 s
DEFAULT_LOG_LINES = 200
CACHE_ERRORS = (ConnectionInterrupted, redis.RedisError, OSError)


# Probes send no cookies: exempt from CSRF so a wrong method gets a 405, not a 403.
@csrf_exempt
@require_safe
async def liveliness(request: HttpRequest) -> JsonResponse:
    """Answer that the process is up and serving requests."""
    return JsonResponse({"status": "healthy"})


@csrf_exempt
@require_safe
async def readiness(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the database and the cache answer, else 503 naming the one that does not."""
    database_status, cache_status = await asyncio.gather(_database_probe(), _cache_probe())
    healthy = database_status == "connected" and cache_status == "connected"
    return JsonResponse(
        {
            "status": "healthy" if healthy else "unhealthy",
            "db": database_status,
            "cache": cache_status,
            "version": VERSION,
        },
        status=200 if healthy else 503,
    )


@require_safe
async def ollama_logs(request: HttpRequest) -> HttpResponse:
    """Return this process's most recent log lines (``?lines=``, default 200), to admins only."""
    try:
        await _admin_require(request, "the logs")
        count = _lines_param(request)
    except APIError as error:
        return error_response(error)
    lines = recent_lines.tail(count)
    return JsonResponse({"lines": lines, "count": len(lines), "capacity": recent_lines.capacity})


@require_safe
async def deployments_health(request: HttpRequest) -> HttpResponse:
    """Return every enabled deployment's latest health check (``?model=`` one group), to admins only."""
    model_name = request.GET.get("model") or None
    try:
        await _admin_require(request, "the deployments' health")
        deployments = [row async for row in deployment_health_list(model_name=model_name)]
        if model_name and not deployments:
            raise NotFoundError(f"No enabled deployment serves the model '{model_name}'.", param="model")
    except APIError as error:
        return error_response(error)
    healthy = [_endpoint(row) for row in deployments if row.health_status == Deployment.Health.HEALTHY]
    unhealthy = [_endpoint(row) for row in deployments if row.health_status == Deployment.Health.UNHEALTHY]
    # Deployments never checked yet (status unknown) are in neither list, as LiteLLM lists only
    # what it checked; the extra key says how many there are.
    return JsonResponse(
        {
            "healthy_endpoints": healthy,
            "unhealthy_endpoints": unhealthy,
            "healthy_count": len(healthy),
            "unhealthy_count": len(unhealthy),
            "unchecked_count": len(deployments) - len(healthy) - len(unhealthy),
        }
    )


def _endpoint(deployment: Deployment) -> dict:
    # The configured api_base as written (an os.environ/NAME reference is shown, never resolved),
    # else the provider's default.
    spec = PROVIDERS.get(deployment.provider)
    return {
        "model": deployment.model_name,
        "model_id": deployment.model_id,
        "provider": deployment.provider,
        "api_base": deployment.api_base or (spec.api_base if spec else None),
        "latency_ms": deployment.health_latency_ms,
        "checked_at": deployment.health_checked_at.isoformat() if deployment.health_checked_at else None,
        "error": deployment.health_error or None,
    }


async def _database_probe() -> str:
    try:
        await asyncio.wait_for(sync_to_async(_database_query)(), PROBE_TIMEOUT)
    except (db.Error, TimeoutError) as error:
        logger.warning("Readiness: the database does not answer: %s", error)
        return "disconnected"
    return "connected"


def _database_query() -> None:
    with db.connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _cache_probe() -> str:
    probe_key, probe_value = f"llm_gateway:readiness:{uuid.uuid4().hex}", uuid.uuid4().hex
    try:
        await asyncio.wait_for(cache.aset(probe_key, probe_value, timeout=10), PROBE_TIMEOUT)
        answer = await asyncio.wait_for(cache.aget(probe_key), PROBE_TIMEOUT)
        await asyncio.wait_for(cache.adelete(probe_key), PROBE_TIMEOUT)
    except (*CACHE_ERRORS, TimeoutError) as error:
        logger.warning("Readiness: the cache does not answer: %s", error)
        return "disconnected"
    if answer != probe_value:
        logger.warning("Readiness: the cache did not return what was just stored in it")
        return "not storing"
    return "connected"


async def _admin_require(request: HttpRequest, what: str) -> None:
    """Let the master key or a superuser's admin session through; raise 401 or 403 otherwise."""
    if presented_key(request):
        caller = await caller_authenticate(request)  # 401 for an unknown, blocked or expired key
        if not caller.is_master:
            raise PermissionDeniedError(f"Only the master key or an admin may read {what}.", code="forbidden")
        return
    user = await request.auser()
    if not user.is_authenticated:
        raise AuthenticationError(
            "Send the master key as 'Authorization: Bearer ...', or sign in to the admin.",
            code="invalid_api_key",
        )
    if not user.is_superuser:
        raise PermissionDeniedError(f"Only an admin (superuser) may read {what}.", code="forbidden")


def _lines_param(request: HttpRequest) -> int:
    raw = request.GET.get("lines")
    if raw is None:
        return DEFAULT_LOG_LINES
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if not 1 <= count <= recent_lines.capacity:
        raise BadRequestError(
            f"'lines' must be a whole number from 1 to {recent_lines.capacity}.", param="lines"
        )
    return count
