"""The Celery worker and beat that `manage.py start` runs beside the server (the embedded mode).

One subprocess runs both (``worker --beat``), with the schedule read from the database
(billing/schedule.py) and the broker from the settings (kombu's filesystem transport by default).
Production runs its own workers and exactly one beat instead (`start --no-worker`, or `serve`).
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from django.conf import settings

WORKER_ARGUMENTS = [
    *("-m", "celery", "-A", "gateway_project", "worker", "--beat"),
    *("--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"),
    *("--concurrency", "1", "--loglevel", "warning"),
]
STOP_TIMEOUT = 20.0  # a warm shutdown lets the running task finish first
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: the worker gets SIGTERM when the server process dies, even by kill -9, instead of
    # living on as a second worker and beat beside the next start's.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def celery_worker_start(*, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start a Celery worker with an embedded beat in a subprocess (output goes to this one's)."""
    return subprocess.Popen(
        [sys.executable, *WORKER_ARGUMENTS],
        cwd=settings.BASE_DIR,
        env=None if env is None else dict(env),  # None: this process's environment
        # preexec_fn is unsafe only with threads running; `start` calls this before the server starts any.
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def celery_worker_stop(process: subprocess.Popen, *, timeout: float = STOP_TIMEOUT) -> None:
    """Stop the worker: a warm shutdown (SIGTERM), then SIGKILL if it is still running after ``timeout``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def celery_worker_running(*, env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Run a worker and beat for the duration of the ``with`` block."""
    process = celery_worker_start(env=env)
    try:
        yield process
    finally:
        celery_worker_stop(process)
