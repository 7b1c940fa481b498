"""The gateway's Celery tasks: thin and idempotent, each calls one service. billing/schedule.py runs them."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from celery import shared_task

from llm_gateway.services.health_checks import deployments_health_check


@shared_task
def deployments_health_check_task(model_ids: list[str] | None = None) -> dict[str, int]:
    """Probe every enabled deployment (or those ``model_ids``), record the results, prune old ones.

    Returns the counts: checked, healthy, unhealthy, changed (status flips), pruned (history rows).
    ``async_to_sync`` rather than ``asyncio.run``: the service's database writes then run on this
    worker thread, whose connection Celery's Django integration opens and closes around each task.
    """
    return async_to_sync(deployments_health_check)(model_ids=model_ids)
