"""The gateway's URL map."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # Before the admin's catch-all: the spend dashboard lives under /admin/.
    path("admin/billing/spend/", include("billing.dashboards.urls")),
    path("admin/", admin.site.urls),
    path("", include("billing.apis.urls")),
    path("", include("llm_gateway.urls")),
]

# Every error Django answers itself is JSON in OpenAI's shape, on every path.
handler400 = "llm_gateway.apis.errors.bad_request"
handler403 = "llm_gateway.apis.errors.permission_denied"
handler404 = "llm_gateway.apis.errors.not_found"
handler500 = "llm_gateway.apis.errors.server_error"
