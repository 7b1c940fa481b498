"""Probe deployments, record each result, and mark them healthy or unhealthy.

Each enabled deployment gets the cheapest call its mode allows: a one-token chat or completion, a
one-word embedding, and for image generation (or any mode a probe would pay real money for) the
provider's model list, which proves the base URL and the credential without generating anything.
Probes run concurrently, at most HEALTH_CHECK_CONCURRENCY at once, each within
HEALTH_CHECK_TIMEOUT_SECONDS (or the deployment's own timeout, when shorter).

Every probe becomes a ``DeploymentHealthCheck`` row; the latest result is also copied onto the
deployment (status, time, latency, error) so the admin's list and the router read it without a join.
History older than HEALTH_CHECK_RETENTION_DAYS is deleted by the same run. The health fields are
written with ``update()``: they are not configuration, so they do not fire the save signals that
invalidate every instance's snapshots; ``config_changed()`` is called only when a status flipped,
the one thing the router reads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from llm_gateway.conf import gateway_setting
from llm_gateway.crypto import CredentialDecryptionError
from llm_gateway.lookups import DeploymentSnapshot, config_changed, deployment_snapshot
from llm_gateway.models import Deployment, DeploymentHealthCheck
from providers import engine
from providers.exceptions import APIError

logger = logging.getLogger(__name__)

PROBE_TEXT = "ping"
MAX_ERROR_CHARS = 1000
# The probe call of each mode; any other mode (image generation, or one added later) lists models.
PROBES: dict[str, tuple[str, dict[str, Any]]] = {
    Deployment.Mode.CHAT: ("chat", {"messages": [{"role": "user", "content": PROBE_TEXT}], "max_tokens": 1}),
    Deployment.Mode.COMPLETION: ("text_completion", {"prompt": PROBE_TEXT, "max_tokens": 1}),
    Deployment.Mode.EMBEDDING: ("embedding", {"input": PROBE_TEXT}),
}


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe found. ``http_status`` is the upstream's answer to a failed probe, if any."""

    healthy: bool
    checked_at: datetime
    latency_ms: int
    error_type: str = ""
    error: str = ""
    http_status: int | None = None


def probe_timeout(snapshot: DeploymentSnapshot) -> float:
    """Return the seconds one probe of this deployment may take."""
    return min(gateway_setting("HEALTH_CHECK_TIMEOUT_SECONDS"), snapshot.upstream.timeout)


async def _probe_call(snapshot: DeploymentSnapshot) -> None:
    upstream = dataclasses.replace(snapshot.upstream, timeout=probe_timeout(snapshot))
    probe = PROBES.get(snapshot.mode)
    if probe is None:
        await engine.alist_models(upstream, snapshot.spec)
        return
    operation, probe_body = probe
    body = engine.request_body_for(snapshot.spec, {**snapshot.default_params, **probe_body})
    await engine.acall(operation, body, upstream, snapshot.spec)


def _error_text(error: APIError, snapshot: DeploymentSnapshot) -> str:
    """Return the error's message with the deployment's credentials masked, cut to MAX_ERROR_CHARS."""
    # The engine already masks the API key in upstream errors; extra headers can carry secrets too.
    for secret in (snapshot.upstream.api_key, *snapshot.upstream.extra_headers.values()):
        error.redact(secret)
    return str(error)[:MAX_ERROR_CHARS]


def _failure(
    error: APIError, snapshot: DeploymentSnapshot, checked_at: datetime, latency_ms: int
) -> ProbeResult:
    return ProbeResult(
        healthy=False,
        checked_at=checked_at,
        latency_ms=latency_ms,
        error_type=error.type,
        error=_error_text(error, snapshot),
        # An error raised before any answer (a timeout, a refused connection, a missing api_base)
        # has no upstream headers: there is no HTTP status to record.
        http_status=error.upstream_status if error.headers else None,
    )


async def deployment_probe(*, deployment: Deployment) -> ProbeResult:
    """Probe one deployment with the cheapest call for its mode and return what happened."""
    checked_at = timezone.now()
    started = time.monotonic()
    try:
        snapshot = deployment_snapshot(deployment)
    except CredentialDecryptionError as error:
        return ProbeResult(
            healthy=False,
            checked_at=checked_at,
            latency_ms=0,
            error_type="credential_error",
            error=str(error),
        )
    if snapshot.refused is not None:  # not called, as the router does not call it
        return ProbeResult(
            healthy=False,
            checked_at=checked_at,
            latency_ms=0,
            error_type="credential_error",
            error=snapshot.refused,
        )
    try:
        await _probe_call(snapshot)
    except APIError as error:
        return _failure(error, snapshot, checked_at, _elapsed_ms(started))
    except Exception:
        # A bug (an adapter choking on an odd body, say) must not cost the other deployments their
        # results: this one is recorded unhealthy, and the traceback goes to the log.
        logger.exception("Health check of deployment %s failed unexpectedly", deployment.model_id)
        error = APIError("The health check failed unexpectedly; the gateway's log has the details.")
        return _failure(error, snapshot, checked_at, _elapsed_ms(started))
    return ProbeResult(healthy=True, checked_at=checked_at, latency_ms=_elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


async def deployments_health_check(*, model_ids: Collection[str] | None = None) -> dict[str, int]:
    """Probe deployments concurrently, record the results, and return how many were checked and found.

    ``model_ids`` limits the run to those deployments, enabled or not (the admin's "run now");
    by default every enabled deployment is probed.
    """
    deployments = Deployment.objects.order_by("pk")
    if model_ids is None:
        deployments = deployments.filter(enabled=True)
    else:
        deployments = deployments.filter(model_id__in=list(model_ids))
    rows = [deployment async for deployment in deployments]
    bound = asyncio.Semaphore(gateway_setting("HEALTH_CHECK_CONCURRENCY"))

    async def probe(deployment: Deployment) -> ProbeResult:
        async with bound:
            return await deployment_probe(deployment=deployment)

    results = await asyncio.gather(*(probe(deployment) for deployment in rows))
    changed = await sync_to_async(health_checks_record)(
        results={deployment.pk: result for deployment, result in zip(rows, results, strict=True)}
    )
    pruned = await sync_to_async(health_checks_prune)(now=timezone.now())
    healthy = sum(result.healthy for result in results)
    return {
        "checked": len(results),
        "healthy": healthy,
        "unhealthy": len(results) - healthy,
        "changed": changed,
        "pruned": pruned,
    }


def health_checks_record(*, results: dict[int, ProbeResult]) -> int:
    """Store probe results by deployment pk; return how many deployments changed status.

    Deployments deleted while they were being probed are skipped. When a status changed, every
    instance is told to re-read its deployments once this transaction commits.
    """
    with transaction.atomic():
        statuses = dict(
            Deployment.objects.select_for_update()
            .filter(pk__in=list(results))
            .values_list("pk", "health_status")
        )
        history = []
        changed = 0
        for pk, result in results.items():
            if pk not in statuses:
                continue
            status = Deployment.Health.HEALTHY if result.healthy else Deployment.Health.UNHEALTHY
            changed += statuses[pk] != status
            Deployment.objects.filter(pk=pk).update(
                health_status=status,
                health_checked_at=result.checked_at,
                health_latency_ms=result.latency_ms,
                health_error=result.error,
            )
            history.append(DeploymentHealthCheck(deployment_id=pk, **dataclasses.asdict(result)))
        DeploymentHealthCheck.objects.bulk_create(history)
        if changed:
            transaction.on_commit(config_changed)
    return changed


def health_checks_prune(*, now: datetime) -> int:
    """Delete health checks older than HEALTH_CHECK_RETENTION_DAYS (0 keeps them all); return how many."""
    days = gateway_setting("HEALTH_CHECK_RETENTION_DAYS")
    if not days:
        return 0
    deleted, _ = DeploymentHealthCheck.objects.filter(checked_at__lt=now - timedelta(days=days)).delete()
    return deleted
