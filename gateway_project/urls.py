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
