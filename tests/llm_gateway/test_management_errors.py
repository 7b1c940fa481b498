"""The management API's exception handler: every error in OpenAI's shape, with the right status."""

import pytest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions

from llm_gateway.apis.management.exceptions import openai_exception_handler
from providers.exceptions import BadRequestError, RateLimitError
from tests.llm_gateway.management_factories import assert_openai_error

pytest_plugins = ["tests.llm_gateway.management_factories"]


def handle(exc):
    return openai_exception_handler(exc, {})


def error_of(exc) -> dict:
    return handle(exc).data["error"]


def test_a_validation_error_names_its_field():
    response = handle(exceptions.ValidationError({"max_budget": ["A valid number is required."]}))

    assert response.status_code == 400
    assert response.data == {
        "error": {
            "message": "max_budget: A valid number is required.",
            "type": "invalid_request_error",
            "param": "max_budget",
            "code": None,
        }
    }


def test_nested_and_several_validation_errors_are_all_reported():
    error = error_of(
        exceptions.ValidationError(
            {
                "litellm_params": {"model": ["Required."]},
                "members": {0: {"role": ["Bad."]}},
                "rpm": ["Too big."],
            }
        )
    )

    assert error["param"] == "litellm_params.model"
    assert error["message"] == "litellm_params.model: Required.; members.0.role: Bad.; rpm: Too big."


def test_a_validation_error_of_the_whole_body_has_no_param():
    error = error_of(exceptions.ValidationError({"non_field_errors": ["Expected a dictionary."]}))

    assert (error["param"], error["message"]) == (None, "Expected a dictionary.")


def test_a_model_validation_error_is_a_400():
    response = handle(DjangoValidationError({"team_alias": ["Team with this alias already exists."]}))

    assert response.status_code == 400
    assert response.data["error"]["param"] == "team_alias"


@pytest.mark.parametrize(
    ("exc", "status", "error_type", "code"),
    [
        (exceptions.NotAuthenticated(), 401, "authentication_error", "invalid_api_key"),
        (exceptions.AuthenticationFailed("Invalid API key."), 401, "authentication_error", "invalid_api_key"),
        (exceptions.PermissionDenied("No."), 403, "permission_error", "permission_denied"),
        (DjangoPermissionDenied("No."), 403, "permission_error", "permission_denied"),
        (exceptions.NotFound("Team x not found."), 404, "not_found_error", "not_found"),
        (Http404("Nothing here."), 404, "not_found_error", "not_found"),
        (exceptions.ParseError("JSON parse error"), 400, "invalid_request_error", "invalid_json"),
        (exceptions.MethodNotAllowed("GET"), 405, "invalid_request_error", "method_not_allowed"),
        (exceptions.Throttled(wait=3), 429, "rate_limit_error", "throttled"),
    ],
)
def test_drf_and_django_errors_map_to_openai_types(exc, status, error_type, code):
    response = handle(exc)

    assert response.status_code == status
    assert response.data["error"]["type"] == error_type
    assert response.data["error"]["code"] == code
    assert response.data["error"]["message"]


def test_a_throttled_error_says_when_to_retry():
    assert handle(exceptions.Throttled(wait=3))["Retry-After"] == "3"


def test_a_provider_error_keeps_its_status_and_body():
    error = RateLimitError("Slow down.", retry_after=1.5, code="rate_limit_exceeded")

    response = handle(error)

    assert response.status_code == 429
    assert response.data == error.to_openai_error()
    assert response["Retry-After"] == "2"
    assert handle(BadRequestError("Bad model.", param="model")).data["error"]["param"] == "model"


def test_anything_else_is_left_to_django():
    assert handle(KeyError("bug")) is None


@pytest.mark.django_db
def test_a_wrong_method_is_405_in_openai_shape(api):
    assert_openai_error(api.get("/key/generate"), 405, "invalid_request_error")
    assert_openai_error(api.post("/key/info", {}), 405, "invalid_request_error")


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_415_in_openai_shape(api, master_key):
    response = api.client.post(
        "/key/generate",
        "key_alias=x",
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": f"Bearer {master_key}"},
    )

    assert_openai_error(response, 415, "invalid_request_error")
