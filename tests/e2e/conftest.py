"""Fixtures for end-to-end tests: a real gateway process (the fake upstream is in tests/conftest.py)."""

import pytest

from tests.e2e.gateway_process import MASTER_KEY, GatewayProcess


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A migrated gateway serving on a free port (module-scoped: seed what you need per module)."""
    process = GatewayProcess.create(tmp_path_factory.mktemp("gateway"))
    process.start()
    yield process
    process.destroy()


@pytest.fixture(scope="module")
def master_key() -> str:
    return MASTER_KEY
