"""The /model endpoints (deployments) with the master key: LiteLLM's shape, credentials never shown."""

import pytest

from llm_gateway.crypto import credential_decrypt
from llm_gateway.models import Deployment
from tests.llm_gateway.management_factories import UPSTREAM_SECRET, assert_openai_error, deployment_make

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db


def assert_no_credential(response) -> None:
    text = response.content.decode()
    assert UPSTREAM_SECRET not in text
    for deployment in Deployment.objects.exclude(credential=""):
        assert deployment.credential not in text


def test_new_splits_the_model_and_encrypts_the_key(api):
    response = api.post(
        "/model/new",
        {
            "model_name": "gpt-4o",
            "litellm_params": {
                "model": "azure/my-gpt-4o",
                "api_key": UPSTREAM_SECRET,
                "api_base": "https://example.openai.azure.com",
                "api_version": "2024-10-21",
                "rpm": 600,
                "tpm": 100000,
                "timeout": 30,
                "weight": 2,
                "order": 2,
                "temperature": 0.1,
                "drop_params": True,
            },
            "model_info": {"id": "azure-1", "mode": "chat", "base_model": "azure/gpt-4o"},
        },
    )

    assert response.status_code == 200, response.content
    deployment = Deployment.objects.get(model_id="azure-1")
    assert (deployment.provider, deployment.model) == ("azure", "my-gpt-4o")
    assert credential_decrypt(deployment.credential) == UPSTREAM_SECRET
    assert deployment.extra_params == {"temperature": 0.1, "drop_params": True}
    assert deployment.model_info == {"base_model": "azure/gpt-4o"}
    assert (deployment.rpm, deployment.tpm, deployment.timeout, deployment.weight, deployment.order) == (
        600,
        100000,
        30,
        2,
        2,
    )
    body = response.json()
    assert body["model_name"] == "gpt-4o"
    assert body["litellm_params"]["model"] == "azure/my-gpt-4o"
    assert body["litellm_params"]["api_key"] is None
    assert body["litellm_params"]["temperature"] == 0.1
    assert body["model_info"] == {"id": "azure-1", "mode": "chat", "base_model": "azure/gpt-4o"}
    assert_no_credential(response)


def test_new_without_a_provider_prefix_uses_known_model_families(api):
    body = api.post(
        "/model/new", {"model_name": "m", "litellm_params": {"model": "claude-3-5-sonnet"}}
    ).json()

    assert body["litellm_params"]["model"] == "anthropic/claude-3-5-sonnet"
    assert body["model_info"]["id"]


def test_new_keeps_an_environment_reference_and_shows_it(api):
    body = api.post(
        "/model/new",
        {
            "model_name": "m",
            "litellm_params": {"model": "openai/gpt-4o", "api_key": "os.environ/LLM_OPENAI_KEY_2"},
        },
    ).json()

    deployment = Deployment.objects.get(model_id=body["model_info"]["id"])
    assert (deployment.credential, deployment.credential_env) == ("", "LLM_OPENAI_KEY_2")
    assert body["litellm_params"]["api_key"] == "os.environ/LLM_OPENAI_KEY_2"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"litellm_params": {"model": "openai/gpt-4o"}}, "model_name"),
        ({"model_name": "m"}, "litellm_params"),
        ({"model_name": "m", "litellm_params": {}}, "litellm_params.model"),
        ({"model_name": "m", "litellm_params": {"model": "mystery-model"}}, "litellm_params.model"),
        ({"model_name": "m", "litellm_params": {"model": "gpt-4o", "rpm": -1}}, "litellm_params.rpm"),
        ({"model_name": "m", "litellm_params": {"model": "gpt-4o", "weight": "x"}}, "litellm_params.weight"),
        (
            {"model_name": "m", "litellm_params": {"model": "gpt-4o", "aws_secret_access_key": "abc"}},
            "litellm_params.aws_secret_access_key",
        ),
        (
            {
                "model_name": "m",
                "litellm_params": {"model": "gpt-4o", "extra_headers": {"Authorization": "Bearer x"}},
            },
            "litellm_params.extra_headers",
        ),
        (
            {"model_name": "m", "litellm_params": {"model": "gpt-4o"}, "model_info": {"mode": "audio"}},
            "model_info.mode",
        ),
        ({"model_name": "m", "litellm_params": "openai/gpt-4o"}, "litellm_params"),
        (
            {"model_name": "m", "litellm_params": {"model": "gpt-4o", "stop": ["\u0000"]}},
            "litellm_params.extra_params",
        ),
        (
            {"model_name": "m", "litellm_params": {"model": "gpt-4o"}, "model_info": {"x\u0000": 1}},
            "model_info",
        ),
    ],
)
def test_new_answers_bad_input_with_400(api, body, param):
    assert_openai_error(api.post("/model/new", body), 400, "invalid_request_error", param)
    assert not Deployment.objects.exists()


def test_new_accepts_credentials_as_environment_references(api):
    response = api.post(
        "/model/new",
        {
            "model_name": "m",
            "litellm_params": {
                "model": "gpt-4o",
                "aws_secret_access_key": "os.environ/LLM_AWS_SECRET",
                "input_cost_per_token": 0.000001,
            },
        },
    )

    assert response.status_code == 200, response.content


def test_new_refuses_a_taken_id(api):
    deployment_make(model_id="dup")

    response = api.post(
        "/model/new", {"model_name": "m", "litellm_params": {"model": "gpt-4o"}, "model_info": {"id": "dup"}}
    )

    assert_openai_error(response, 400, "invalid_request_error", "model_info.id")


def test_update_merges_params_and_keeps_the_stored_key(api):
    deployment = deployment_make(model_id="d1", extra_params={"temperature": 0.5, "top_p": 0.9})
    stored_credential = deployment.credential

    response = api.post(
        "/model/update",
        {
            "model_info": {"id": "d1", "base_model": "gpt-4o"},
            "litellm_params": {"api_key": None, "rpm": 10, "temperature": None, "seed": 7},
        },
    )

    assert response.status_code == 200, response.content
    deployment.refresh_from_db()
    assert deployment.credential == stored_credential
    assert deployment.rpm == 10
    assert deployment.extra_params == {"top_p": 0.9, "seed": 7}
    assert deployment.model_info == {"base_model": "gpt-4o"}
    assert_no_credential(response)


def test_update_replaces_the_key_and_the_model(api):
    deployment = deployment_make(model_id="d1")

    api.post(
        "/model/update",
        {
            "model_name": "smart",
            "model_info": {"id": "d1"},
            "litellm_params": {"model": "groq/llama-3", "api_key": "sk-new"},
        },
    )

    deployment.refresh_from_db()
    assert (deployment.model_name, deployment.provider, deployment.model) == ("smart", "groq", "llama-3")
    assert credential_decrypt(deployment.credential) == "sk-new"


def test_update_needs_the_id(api):
    assert_openai_error(
        api.post("/model/update", {"model_info": {}}), 400, "invalid_request_error", "model_info.id"
    )


def test_update_of_an_unknown_model_is_404(api):
    assert_openai_error(api.post("/model/update", {"model_info": {"id": "ghost"}}), 404, "not_found_error")


def test_delete_removes_the_deployment(api):
    deployment_make(model_id="d1")
    deployment_make(model_id="d2")

    response = api.post("/model/delete", {"id": "d1"})

    assert response.json() == {"message": "Model: d1 deleted successfully"}
    assert list(Deployment.objects.values_list("model_id", flat=True)) == ["d2"]


def test_delete_of_an_unknown_model_is_404(api):
    assert_openai_error(api.post("/model/delete", {"id": "ghost"}), 404, "not_found_error")


@pytest.mark.parametrize("path", ["/model/info", "/v1/model/info"])
def test_info_lists_deployments_without_credentials(api, path):
    deployment_make(model_id="d1", model_name="a")
    deployment_make(model_id="d2", model_name="b", api_key="os.environ/LLM_B_KEY")

    response = api.get(path)

    data = response.json()["data"]
    assert [(entry["model_name"], entry["model_info"]["id"]) for entry in data] == [("a", "d1"), ("b", "d2")]
    assert [entry["litellm_params"]["api_key"] for entry in data] == [None, "os.environ/LLM_B_KEY"]
    assert_no_credential(response)


def test_info_of_one_deployment(api):
    deployment_make(model_id="d1")
    deployment_make(model_id="d2")

    data = api.get("/model/info", {"litellm_model_id": "d2"}).json()["data"]

    assert [entry["model_info"]["id"] for entry in data] == ["d2"]


def test_info_of_an_unknown_deployment_is_404(api):
    assert_openai_error(api.get("/model/info", {"litellm_model_id": "ghost"}), 404, "not_found_error")
