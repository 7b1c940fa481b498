"""Every periodic task of the gateway, in one place, with the reason for its timing.

The schedule lives in the database (django-celery-beat's PeriodicTask, editable in the admin) so
operators can pause or retime a task without a deploy. ``schedule_install`` runs after every
``migrate`` (billing/apps.py): it creates the missing rows and keeps each row's task name and
description in step with this module; the timing and the enabled flag of an existing row belong to
the admin and are left alone. Rows of entries removed from here are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction

NAME_PREFIX = "billing: "


@dataclass(frozen=True)
class PeriodicEntry:
    task: str
    description: str
    every: timedelta | None = None  # an interval schedule...
    crontab: dict[str, str] | None = None  # ...or a crontab one (UTC)
    # A run still queued after this long is dropped: a worker that was down must not replay a backlog.
    expires: timedelta | None = None


SCHEDULE: dict[str, PeriodicEntry] = {
    # The stream holds records that dashboards, spend fields and alerts do not see yet: drain it
    # often. Each run reads what is waiting and returns; a no-op in the embedded mode.
    f"{NAME_PREFIX}consume the ledger stream": PeriodicEntry(
        task="billing.tasks.ledger_consume_task",
        description="Move usage records from the Redis stream into the ledger.",
        every=timedelta(seconds=2),
        expires=timedelta(seconds=10),
    ),
    # Dashboards and the spend shown on keys and teams are this fresh. Rebuilding two days is one
    # GROUP BY each, cheap enough every few minutes; enforcement does not wait for it (the limiter's
    # counters do that).
    f"{NAME_PREFIX}roll up spend": PeriodicEntry(
        task="billing.tasks.spend_rollup_task",
        description="Rebuild the spend rollups of today and yesterday, and the spend of keys and teams.",
        every=timedelta(minutes=5),
        expires=timedelta(minutes=5),
    ),
    # Periods can be as short as 30 s, but the limiter steps into a new period on its own; this only
    # brings the stored reset time and spend up to date, so a minute of lag is invisible.
    f"{NAME_PREFIX}reset budgets": PeriodicEntry(
        task="billing.tasks.budget_reset_task",
        description="Zero the spend of budgets whose period ended and set their next reset time.",
        every=timedelta(minutes=1),
        expires=timedelta(minutes=1),
    ),
    # Alerts read the spend fields, which the rollup task refreshes every 5 minutes: checking more
    # often would find nothing new. A failed webhook or email is retried on the next run.
    f"{NAME_PREFIX}send budget alerts": PeriodicEntry(
        task="billing.tasks.budget_alerts_task",
        description="Send soft-budget and 50/80/95 % budget alerts by webhook and email.",
        every=timedelta(minutes=5),
        expires=timedelta(minutes=5),
    ),
    # The router skips deployments found unhealthy (router_settings.skip_unhealthy_deployments):
    # the interval bounds how long a dead deployment keeps taking traffic and a recovered one stays
    # skipped. A probe is one token or a model list, so 288 a day per deployment cost next to
    # nothing. A run still queued when the next one is due is dropped. (The "billing: " prefix marks
    # the rows this module owns, whichever app the task lives in.)
    f"{NAME_PREFIX}check deployment health": PeriodicEntry(
        task="llm_gateway.tasks.deployments_health_check_task",
        description="Probe every enabled deployment, record status, latency and error; prune old checks.",
        every=timedelta(minutes=5),
        expires=timedelta(minutes=5),
    ),
    # Retention is counted in days, so once a day is enough; at a quiet hour, off the hour when
    # other jobs start. It deletes in small batches, so it never holds a long lock anyway.
    f"{NAME_PREFIX}prune the ledger": PeriodicEntry(
        task="billing.tasks.ledger_prune_task",
        description="Delete ledger rows older than LEDGER_RETENTION_DAYS (the rollups stay).",
        crontab={"minute": "17", "hour": "3"},
        expires=timedelta(hours=12),
    ),
}


@transaction.atomic
def schedule_install() -> None:
    """Create or update the PeriodicTask rows of SCHEDULE, and delete those of removed entries."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    for name, entry in SCHEDULE.items():
        periodic_task = PeriodicTask.objects.filter(name=name).first()
        if periodic_task is None:
            periodic_task = PeriodicTask(name=name)
            if entry.every is not None:
                periodic_task.interval = _interval(IntervalSchedule, entry.every)
            else:
                periodic_task.crontab = _crontab(CrontabSchedule, entry.crontab or {})
            periodic_task.expire_seconds = entry.expires and int(entry.expires.total_seconds())
        elif periodic_task.task == entry.task and periodic_task.description == entry.description:
            continue  # saving would tell a running beat to reload its schedule for nothing
        periodic_task.task = entry.task
        periodic_task.description = entry.description
        periodic_task.save()
    for stale in PeriodicTask.objects.filter(name__startswith=NAME_PREFIX).exclude(name__in=SCHEDULE):
        stale.delete()  # one by one: the model's delete() tells a running beat the schedule changed


def _interval(model, every: timedelta):
    seconds = int(every.total_seconds())
    schedule = model.objects.filter(every=seconds, period=model.SECONDS).first()
    return schedule or model.objects.create(every=seconds, period=model.SECONDS)


def _crontab(model, fields: dict[str, str]):
    values = {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
    values.update(fields)
    schedule = model.objects.filter(timezone="UTC", **values).first()
    return schedule or model.objects.create(timezone="UTC", **values)
