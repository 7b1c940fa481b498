import pytest

from tests.fakes.anthropic_responses import install_anthropic_routes
from tests.fakes.openai_responses import install_openai_routes
from tests.fakes.upstream import FakeUpstream


@pytest.fixture(scope="session")
def _upstream_server():
    server = FakeUpstream()
    install_openai_routes(server)
    install_anthropic_routes(server)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def upstream(_upstream_server):
    """The fake upstream, with no scripted replies and no recorded requests left from other tests."""
    _upstream_server.reset()
    yield _upstream_server
    _upstream_server.reset()
