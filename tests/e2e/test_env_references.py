"""A deployment row that references the gateway's own variables is never called, against a live gateway.

The rows are inserted straight into the table (around every check that refuses them when written),
as they could have been before those checks: ``api_key`` from GATEWAY_MASTER_KEY, ``extra_headers``
from DJANGO_SECRET_KEY and DATABASE_URL, sent to the fake upstream standing in for the attacker's
server. The fake upstream records every request, so the tests assert on what it received.
"""

import openai
import pytest

from tests.e2e.gateway_process import MASTER_KEY, GatewayProcess

DJANGO_SECRET = "django-secret-key-of-the-e2e-gateway-never-sent-anywhere-0123456789"
UPSTREAM_KEY = "sk-upstream-from-an-allowed-variable"
MESSAGES = [{"role": "user", "content": "Hello"}]

SEED = """
from llm_gateway.models import Deployment
base = {base!r}
headers = {{"X-Secret": "os.environ/DJANGO_SECRET_KEY", "X-Db": "os.environ/DATABASE_URL"}}
def row(model_id, group, **fields):
    Deployment.objects.create(
        model_id=model_id, model_name=group, provider="openai", model="model-" + model_id,
        api_base=base + "/" + model_id + "/v1", **fields,
    )
row("leak", "leak", credential_env="GATEWAY_MASTER_KEY", extra_params={{"extra_headers": headers}})
row("mixed-leak", "mixed", credential_env="GATEWAY_MASTER_KEY", extra_params={{"extra_headers": headers}})
row("mixed-ok", "mixed", credential_env="LLM_UPSTREAM_KEY")
row("ok", "ok", credential_env="LLM_UPSTREAM_KEY",
    extra_params={{"extra_headers": {{"X-Org": "os.environ/LLM_ORG"}}}})
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, _upstream_server):
    """A gateway whose environment holds the secrets the rows reference, and the allowed variables."""
    process = GatewayProcess.create(
        tmp_path_factory.mktemp("gateway"),
        extra_environment={
            "DJANGO_SECRET_KEY": DJANGO_SECRET,
            "LLM_UPSTREAM_KEY": UPSTREAM_KEY,
            "LLM_ORG": "org-7",
        },
    )
    process.run_python(SEED.format(base=_upstream_server.url))
    process.start()
    yield process
    process.destroy()


@pytest.fixture
def client(gateway):
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0) as sdk:
        yield sdk


def gateway_secrets(gateway) -> list[str]:
    names = ("GATEWAY_MASTER_KEY", "DJANGO_SECRET_KEY", "DATABASE_URL")
    return [gateway.environment[name] for name in names if gateway.environment.get(name)]


def assert_nothing_leaked(gateway, upstream) -> None:
    for request in upstream.requests:
        sent = f"{request.path} {request.headers} {request.body.decode(errors='replace')}"
        for secret in gateway_secrets(gateway):
            assert secret not in sent


def test_it_refuses_to_call_a_deployment_reading_the_gateways_variables(gateway, client, upstream):
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="leak", messages=MESSAGES)

    assert raised.value.status_code == 503
    assert raised.value.code == "deployment_misconfigured"
    assert "GATEWAY_MASTER_KEY" in raised.value.message
    assert upstream.requests == []
    assert not any(secret in raised.value.response.text for secret in gateway_secrets(gateway))


def test_the_groups_other_deployment_answers_instead(gateway, client, upstream):
    for _ in range(6):
        completion = client.chat.completions.create(model="mixed", messages=MESSAGES)
        assert completion.model == "model-mixed-ok"

    assert {request.path for request in upstream.requests} == {"/mixed-ok/v1/chat/completions"}
    assert {request.headers["Authorization"] for request in upstream.requests} == {f"Bearer {UPSTREAM_KEY}"}
    assert_nothing_leaked(gateway, upstream)


def test_an_allowed_variable_still_reaches_the_upstream(gateway, client, upstream):
    completion = client.chat.completions.create(model="ok", messages=MESSAGES)

    assert completion.model == "model-ok"
    assert upstream.last.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert upstream.last.headers["X-Org"] == "org-7"
    assert_nothing_leaked(gateway, upstream)
