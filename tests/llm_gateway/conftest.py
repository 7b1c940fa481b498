"""Fixtures for tests that run manage.py or settings in a subprocess, as an operator would."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Variables that select servers or secrets; a subprocess starts without them, in the embedded mode.
CONFIGURATION_VARIABLES = {
    "DATABASE_URL",
    "DATABASE_POOL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "GATEWAY_MASTER_KEY",
    "GATEWAY_CONFIG",
    "GATEWAY_ENCRYPTION_KEY",
    "GATEWAY_SERVE_STATIC",
    "GATEWAY_VAR_DIR",
    "PORT",
}


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    """Return a fresh runtime directory (what var/ is for a real install)."""
    return tmp_path / "var"


@pytest.fixture
def embedded_env(var_dir: Path) -> dict[str, str]:
    """Return the environment of a fresh embedded install whose runtime files go to `var_dir`."""
    env = {name: value for name, value in os.environ.items() if name not in CONFIGURATION_VARIABLES}
    env["GATEWAY_VAR_DIR"] = str(var_dir)
    env["DJANGO_SETTINGS_MODULE"] = "gateway_project.settings"
    return env


@pytest.fixture
def run_python(embedded_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess]:
    """Return a runner of Python code (or `manage.py` arguments) in a subprocess at the repo root."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env={**embedded_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
