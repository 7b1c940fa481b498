"""Routes of the management API, at LiteLLM's paths, and its OpenAPI schema and docs page."""

from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from llm_gateway.apis.management import customers, keys, models, teams, users

urlpatterns = [
    path("key/generate", keys.KeyGenerateView.as_view(), name="key-generate"),
    path("key/update", keys.KeyUpdateView.as_view(), name="key-update"),
    path("key/delete", keys.KeyDeleteView.as_view(), name="key-delete"),
    path("key/info", keys.KeyInfoView.as_view(), name="key-info"),
    path("key/list", keys.KeyListView.as_view(), name="key-list"),
    path("key/regenerate", keys.KeyRegenerateView.as_view(), name="key-regenerate"),
    path("key/<str:key>/regenerate", keys.KeyRegenerateByPathView.as_view(), name="key-regenerate-by-path"),
    path("key/block", keys.KeyBlockView.as_view(), name="key-block"),
    path("key/unblock", keys.KeyUnblockView.as_view(), name="key-unblock"),
    path("team/new", teams.TeamNewView.as_view(), name="team-new"),
    path("team/update", teams.TeamUpdateView.as_view(), name="team-update"),
    path("team/delete", teams.TeamDeleteView.as_view(), name="team-delete"),
    path("team/info", teams.TeamInfoView.as_view(), name="team-info"),
    path("team/list", teams.TeamListView.as_view(), name="team-list"),
    path("team/member_add", teams.TeamMemberAddView.as_view(), name="team-member-add"),
    path("team/member_update", teams.TeamMemberUpdateView.as_view(), name="team-member-update"),
    path("team/member_delete", teams.TeamMemberDeleteView.as_view(), name="team-member-delete"),
    path("team/block", teams.TeamBlockView.as_view(), name="team-block"),
    path("team/unblock", teams.TeamUnblockView.as_view(), name="team-unblock"),
    path("user/new", users.UserNewView.as_view(), name="user-new"),
    path("user/info", users.UserInfoView.as_view(), name="user-info"),
    path("user/update", users.UserUpdateView.as_view(), name="user-update"),
    path("user/delete", users.UserDeleteView.as_view(), name="user-delete"),
    path("user/list", users.UserListView.as_view(), name="user-list"),
    path("customer/new", customers.CustomerNewView.as_view(), name="customer-new"),
    path("customer/info", customers.CustomerInfoView.as_view(), name="customer-info"),
    path("customer/update", customers.CustomerUpdateView.as_view(), name="customer-update"),
    path("customer/delete", customers.CustomerDeleteView.as_view(), name="customer-delete"),
    path("customer/list", customers.CustomerListView.as_view(), name="customer-list"),
    path("customer/block", customers.CustomerBlockView.as_view(), name="customer-block"),
    path("customer/unblock", customers.CustomerUnblockView.as_view(), name="customer-unblock"),
    path("model/new", models.ModelNewView.as_view(), name="model-new"),
    path("model/update", models.ModelUpdateView.as_view(), name="model-update"),
    path("model/delete", models.ModelDeleteView.as_view(), name="model-delete"),
    path("model/info", models.ModelInfoView.as_view(), name="model-info"),
    path("v1/model/info", models.ModelInfoV1View.as_view(), name="v1-model-info"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="docs"),
]
