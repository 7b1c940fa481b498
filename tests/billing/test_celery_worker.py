"""Celery: the periodic schedule in the database, and billing tasks run by real worker processes.

The workers and their databases come from tests/celery_workers.py (the ``worker_database`` fixture).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, timedelta

import pytest
import redis
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

import billing.tasks
import llm_gateway.tasks
from billing.schedule import NAME_PREFIX, SCHEDULE, schedule_install
from billing.services.periods import utc_day_start
from billing.services.workers import celery_worker_running
from gateway_project.celery import app
from tests.celery_workers import WorkerDatabase, worker_process

ROLLUP_ENTRY = f"{NAME_PREFIX}roll up spend"

# Thirty requests over three keys, a minute apart from `start`.
SEED = """
from datetime import datetime, timedelta
from decimal import Decimal
from tests.billing.factories import ledger_entries_make, usage_record_make
start = datetime.fromisoformat({start!r})
cost = Decimal("0.0000123457")
ledger_entries_make(*[
    usage_record_make(created_at=start + timedelta(minutes=n), key_token=f"key-{{n % 3}}", cost=cost)
    for n in range(30)
])
"""
ROLLUPS = """
import json
from billing.models import SpendRollup
rows = SpendRollup.objects.filter(day={day!r})
print(json.dumps(sorted([row.key_token, row.requests, str(row.cost.normalize())] for row in rows)))
"""
EXPECTED_ROLLUPS = [
    ["key-0", 10, "0.000123457"],
    ["key-1", 10, "0.000123457"],
    ["key-2", 10, "0.000123457"],
]


def seeded_day(database: WorkerDatabase, *, days_ago: int) -> str:
    day = timezone.now().astimezone(UTC).date() - timedelta(days=days_ago)
    database.python(SEED.format(start=utc_day_start(day).isoformat()))
    return day.isoformat()


@pytest.mark.redis
def test_a_worker_on_a_redis_broker_runs_the_rollup_task(redis_url, worker_database, tmp_path):
    broker = redis_url  # kombu's keys go under the session's prefix (settings: global_keyprefix)
    env = {"CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker}
    queue = f"billing-test-{uuid.uuid4().hex[:10]}"  # this test's own: no other worker takes its task
    day = seeded_day(worker_database, days_ago=1)
    enqueue = (
        "from billing.tasks import spend_rollup_task\n"
        f"result = spend_rollup_task.apply_async(({day!r},), queue={queue!r})\n"
        "print(result.get(timeout=120))\n"
        "result.forget()\n"
    )

    try:
        with worker_process(worker_database, env, queue, tmp_path / "worker.log"):
            rollup_rows = worker_database.python(enqueue, env=env)
    finally:
        _queue_bindings_delete(broker, queue)

    assert rollup_rows.strip() == "3", (tmp_path / "worker.log").read_text()
    assert json.loads(worker_database.python(ROLLUPS.format(day=day))) == EXPECTED_ROLLUPS


def _queue_bindings_delete(broker: str, queue: str) -> None:
    """Remove what kombu left in Redis for the test's queue: the queue and its exchange bindings."""
    client = redis.Redis.from_url(broker)
    for key in client.scan_iter(f"*{queue}*"):
        client.delete(key)
    for key in client.scan_iter("*_kombu.binding.*"):
        stale = [member for member in client.smembers(key) if queue.encode() in member]
        if stale:
            client.srem(key, *stale)


def test_the_run_commands_worker_and_beat_run_the_database_schedule(worker_database):
    day = seeded_day(worker_database, days_ago=0)
    # An admin retimes the rollup to every second in the admin (the schedule is rows, not code).
    worker_database.python(
        "from django_celery_beat.models import IntervalSchedule, PeriodicTask\n"
        "every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)\n"
        f"task = PeriodicTask.objects.get(name={ROLLUP_ENTRY!r})\n"
        "task.interval = every_second\n"
        "task.save()\n"
    )

    with celery_worker_running(env=worker_database.env) as process:
        deadline = time.monotonic() + 120
        while (rollups := json.loads(worker_database.python(ROLLUPS.format(day=day)))) != EXPECTED_ROLLUPS:
            assert process.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, f"no rollups after 120 s: {rollups}"
            time.sleep(0.5)

    assert process.poll() is not None  # stopped with the block


@pytest.mark.django_db
class TestSchedule:
    def test_migrate_installs_every_scheduled_task(self):
        installed = dict(
            PeriodicTask.objects.filter(name__startswith=NAME_PREFIX).values_list("name", "task")
        )

        assert installed == {name: entry.task for name, entry in SCHEDULE.items()}

    def test_every_scheduled_task_is_a_registered_celery_task(self):
        assert billing.tasks and llm_gateway.tasks  # imported: their tasks are registered
        for entry in SCHEDULE.values():
            assert entry.task in app.tasks
            assert entry.task.endswith("_task")

    def test_installing_again_keeps_the_admins_timing_and_restores_the_code_s_part(self):
        every_ten_minutes = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
        rollup = PeriodicTask.objects.get(name=ROLLUP_ENTRY)
        rollup.enabled = False
        rollup.interval = every_ten_minutes
        rollup.task = "billing.tasks.renamed_task"
        rollup.save()
        PeriodicTask.objects.create(
            name=f"{NAME_PREFIX}retired job", task="billing.tasks.gone_task", interval=every_ten_minutes
        )
        PeriodicTask.objects.create(
            name="nightly report", task="reports.tasks.report_task", interval=every_ten_minutes
        )
        schedules = IntervalSchedule.objects.count()

        schedule_install()
        schedule_install()

        rollup.refresh_from_db()
        assert (rollup.enabled, rollup.interval, rollup.task) == (
            False,
            every_ten_minutes,
            SCHEDULE[ROLLUP_ENTRY].task,
        )
        assert not PeriodicTask.objects.filter(name=f"{NAME_PREFIX}retired job").exists()
        assert PeriodicTask.objects.filter(name="nightly report").exists()
        assert IntervalSchedule.objects.count() == schedules
