"""config_import() and `manage.py import_config`: LiteLLM's config.yaml as deployments and settings."""

import textwrap
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from llm_gateway.crypto import credential_decrypt
from llm_gateway.models import Deployment, GatewaySettings
from llm_gateway.services.config_import import ConfigImportError, config_import
from tests.fakes.anthropic_responses import MODEL as ANTHROPIC_MODEL
from tests.fakes.openai_responses import CONTENT
from tests.llm_gateway.factories import deployment_make

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
FULL_CONFIG = FIXTURES / "litellm_config.yaml"
MASTER_KEY = "sk-master-config-import"


@pytest.fixture
def config_env(monkeypatch):
    """The environment the full fixture config refers to (api keys stay unset: they are references)."""
    monkeypatch.setenv("LLM_TEST_OPENAI_API_BASE", "https://openai-proxy.example/v1")


def config_write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def deployments() -> dict[str, Deployment]:
    return {deployment.model_id: deployment for deployment in Deployment.objects.all()}


def test_it_imports_a_litellm_config(config_env):
    report = config_import(path=FULL_CONFIG)

    rows = deployments()
    assert len(report.created) == len(rows) == 6
    openai = rows["openai-gpt-4o"]
    assert (openai.model_name, openai.provider, openai.model) == ("gpt-4o", "openai", "gpt-4o")
    assert openai.api_base == "https://openai-proxy.example/v1"
    assert (openai.credential_env, openai.credential) == ("LLM_TEST_OPENAI_API_KEY", "")
    assert (openai.rpm, openai.tpm, openai.timeout) == (600, 200000, 30.0)
    assert openai.extra_params == {"drop_params": True, "extra_headers": {"X-Team": "research"}}
    assert openai.model_info == {"base_model": "gpt-4o-2024-08-06", "input_cost_per_token": 0.0000025}
    azure = rows["azure-gpt-4o-eu"]
    assert (azure.provider, azure.model, azure.api_version) == ("azure", "gpt-4o-eu", "2024-06-01")
    assert azure.api_base == "https://example-eu.openai.azure.com/"
    assert credential_decrypt(azure.credential) == "azure-literal-key"
    assert (azure.weight, azure.order, azure.mode) == (3.0, 2, "chat")
    by_name = {deployment.model_name: deployment for deployment in rows.values()}
    assert by_name["claude-sonnet"].provider == "anthropic"
    assert by_name["claude-sonnet"].extra_params == {"max_tokens": 1024}
    assert (by_name["llama-fast"].provider, by_name["llama-fast"].rpm) == ("groq", 30)
    assert (rows["embedder"].mode, rows["embedder"].provider) == ("embedding", "openai")
    assert by_name["demo-echo"].extra_params == {"mock_response": "Hello from the config file!"}
    settings_row = GatewaySettings.objects.get()
    assert settings_row.router_settings == {
        "routing_strategy": "simple-shuffle",
        "num_retries": 2,
        "redis_password": "os.environ/TEST_REDIS_PASSWORD",
        "fallbacks": [{"gpt-4o": ["claude-sonnet"]}],
        "cache_responses": True,  # litellm_settings.cache and cache_params are the router's cache
        "cache_params": {"ttl": 120},
    }
    assert settings_row.general_settings == {"store_model_in_db": True}
    assert report.has_master_key


def test_invalid_router_settings_are_errors_naming_the_setting(config_env, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("model_list: []\nrouter_settings:\n  routing_strategy: fastest-first\n")

    with pytest.raises(ConfigImportError, match="routing_strategy must be one of"):
        config_import(path=path)


def test_it_reports_what_it_ignores_with_lines(config_env):
    report = config_import(path=FULL_CONFIG)

    assert (
        f"{FULL_CONFIG}, line 62: litellm_settings: ignored: drop_params, success_callback" in report.warnings
    )
    assert any("line 59: general_settings.database_url: ignored" in warning for warning in report.warnings)
    assert any(
        "line 6: model_list[0].litellm_params.api_key: environment variable LLM_TEST_OPENAI_API_KEY "
        "is not set" in warning
        for warning in report.warnings
    )


def test_a_second_import_changes_nothing(config_env):
    config_import(path=FULL_CONFIG)
    before = {model_id: row.updated_at for model_id, row in deployments().items()}

    report = config_import(path=FULL_CONFIG)

    assert (report.created, report.updated, len(report.unchanged)) == ([], [], 6)
    assert {model_id: row.updated_at for model_id, row in deployments().items()} == before


def test_it_updates_a_changed_entry_in_place(tmp_path):
    path = config_write(
        tmp_path,
        """
        model_list:
          - model_name: gpt-4o
            litellm_params: {model: openai/gpt-4o, rpm: 100, api_key: first-key}
            model_info: {id: main}
        """,
    )
    config_import(path=path)
    Deployment.objects.filter(model_id="main").update(enabled=False)  # an admin's choice
    config_write(
        tmp_path,
        """
        model_list:
          - model_name: gpt-4o
            litellm_params: {model: openai/gpt-4o-mini, rpm: 200, api_key: os.environ/OPENAI_API_KEY}
            model_info: {id: main}
        """,
    )

    report = config_import(path=path)

    assert report.updated == ["gpt-4o (main)"]
    row = Deployment.objects.get()
    assert (row.model, row.rpm, row.credential, row.credential_env) == (
        "gpt-4o-mini",
        200,
        "",
        "OPENAI_API_KEY",
    )
    assert not row.enabled


def test_entries_without_an_id_keep_a_stable_one(tmp_path):
    text = """
        model_list:
          - model_name: gpt-4o
            litellm_params: {model: openai/gpt-4o, api_key: key-one}
          - model_name: gpt-4o
            litellm_params: {model: openai/gpt-4o, api_key: key-two}
        """
    path = config_write(tmp_path, text)
    first = config_import(path=path)

    second = config_import(path=config_write(tmp_path, text.replace("key-two", "key-three")))

    assert len(first.created) == 2
    assert second.updated == first.created[1:]
    assert Deployment.objects.count() == 2


def test_it_reports_deployments_gone_from_the_file_and_prunes_them_only_when_asked(tmp_path):
    admin_made = deployment_make(model_id="made-in-the-admin", model_name="by-hand")
    path = config_write(
        tmp_path,
        """
        model_list:
          - {model_name: a, litellm_params: {model: mock/a}, model_info: {id: a}}
          - {model_name: b, litellm_params: {model: mock/b}, model_info: {id: b}}
        """,
    )
    config_import(path=path)
    config_write(
        tmp_path, "model_list:\n  - {model_name: a, litellm_params: {model: mock/a}, model_info: {id: a}}\n"
    )

    kept = config_import(path=path)
    pruned = config_import(path=path, prune=True)

    assert kept.missing == ["b (b)"]
    assert pruned.pruned == ["b (b)"]
    assert set(deployments()) == {"a", admin_made.model_id}
    assert config_import(path=path, prune=True).pruned == []


def test_it_reports_unknown_keys_and_passes_provider_params_through(tmp_path):
    path = config_write(
        tmp_path,
        """
        model_list:
          - model_name: gpt-4o
            litellm_params:
              model: openai/gpt-4o
              temperature: 0.2
              model_name: misplaced
            modle_info: {id: typo}
        colour: blue
        environment_variables: {REDIS_HOST: localhost}
        """,
    )

    report = config_import(path=path)

    assert report.warnings == [
        f"{path}, line 6: model_list[0].litellm_params.model_name: ignored: it belongs at the entry level, "
        "next to litellm_params",
        f"{path}, line 7: model_list[0]: unknown key 'modle_info': ignored",
        f"{path}, line 8: unknown top-level key 'colour': ignored",
        f"{path}, line 9: environment_variables: ignored: not supported yet",
    ]
    assert Deployment.objects.get().extra_params == {"temperature": 0.2}


def test_a_yaml_syntax_error_names_the_line():
    with pytest.raises(ConfigImportError) as raised:
        config_import(path=FIXTURES / "broken_syntax.yaml")

    assert str(raised.value) == (
        f"{FIXTURES / 'broken_syntax.yaml'}, line 6, column 15: invalid YAML: expected ',' or ']', "
        "but got ':' (while parsing a flow sequence at line 5)"
    )


def test_an_unknown_provider_names_the_line_and_nothing_is_written():
    with pytest.raises(ConfigImportError) as raised:
        config_import(path=FIXTURES / "unknown_provider.yaml")

    [error] = raised.value.errors
    assert error.startswith(
        f"{FIXTURES / 'unknown_provider.yaml'}, line 7: model_list[1].litellm_params.model "
        "'bedrock/amazon.titan-text-express-v1': LLM provider not given"
    )
    assert not Deployment.objects.exists()
    assert not GatewaySettings.objects.exists()


def test_a_missing_environment_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("LLM_TEST_AZURE_API_BASE", raising=False)
    path = config_write(
        tmp_path,
        """
        model_list:
          - model_name: gpt-4o
            litellm_params:
              model: azure/gpt-4o-eu
              api_base: os.environ/LLM_TEST_AZURE_API_BASE
        """,
    )

    with pytest.raises(ConfigImportError) as raised:
        config_import(path=path)

    assert raised.value.errors == [
        f"{path}, line 5: model_list[0].litellm_params.api_base: "
        "environment variable LLM_TEST_AZURE_API_BASE is not set"
    ]


@pytest.mark.parametrize(
    ("entry", "line", "message"),
    [
        (
            "- {litellm_params: {model: openai/gpt-4o}}",
            2,
            "model_list[0].model_name must be a non-empty string",
        ),
        ("- {model_name: x}", 2, "model_list[0].litellm_params must be a mapping with model"),
        ("- {model_name: x, litellm_params: {model: openai/x, rpm: many}}", 2, "rpm must be a whole number"),
        ("- {model_name: x, litellm_params: {model: mock/x}, model_info: {mode: chta}}", 2, "mode 'chta'"),
        ("- {model_name: x, litellm_params: {model: openai/x, api_base: api.openai.com}}", 2, "http://"),
        ("- just a string", 2, "model_list[0] must be a mapping"),
    ],
)
def test_a_wrong_value_names_the_line(tmp_path, entry, line, message):
    path = config_write(tmp_path, f"model_list:\n  {entry}\n")

    with pytest.raises(ConfigImportError) as raised:
        config_import(path=path)

    [error] = raised.value.errors
    assert error.startswith(f"{path}, line {line}: ")
    assert message in error


def test_a_broken_file_leaves_the_previous_import_in_place(tmp_path):
    path = config_write(
        tmp_path, "model_list:\n  - {model_name: a, litellm_params: {model: mock/a, rpm: 1}}\n"
    )
    config_import(path=path)
    config_write(
        tmp_path,
        """
        model_list:
          - {model_name: a, litellm_params: {model: mock/a, rpm: 2}}
          - {model_name: b, litellm_params: {model: nowhere/b}}
        router_settings: {num_retries: 5}
        """,
    )

    with pytest.raises(ConfigImportError):
        config_import(path=path, prune=True)

    assert [(row.model_name, row.rpm) for row in Deployment.objects.all()] == [("a", 1)]
    assert GatewaySettings.objects.get().router_settings == {}


def test_a_repeated_model_info_id_is_an_error(tmp_path):
    path = config_write(
        tmp_path,
        """
        model_list:
          - {model_name: a, litellm_params: {model: mock/a}, model_info: {id: same}}
          - {model_name: b, litellm_params: {model: mock/b}, model_info: {id: same}}
        """,
    )

    with pytest.raises(ConfigImportError) as raised:
        config_import(path=path)

    assert raised.value.errors == [f"{path}, line 3: model_info.id 'same' is already used at line 2"]


def test_a_dry_run_writes_nothing(config_env):
    report = config_import(path=FULL_CONFIG, dry_run=True)

    assert len(report.created) == 6
    assert not Deployment.objects.exists()


def test_the_command_prints_the_report_and_fails_on_errors(config_env):
    out = StringIO()

    call_command("import_config", str(FULL_CONFIG), stdout=out)

    assert "6 created, 0 updated, 0 unchanged, 0 removed" in out.getvalue()
    assert "litellm_settings: ignored: drop_params, success_callback" in out.getvalue()
    assert "importing this file does not change the master key" in out.getvalue()
    with pytest.raises(CommandError, match=r"unknown_provider\.yaml, line 7: "):
        call_command("import_config", str(FIXTURES / "unknown_provider.yaml"), stdout=StringIO())


@pytest.mark.parametrize(
    ("model", "api_base", "path"),
    [
        # OpenAI-compatible providers: LiteLLM's api_base includes the version path.
        ("openai/gpt-4o", "{url}/v1", "/v1/chat/completions"),
        ("groq/llama-3.1-8b-instant", "{url}/openai/v1", "/openai/v1/chat/completions"),
        # Azure and Anthropic: the host root.
        ("azure/gpt-4o-eu", "{url}/", "/openai/deployments/gpt-4o-eu/chat/completions"),
        (f"anthropic/{ANTHROPIC_MODEL}", "{url}", "/v1/messages"),
    ],
)
def test_api_base_means_what_it_means_in_litellm(
    tmp_path, client, upstream, django_capture_on_commit_callbacks, model, api_base, path
):
    config = config_write(
        tmp_path,
        f"""
        model_list:
          - model_name: chosen
            litellm_params: {{model: {model}, api_base: "{api_base.format(url=upstream.url)}", api_key: k}}
        """,
    )
    with django_capture_on_commit_callbacks(execute=True):  # the import invalidates the snapshots
        config_import(path=config)

    with override_settings(GATEWAY={**settings.GATEWAY, "MASTER_KEY": MASTER_KEY}):
        response = client.post(
            "/v1/chat/completions",
            {"model": "chosen", "messages": [{"role": "user", "content": "Hi"}]},
            content_type="application/json",
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
        )

    assert response.status_code == 200, response.content
    assert upstream.last.path == path
    if not model.startswith("anthropic/"):
        assert response.json()["choices"][0]["message"]["content"] == CONTENT
