"""The /model endpoints (deployments): new, update, delete, info; /v1/model/info too.

Gateway admins only. Credentials go in and never come out: responses show ``api_key`` as null (or
the ``os.environ/NAME`` reference it is read from).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from llm_gateway.apis.management.serializers.base import ERROR_RESPONSES
from llm_gateway.apis.management.serializers.models import (
    DeploymentSerializer,
    ModelDeleteRequest,
    ModelDeleteResponse,
    ModelInfoQuery,
    ModelListResponse,
    ModelNewRequest,
    ModelUpdateRequest,
)
from llm_gateway.apis.management.views import ManagementView
from llm_gateway.models import Deployment
from llm_gateway.selectors import deployment_get, deployment_list
from llm_gateway.services.deployments import deployment_create, deployment_delete, deployment_update

TAGS = ["model management"]


class ModelView(ManagementView):
    def deployment_found(self, model_id: str) -> Deployment:
        return self.found(deployment_get(model_id=model_id), f"Model {model_id!r}")


class ModelNewView(ModelView):
    @extend_schema(
        operation_id="model_new",
        tags=TAGS,
        summary="Add a deployment",
        description="`litellm_params.model` is 'provider/model' (openai/gpt-4o, azure/<deployment>...). "
        "`api_key` is stored encrypted and never returned.",
        request=ModelNewRequest,
        responses={200: DeploymentSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        return Response(
            DeploymentSerializer(deployment_create(**self.body(ModelNewRequest).validated_data)).data
        )


class ModelUpdateView(ModelView):
    @extend_schema(
        operation_id="model_update",
        tags=TAGS,
        summary="Change a deployment",
        description="`model_info.id` names the deployment. Given `litellm_params` are merged into the "
        "stored ones (null removes an extra parameter); an absent or null `api_key` keeps the stored one.",
        request=ModelUpdateRequest,
        responses={200: DeploymentSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        serializer = self.body(ModelUpdateRequest)
        deployment = self.deployment_found(serializer.validated_data["model_info"]["id"])
        updated = deployment_update(deployment=deployment, **serializer.service_fields(deployment))
        return Response(DeploymentSerializer(updated).data)


class ModelDeleteView(ModelView):
    @extend_schema(
        operation_id="model_delete",
        tags=TAGS,
        summary="Delete a deployment",
        request=ModelDeleteRequest,
        responses={200: ModelDeleteResponse, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        deployment = self.deployment_found(self.body(ModelDeleteRequest).validated_data["id"])
        deployment_delete(deployment=deployment)
        return Response({"message": f"Model: {deployment.model_id} deleted successfully"})


class ModelInfoView(ModelView):
    @extend_schema(
        operation_id="model_info",
        tags=TAGS,
        summary="List deployments",
        description="Every deployment, or only the one with `litellm_model_id`. Credentials are not shown.",
        parameters=[ModelInfoQuery],
        responses={200: ModelListResponse, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        model_id = self.query(ModelInfoQuery).get("litellm_model_id")
        deployments = deployment_list(model_id=model_id)
        if model_id is not None:
            self.found(deployments.first(), f"Model {model_id!r}")
        return Response({"data": DeploymentSerializer(deployments, many=True).data})


class ModelInfoV1View(ModelInfoView):
    @extend_schema(
        operation_id="model_info_v1",
        tags=TAGS,
        summary="List deployments (/v1 path)",
        parameters=[ModelInfoQuery],
        responses={200: ModelListResponse, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        return super().get(request)
