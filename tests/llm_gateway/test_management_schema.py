"""The OpenAPI schema of the management API and its docs page."""

import pytest

pytest_plugins = ["tests.llm_gateway.management_factories"]
pytestmark = pytest.mark.django_db

MANAGEMENT_PATHS = {
    "/key/generate": "post",
    "/key/update": "post",
    "/key/delete": "post",
    "/key/info": "get",
    "/key/list": "get",
    "/key/regenerate": "post",
    "/key/{key}/regenerate": "post",
    "/key/block": "post",
    "/key/unblock": "post",
    "/team/new": "post",
    "/team/update": "post",
    "/team/delete": "post",
    "/team/info": "get",
    "/team/list": "get",
    "/team/member_add": "post",
    "/team/member_update": "post",
    "/team/member_delete": "post",
    "/team/block": "post",
    "/team/unblock": "post",
    "/user/new": "post",
    "/user/info": "get",
    "/user/update": "post",
    "/user/delete": "post",
    "/user/list": "get",
    "/customer/new": "post",
    "/customer/info": "get",
    "/customer/update": "post",
    "/customer/delete": "post",
    "/customer/list": "get",
    "/customer/block": "post",
    "/customer/unblock": "post",
    "/model/new": "post",
    "/model/update": "post",
    "/model/delete": "post",
    "/model/info": "get",
    "/v1/model/info": "get",
    "/spend/logs": "get",
    "/global/spend/report": "get",
    "/user/daily/activity": "get",
    "/team/daily/activity": "get",
    "/key/usage": "get",
}


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_it_lists_every_management_path_and_method(schema):
    assert {path: list(methods) for path, methods in schema["paths"].items()} == {
        path: [method] for path, method in MANAGEMENT_PATHS.items()
    }


def test_every_operation_documents_its_success_and_error_responses(schema):
    for path, method in MANAGEMENT_PATHS.items():
        operation = schema["paths"][path][method]
        assert operation["summary"], path
        assert set(operation["responses"]) == {"200", "400", "401", "403", "404"}, path
        assert "$ref" in str(operation["responses"]["200"]["content"]), path
        if method == "post":
            assert "$ref" in str(operation["requestBody"]["content"]), path


def test_it_uses_litellms_field_names(schema):
    components = schema["components"]["schemas"]

    assert {"key_alias", "team_id", "duration", "max_budget", "budget_duration", "key"} <= set(
        components["KeyGenerateRequest"]["properties"]
    )
    assert {"key", "token", "key_name", "expires"} <= set(components["KeySecret"]["properties"])
    assert {"model_name", "litellm_params", "model_info"} <= set(components["ModelNewRequest"]["properties"])


def test_it_declares_the_bearer_key(schema):
    scheme = schema["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert {"bearerAuth": []} in schema["paths"]["/key/generate"]["post"]["security"]


def test_the_inference_api_is_not_in_the_schema(schema):
    assert not any(path.startswith(("/v1/chat", "/chat", "/v1/embeddings")) for path in schema["paths"])


def test_the_docs_page_loads_the_schema(client):
    response = client.get("/docs")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "/openapi.json" in response.content.decode()
    assert "swagger" in response.content.decode().lower()
